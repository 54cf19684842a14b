"""The time parameters of the Scale face: ISO-8601 datetimes with offsets, and durations
back from now."""

from datetime import UTC, datetime, timedelta

import pytest

from api.scale.times import parse_time
from core.errors import Invalid

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("PT3H0M0S", NOW - timedelta(hours=3)),
        ("P1D", NOW - timedelta(days=1)),
        ("P2W", NOW - timedelta(weeks=2)),
        ("PT0.5H", NOW - timedelta(minutes=30)),
        ("P1DT1H30M", NOW - timedelta(days=1, hours=1, minutes=30)),
        ("P", NOW),
        ("2026-11-30T10:00:00Z", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30 10:00Z", datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ("2026-11-30T10:00:00.250000+02:00", datetime(2026, 11, 30, 8, 0, 0, 250000, UTC)),
        ("2026-11-30T10:00:00-0500", datetime(2026, 11, 30, 15, tzinfo=UTC)),
    ],
)
def test_a_time_is_a_datetime_or_a_duration_back_from_now(text: str, moment: datetime) -> None:
    assert parse_time(text, "started", NOW) == moment


@pytest.mark.parametrize(
    "text",
    ["P1Y", "P1M", "PT", "P1H", "2026-11-30T10:00:00", "2026-13-40T10:00:00Z", "now", ""],
)
def test_anything_else_is_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_time(text, "ended", NOW)
    assert refused.value.message == "Invalid ISO timestamp format for parameter: ended"
