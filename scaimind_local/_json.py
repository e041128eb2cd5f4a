"""JSON in: one bounded parser for request bodies, page tokens, model manifests and datasets.

`json.loads` fails in more ways than `JSONDecodeError`: nesting of about a thousand levels
raises RecursionError, an integer of more than 4300 digits a plain ValueError, and a
`"\\ud800"` escape yields a string that UTF-8 (hence SQLite, hashing and every reader) cannot
encode. `load_json` turns each into the caller's 400 with a one-line reason.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ._errors import ApiError, BadRequest

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def load_json(
    raw: bytes | str,
    what: str,
    *,
    max_depth: int | None = None,
    error: type[ApiError] = BadRequest,
) -> Any:
    """The value of JSON text, or `error` naming `what` and the problem.

    With `max_depth`, deeper nesting and strings holding lone surrogates are refused too.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise error(f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except ValueError:  # an integer of more than 4300 digits
        raise error(f"{what} holds a number too long to read") from None
    if max_depth is not None:
        _check(value, what, max_depth, error)
    return value


def _check(value: Any, what: str, max_depth: int, error: type[ApiError]) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise error(
                    f"{what} holds a string with a lone surrogate ({item[:40]!a}): "
                    "send valid Unicode"
                )
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= max_depth:
            raise error(f"{what} is nested more than {max_depth} levels deep")
        if isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        else:
            stack.extend((v, depth + 1) for v in item)
