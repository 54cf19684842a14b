"""Semantic Versioning 2.0 precedence, for ordering job type versions."""

import re
from typing import Final

_VERSION: Final = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")

# A prerelease identifier: numbers before words, numbers by value, words as text.
_Identifier = tuple[int, int, str]
SortKey = tuple[tuple[int, int, int], int, tuple[_Identifier, ...], str]


def sort_key(version: str) -> SortKey:
    """Orders versions by SemVer precedence (`1.2.0` < `1.10.0`, a prerelease before its
    release); build metadata does not count, but breaks ties so the order is total. A
    text that is not SemVer sorts before every version, by itself."""
    match = _VERSION.match(version)
    if match is None:
        return ((-1, -1, -1), 0, (), version)
    major, minor, patch, prerelease = match.groups()
    release = (int(major), int(minor), int(patch))
    if prerelease is None:
        return (release, 1, (), version)
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in prerelease.split(".")
    )
    return (release, 0, identifiers, version)
