"""What gate results mean for pytest: ERROR reports, the exit code, required gates, statistics.

- A gate that cannot be judged raises `GateError`: pytest reports it as an ERROR (an error in
  setup, like a broken fixture), never a FAIL, whether it is found in setup (gates known at
  collection) or during the test (specs known only at run time), so pytest's outcome, JUnit and
  the plugin's table agree.
- A session whose only failures are infrastructure errors exits with `--scaimind-infra-exit-code`
  (default 75, EX_TEMPFAIL of sysexits.h: "try again later"), so CI can retry exactly those.
- `--scaimind-require-gates` fails a session that judged no gate.
- The statistics summary: power warnings and the family-wise error of the confidence gates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scaimind._record import GateRecord, Outcome

if TYPE_CHECKING:
    from pytest_scaimind._options import Options

PREFIX = "scaimind: "
"""How every line the plugin writes of its own starts: a progress line, an ERROR's cause, a note."""

INFRA_EXIT_CODE = 75
"""The default exit code of a session whose only failures are infrastructure errors."""


class GateError(pytest.fail.Exception):  # type: ignore[name-defined]
    """A gate that cannot be judged: reported by pytest as an ERROR, never as a FAIL.

    `infra` marks infrastructure causes (coordinator unreachable, evaluation FAILED, CANCELLED
    or timed out), which a retry may fix; usage and data errors leave it False.
    """

    def __init__(self, message: str, *, infra: bool = False) -> None:
        super().__init__(message, pytrace=False)
        self.infra = infra


class Policy:
    """The pytest plugin object that applies the rules above (registered as `scaimind-policy`).

    `records` gives the session's gate records (empty when the plugin is inactive), `power`
    the power warnings found at collection, and `inactive` the reason no gate can be judged
    at all (no --scaimind-job), if so.
    """

    def __init__(
        self,
        config: pytest.Config,
        options: Options,
        records: Callable[[], list[GateRecord]],
        power: Callable[[], Iterable[str]] = tuple,
        inactive: str | None = None,
    ) -> None:
        self.config = config
        self.options = options
        self.records = records
        self.power = power
        self.inactive = inactive
        self.is_worker = hasattr(config, "workerinput")
        self.infra_failed: set[str] = set()
        self.other_failed: set[str] = set()
        self.exit_note: str | None = None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """A GateError in the test body becomes an ERROR report, marked when it is infra.

        Its short-summary line starts with the cause (`ERROR t.py::test - scaimind: no model at …`),
        not with the exception's class, so a CI log cut at 80 columns still says what failed.
        """
        report = yield
        excinfo = call.excinfo
        if excinfo is not None and isinstance(excinfo.value, GateError) and report.failed:
            report.scaimind_infra = excinfo.value.infra
            crash = getattr(report.longrepr, "reprcrash", None)
            if crash is not None:
                crash.message = excinfo.value.msg
            if report.when == "call":
                report.when = "setup"  # pytest's ERROR: the gate could not be judged
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker or not report.failed or hasattr(report, "wasxfail"):
            return
        if getattr(report, "scaimind_infra", False):
            self.infra_failed.add(report.nodeid)
        else:
            self.other_failed.add(report.nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Set the exit code: infrastructure-only failures, or no gate judged when required."""
        if self.is_worker:
            return
        status = session.exitstatus
        if status == pytest.ExitCode.TESTS_FAILED and self.infra_failed and not self.other_failed:
            code = self.options.infra_exit_code
            session.exitstatus = code
            self.exit_note = (
                f"{PREFIX}every failure is an infrastructure error "
                f"({len(self.infra_failed)} test(s)): exit code {code} "
                "(--scaimind-infra-exit-code); a retry may pass"
            )
        elif (
            status == pytest.ExitCode.OK
            and self.options.require_gates
            and not self.config.option.collectonly
            and not any(r.verdict is not Outcome.ERROR for r in self.records())
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            why = (
                self.inactive or "no gate test ran to a verdict (all skipped, deselected or absent)"
            )
            self.exit_note = f"{PREFIX}--scaimind-require-gates: this session judged no gate: {why}"

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        import textwrap

        from pytest_scaimind._report import statistics_notes

        width = self.config.get_terminal_writer().fullwidth
        notes = statistics_notes(statistics(self.records(), self.power(), self.options.correction))
        if notes:
            terminalreporter.write_sep("-", "scaimind verdict statistics")
            for note in notes:
                for line in textwrap.wrap(
                    note,
                    width,
                    subsequent_indent="  ",
                    break_long_words=False,  # a label or URL stays whole
                    break_on_hyphens=False,
                ):
                    terminalreporter.write_line(line)
        if self.exit_note:
            terminalreporter.write_line(self.exit_note, red=True, bold=True)


def statistics(
    records: list[GateRecord], power_warnings: Iterable[str], correction: str
) -> dict[str, Any]:
    """The session's verdict statistics, for the terminal and the report.

    `family_wise_error` states the chance of at least one wrong decisive verdict among the
    confidence gates: at most 1 - confidence under Holm, else the independent-tests figure and
    Bonferroni's bound. `power_warnings` lists the gates whose margin is below what they can
    tell from noise.
    """
    from scaimind_nb.stats import familywise_error

    warnings = dict.fromkeys(power_warnings)
    warnings.update(dict.fromkeys(r.power_warning for r in records if r.power_warning))
    checks: dict[tuple[str, str], float] = {}
    family = 0
    for r in records:
        if r.confidence is None or r.verdict is Outcome.ERROR:
            continue
        identity = (r.benchmark, repr(sorted(r.criteria.items())))
        count = int("min_score" in r.criteria) + int(
            "max_drop" in r.criteria or "max_rel_drop" in r.criteria
        )
        for k in range(count):
            checks[(identity[0], identity[1] + str(k))] = r.confidence
        family = max(family, r.family_size or 0)
    text = None
    if checks:
        levels = [1 - c for c in checks.values()]
        strictest = min(levels)
        if len(checks) == 1:
            text = f"family-wise error: one confidence check, at most {strictest:.0%}"
        elif correction == "holm":
            text = (
                f"family-wise error: at most {strictest:.0%} across the session's "
                f"{family or len(checks)} confidence checks (--scaimind-correction=holm, "
                "Holm-Bonferroni)"
            )
        else:
            independent, bound = familywise_error(levels)
            text = (
                f"family-wise error: {len(checks)} confidence check(s) without correction: "
                f"up to {independent:.0%} chance of a wrong verdict somewhere if they are "
                f"independent (at most {bound:.0%}); --scaimind-correction=holm holds it at "
                f"{strictest:.0%}"
            )
    return {
        "correction": correction,
        "confidence_checks": family or len(checks),
        "family_wise_error": text,
        "power_warnings": list(warnings),
    }
