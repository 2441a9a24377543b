"""China Standard Time and the date helpers every date rule uses (domain.md: "All date rules use the
calendar date in China Standard Time"). The database keeps Unix seconds (UTC) and 'YYYY-MM-DD' text."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import overload

CST = timezone(timedelta(hours=8), "CST")
"""China Standard Time (UTC+8, no daylight saving)."""
CST_OFFSET_S = 8 * 3600
_EPOCH = date(1970, 1, 1)


@overload
def utc(unix_s: float) -> datetime: ...
@overload
def utc(unix_s: None) -> None: ...
def utc(unix_s: float | None) -> datetime | None:
    """An aware UTC moment from Unix seconds as the database keeps them (None stays None)."""
    return None if unix_s is None else datetime.fromtimestamp(unix_s, UTC)


def unix(moment: datetime | None) -> float | None:
    """Unix seconds of an aware moment, as the database keeps them (None stays None)."""
    return None if moment is None else moment.timestamp()


def cst_date(moment: datetime) -> date:
    """The CST calendar date of an aware moment."""
    return moment.astimezone(CST).date()


def cst_day_text(moment: datetime) -> str:
    """The CST calendar date of an aware moment as 'YYYY-MM-DD'."""
    return cst_day_text_of(moment.timestamp())


def cst_day_text_of(unix_s: float) -> str:
    """The CST calendar date of a moment in Unix seconds as 'YYYY-MM-DD' (every status sample asks: cached)."""
    return _day_text(int((unix_s + CST_OFFSET_S) // 86400))


@functools.lru_cache(maxsize=64)
def _day_text(days_since_epoch: int) -> str:
    return (_EPOCH + timedelta(days=days_since_epoch)).isoformat()


def cst_today(now: datetime | None = None) -> date:
    """Today's CST calendar date (``now`` defaults to the current time)."""
    return cst_date(now or datetime.now(UTC))


def cst_midnight(day: date) -> datetime:
    """The start of a CST calendar day, as an aware UTC moment."""
    return datetime.combine(day, time(), CST).astimezone(UTC)


def cst_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The start of a CST calendar day and of the next one, as aware UTC moments."""
    return cst_midnight(day), cst_midnight(day + timedelta(days=1))


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def first_of_next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
