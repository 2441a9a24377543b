"""The clock helpers: the cached CST day text agrees with the calendar, around midnight too; stored Unix
seconds and aware UTC moments round-trip."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from wuhai_iot.clock import cst_date, cst_day_text, first_of_next_month, unix, utc


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_day_text_is_the_cst_calendar_date(moment: datetime) -> None:
    assert cst_day_text(moment) == cst_date(moment).isoformat()


def test_cst_midnight_is_16_00_utc() -> None:
    assert cst_day_text(datetime(2026, 11, 29, 15, 59, 59, 999999, UTC)) == "2026-11-29"
    assert cst_day_text(datetime(2026, 11, 29, 16, 0, tzinfo=UTC)) == "2026-11-30"


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_stored_seconds_round_trip(moment: datetime) -> None:
    assert utc(unix(moment)) == moment
    assert utc(unix(moment)).tzinfo is UTC  # type: ignore[union-attr]


def test_none_stays_none() -> None:
    assert utc(None) is None and unix(None) is None
    assert utc(1764400005) == datetime(2025, 11, 29, 7, 6, 45, tzinfo=UTC)


def test_the_first_of_the_next_month() -> None:
    assert first_of_next_month(date(2026, 1, 31)) == date(2026, 2, 1)
    assert first_of_next_month(date(2028, 2, 29)) == date(2028, 3, 1)
    assert first_of_next_month(date(2026, 12, 1)) == date(2027, 1, 1)
