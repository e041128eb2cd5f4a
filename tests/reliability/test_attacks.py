"""Every attack of the containment audit, as a humaneval completion through a real coordinator.

Each must be contained (see `_attacks.AttackBed.run` for exactly what that checks): its problem
fails, nothing outside is read, written or created, the key is stored nowhere, another
evaluation's record is unchanged, and the same coordinator process still answers /healthz.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._attacks import ATTACKS, AttackBed

pytestmark = pytest.mark.isolation

FORGE_OWN_VERDICT = """
    import os
    os.write(3, b"PASS")
    os._exit(0)
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory, scaimind_api_key: str) -> Iterator[AttackBed]:
    bed = AttackBed(tmp_path_factory.mktemp("attacks"), scaimind_api_key).start()
    yield bed
    bed.stop()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_attack_is_contained(bed: AttackBed, name: str) -> None:
    outcome = bed.run(name, ATTACKS[name])
    assert outcome.contained, outcome
    assert outcome.verdict in ("failed", "timed_out")


def test_forging_its_own_verdict_changes_nothing_else(bed: AttackBed) -> None:
    """The documented limit: a program can report its own pass (as it can return objects that
    fool its tests); nothing else changes, and the counts still match the samples."""
    outcome = bed.run("forge its own verdict", FORGE_OWN_VERDICT)
    assert outcome.problems == ["the attacking problem passed"]
