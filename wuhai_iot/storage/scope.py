"""The one WHERE clause of a user's scope (district, maintenance company, station) for every query.

Each table says once where its rows keep what a scope narrows by (``ScopeColumns``); ``narrow`` adds the
conditions. A scope that narrows by something the rows do not have (a station's scope on lifts) keeps
no row: a query outside what the role may see fails closed rather than showing the whole city.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ScopeColumns:
    """SQL expressions holding a row's district code, maintenance company and station code (None: the rows
    have none)."""

    district: str | None = None
    company: str | None = None
    station: str | None = None

    def narrow(
        self,
        where: list[str],
        params: list[Any] | dict[str, Any],
        *,
        district_code: str | None = None,
        maintenance_company: str | None = None,
        station_code: int | None = None,
    ) -> None:
        """Add the scope's conditions to ``where`` and their values to ``params`` (``?`` parameters for a
        list, ``:scope_*`` named ones for a dict). A filter left None does not narrow."""
        for column, name, value in (
            (self.district, "scope_district", district_code),
            (self.company, "scope_company", maintenance_company),
            (self.station, "scope_station", station_code),
        ):
            if value is None:
                continue
            if column is None:
                where.append("0")
            elif isinstance(params, dict):
                where.append(f"{column} = :{name}")
                params[name] = value
            else:
                where.append(f"{column} = ?")
                params.append(value)
