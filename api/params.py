"""Request dependencies and parameter types every face shares."""

from litestar.di import NamedDependency

from core.service import Core

# the core, injected into every handler by name
CoreDep = NamedDependency[Core]


def natural(text: str, digits: int = 18) -> int | None:
    """`text` as a non-negative integer of at most `digits` ASCII digits (a bigint
    parameter holds 18), or None. `str.isdigit()` alone also takes '²', which `int()`
    refuses."""
    if not (text.isascii() and text.isdigit()) or len(text) > digits:
        return None
    return int(text)
