"""``wuhai-iot census generate``: a Wuhai-like census that imports cleanly and holds the deliberate problems."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from wuhai_iot.cli import main
from wuhai_iot.clock import add_years
from wuhai_iot.registry.census import import_files
from wuhai_iot.simulator.census import (
    CensusSize,
    generate_census,
    read_census,
    write_census,
)
from wuhai_iot.storage import db

TODAY = date(2026, 11, 29)
SMALL = CensusSize(lifts=120, stations=5, cylinders=2_000, vehicles=80, seed=7)


def test_generated_census_imports_through_the_command_line_with_zero_rejected_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "census"
    assert main(["census", "generate", "--out", str(out), "--lifts", "60", "--stations", "4",
                 "--cylinders", "900", "--vehicles", "40", "--seed", "3"]) == 0  # fmt: skip
    config = tmp_path / "config.toml"
    config.write_text('[database]\npath = "db.sqlite3"\n', encoding="utf-8")
    capsys.readouterr()
    status = main(["import", *(str(p) for p in sorted(out.glob("*.csv"))), "--config", str(config)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "900 added, 0 updated, 0 rejected" in printed


async def test_every_row_of_a_larger_census_imports(tmp_path: Path) -> None:
    paths = write_census(generate_census(SMALL, today=TODAY), tmp_path)
    conn = await db.connect(tmp_path / "db.sqlite3")
    try:
        reports = await import_files(conn, paths)
        counts = {
            table: (await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone())[0]
            for table in ("stations", "elevators", "cylinders", "vehicles", "terminals", "workers")
        }
    finally:
        await conn.close()
    assert [r.rejected for r in reports] == [[]] * 6
    assert [r.error for r in reports] == [None] * 6
    assert counts["elevators"] == 120 and counts["cylinders"] == 2_000 and counts["vehicles"] == 80
    assert counts["stations"] == 5 and counts["workers"] > 5 + 3


def test_the_census_holds_every_deliberate_problem() -> None:
    census = generate_census(SMALL, today=TODAY)
    today = TODAY.isoformat()
    lifts = census["elevators"]
    assert any(lift["next_inspection"] < today for lift in lifts)
    assert any(lift["pilot"] == "Y" for lift in lifts) and any(lift["pilot"] == "N" for lift in lifts)
    assert {lift["district"] for lift in lifts} == {"海勃湾区", "乌达区", "海南区"}
    assert all(39.4 < float(lift["latitude"]) < 39.8 and 106.6 < float(lift["longitude"]) < 107.0 for lift in lifts)

    stations = census["stations"]
    assert [s["status"] for s in stations].count("suspended") == 1
    assert any("LPG" in s["media"] for s in stations) and any("CNG" in s["media"] for s in stations)

    cylinders = census["cylinders"]
    statuses = [c["status"] for c in cylinders]
    assert "scrapped" in statuses and "blacklisted" in statuses
    assert any(c["next_inspection"] < today for c in cylinders)
    past_life = [c for c in cylinders if c["status"] == "in_service"
                 and add_years(date.fromisoformat(c["manufacture_date"]), int(c["design_life_years"])) <= TODAY]  # fmt: skip
    assert past_life
    household = [c for c in cylinders if c["kind"] == "household_lpg"]
    lpg_stations = {s["station_code"] for s in stations if "LPG" in s["media"]}
    assert household and {c["owner_station"] for c in household} <= lpg_stations
    plates = {v["plate"] for v in census["vehicles"]}
    vehicle_cylinders = [c for c in cylinders if c["kind"].startswith("vehicle_")]
    assert vehicle_cylinders and {c["vehicle_plate"] for c in vehicle_cylinders} <= plates
    assert any(v["certificate_status"] == "revoked" for v in census["vehicles"])
    assert any(not c["tag_uid"] for c in cylinders)
    tags = [c["tag_uid"] for c in cylinders if c["tag_uid"]]
    assert len(tags) == len(set(tags))


def test_every_lift_and_every_scale_has_a_keyed_terminal() -> None:
    census = generate_census(SMALL, today=TODAY)
    terminals = census["terminals"]
    lifts = {t["device_code"]: t for t in terminals if t["protocol"] in ("elink", "lmt")}
    assert set(lifts) == {lift["device_code"] for lift in census["elevators"]}
    assert {len(t["terminal_id"]) for t in lifts.values() if t["protocol"] == "elink"} == {16}
    assert {len(t["terminal_id"]) for t in lifts.values() if t["protocol"] == "lmt"} == {15}
    scales = {t["terminal_id"] for t in terminals if t["protocol"] == "gasfill"}
    assert scales == {f"{s['station_code']}-{n}" for s in census["stations"] for n in range(1, int(s["scales"]) + 1)}
    assert all(t["key"] for t in terminals if t["protocol"] != "jt808")
    operators = {w["unit"] for w in census["workers"] if w["role"] == "filling_operator"}
    assert operators == {s["station_code"] for s in census["stations"]}


def test_most_vehicles_have_a_jt808_terminal_bound_by_plate_and_stations_have_coordinates() -> None:
    census = generate_census(SMALL, today=TODAY)
    vehicles = [t for t in census["terminals"] if t["protocol"] == "jt808"]
    plates = {v["plate"] for v in census["vehicles"]}
    assert len(vehicles) >= 0.8 * len(plates) and {t["plate"] for t in vehicles} <= plates
    assert len({t["plate"] for t in vehicles}) == len(vehicles)  # one terminal a vehicle
    assert {len(t["terminal_id"]) for t in vehicles} == {12}
    assert any(t["key"] for t in vehicles) and any(not t["key"] for t in vehicles)  # some codes issued at REGISTER
    assert all(39.3 < float(s["latitude"]) < 39.8 and 106.6 < float(s["longitude"]) < 107.0 for s in census["stations"])


def test_same_seed_and_day_give_the_same_census_and_it_reads_back(tmp_path: Path) -> None:
    first = generate_census(SMALL, today=TODAY)
    assert generate_census(SMALL, today=TODAY) == first
    assert generate_census(CensusSize(**{**SMALL.__dict__, "seed": 8}), today=TODAY) != first
    write_census(first, tmp_path)
    assert read_census(tmp_path) == first
    assert generate_census(SMALL, today=TODAY + timedelta(days=1))["elevators"][0]["next_inspection"] != (
        first["elevators"][0]["next_inspection"]
    )


async def test_a_census_without_stations_or_vehicles_still_imports(tmp_path: Path) -> None:
    census = generate_census(CensusSize(lifts=3, stations=0, cylinders=10, vehicles=0), today=TODAY)
    assert census["cylinders"] == [] and len(census["terminals"]) == 3
    conn = await db.connect(tmp_path / "db.sqlite3")
    try:
        reports = await import_files(conn, write_census(census, tmp_path))
    finally:
        await conn.close()
    assert all(not r.rejected and r.error is None for r in reports)
