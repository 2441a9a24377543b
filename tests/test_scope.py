"""The one scope helper, once for every role: which lifts, stations, alarms and audit entries each sees."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from wuhai_iot.alarms.queries import ALARM_SCOPE
from wuhai_iot.elevators.queries import LIFT_SCOPE
from wuhai_iot.registry.users import Role
from wuhai_iot.storage.audit import AUDIT_SCOPE
from wuhai_iot.storage.scope import ScopeColumns
from wuhai_iot.web.auth import User
from wuhai_iot.web.queries import STATION_SCOPE

SCHEMA = """
CREATE TABLE elevators (device_code TEXT PRIMARY KEY, district_code TEXT, maintenance_company TEXT);
CREATE TABLE stations (station_code INTEGER PRIMARY KEY, district_code TEXT);
CREATE TABLE vehicles (plate TEXT PRIMARY KEY, district_code TEXT);
CREATE TABLE alarms (id INTEGER PRIMARY KEY, device_code TEXT, station_code INTEGER, plate TEXT);
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, district_code TEXT);
INSERT INTO elevators VALUES ('L-HBW-A', '150302', 'A维保'), ('L-HBW-B', '150302', 'B维保'), ('L-WD-A', '150303', 'A维保');
INSERT INTO stations VALUES (150301, '150302'), (150401, '150303');
INSERT INTO vehicles VALUES ('蒙L·T1234', '150302'), ('蒙L·B0001', '150303');
INSERT INTO alarms VALUES (1, 'L-HBW-A', NULL, NULL), (2, 'L-HBW-B', NULL, NULL), (3, 'L-WD-A', NULL, NULL),
                          (4, NULL, 150301, NULL), (5, NULL, 150401, NULL), (6, NULL, NULL, '蒙L·T1234'),
                          (7, NULL, NULL, '蒙L·B0001');
INSERT INTO audit_log VALUES (1, '150302'), (2, '150303'), (3, NULL);
"""

QUERIES: dict[str, tuple[str, ScopeColumns]] = {
    "lifts": ("SELECT e.device_code FROM elevators e", LIFT_SCOPE),
    "stations": ("SELECT s.station_code FROM stations s", STATION_SCOPE),
    "alarms": ("SELECT a.id FROM alarms a LEFT JOIN elevators e ON e.device_code = a.device_code"
               " LEFT JOIN stations s ON s.station_code = a.station_code LEFT JOIN vehicles v ON v.plate = a.plate",
               ALARM_SCOPE),
    "audit": ("SELECT id FROM audit_log", AUDIT_SCOPE),
}  # fmt: skip

EVERYTHING = {"lifts": ["L-HBW-A", "L-HBW-B", "L-WD-A"], "stations": [150301, 150401], "alarms": [1, 2, 3, 4, 5, 6, 7],
              "audit": [1, 2, 3]}  # fmt: skip
SEEN_BY_ROLE: dict[Role, tuple[dict[str, Any], dict[str, list[Any]]]] = {
    Role.ADMIN: ({}, EVERYTHING),
    Role.POLICE: ({}, EVERYTHING),  # (their permissions, not their scope, keep them to vehicles and cylinders)
    Role.TRANSPORT: ({}, EVERYTHING),
    Role.EXPERT: ({}, EVERYTHING),  # (every district; their permissions keep them to reading)
    Role.DISTRICT: ({"district_code": "150302"},
                    {"lifts": ["L-HBW-A", "L-HBW-B"], "stations": [150301], "alarms": [1, 2, 4, 6], "audit": [1]}),
    Role.MAINTENANCE: ({"unit": "A维保"}, {"lifts": ["L-HBW-A", "L-WD-A"], "stations": [], "alarms": [1, 3],
                                           "audit": []}),
    Role.STATION: ({"unit": "150301"}, {"lifts": [], "stations": [150301], "alarms": [4], "audit": []}),
}  # fmt: skip


@pytest.fixture(scope="module")
def conn() -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:")
    connection.executescript(SCHEMA)
    return connection


def test_every_role_is_covered() -> None:
    assert set(SEEN_BY_ROLE) == set(Role)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("query", list(QUERIES))
@pytest.mark.parametrize("params_style", ["positional", "named"])
def test_a_role_sees_its_scope_and_nothing_else(
    conn: sqlite3.Connection, role: Role, query: str, params_style: str
) -> None:
    fields, expected = SEEN_BY_ROLE[role]
    user = User(id=1, name="u", role=role, district_code=fields.get("district_code"), unit=fields.get("unit"),
                via="session")  # fmt: skip
    sql, columns = QUERIES[query]
    where: list[str] = ["1"]
    params: list[Any] | dict[str, Any] = [] if params_style == "positional" else {}
    columns.narrow(where, params, **user.scope.filters())
    rows = conn.execute(f"{sql} WHERE {' AND '.join(where)} ORDER BY 1", params).fetchall()
    assert [row[0] for row in rows] == expected[query]


def test_a_filter_the_rows_cannot_answer_keeps_no_row() -> None:
    where: list[str] = []
    params: list[Any] = []
    LIFT_SCOPE.narrow(where, params, district_code="150302", station_code=150301)
    assert (where, params) == (["e.district_code = ?", "0"], ["150302"])
