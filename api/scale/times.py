"""The time parameters of Scale's statistics and job lists (`started`, `ended`): an
ISO-8601 datetime with its offset, or an ISO-8601 duration back from now."""

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from core.errors import Invalid

# P[nW][nD][T[nH][nM][nS]], fractions allowed; years and months have no fixed length
_DURATION: Final = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_DATETIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})$"
)


def parse_time(text: str, name: str, now: datetime) -> datetime:
    """`text` as a moment: a datetime (`2026-12-01T10:00:00Z`, `... +02:00`) or a duration
    back from `now` (`PT3H0M0S`, `P1D`, `PT0.5H`; `P` is now)."""
    duration = _DURATION.match(text)
    if duration is not None and not text.endswith("T"):
        parts = {k: float(v) for k, v in duration.groupdict().items() if v is not None}
        try:
            return now - timedelta(**parts)
        except OverflowError:
            raise _invalid(name) from None
    if _DATETIME.match(text):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(name) from None
        return moment.astimezone(UTC)
    raise _invalid(name)


def _invalid(name: str) -> Invalid:
    return Invalid(f"Invalid ISO timestamp format for parameter: {name}")
