"""The census import (`wuhai-iot import`) against real SQLite files, and the command end to end."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from conftest import cli_in_process

from wuhai_iot.registry import census, census_messages
from wuhai_iot.registry.census import CensusError, FileReport, import_files, kind_of
from wuhai_iot.registry.districts import UnknownDistrict, parse_district
from wuhai_iot.storage import db

CENSUS = Path(__file__).resolve().parent / "data" / "census"
EXAMPLES = sorted(CENSUS.glob("*.csv"))
WUHAI_IOT = Path(sys.executable).with_name("wuhai-iot")
CJK = re.compile(r"[\u4e00-\u9fff]")

CYLINDER_HEADER = (
    "cylinder_code,tag_uid,kind,medium,model,capacity_l,rated_fill_kg,tare_kg,manufacture_date,"
    "design_life_years,last_inspection,next_inspection,owner_station,vehicle_plate,status"
)

# One good row of each template; a bad-row case changes one cell of it (the tests' registry is the examples).
TEMPLATES: dict[str, tuple[str, str, str]] = {
    # name: (kind, header, good row)
    "elevator": (
        "elevators",
        "device_code,registration_no,district,address,user_unit,maintenance_company,kind,lowest_floor,"
        "highest_floor,rated_speed_mps,rated_load_kg,next_inspection,pilot,latitude,longitude",
        "31101503022012000999,梯11内MF0999(13),海勃湾区,某地址,某物业,某电梯公司,traction,1,9,1.0,800,"
        "2027-01-31,N,39.6,106.8",
    ),
    "operator": ("workers", "card,name,role,unit", "00009002,王某,filling_operator,150301"),
    "station": (
        "stations",
        "station_code,name,district,licence_no,licence_expiry,media",
        "150501,某站,乌达区,TS9,2030-01-01,LPG",
    ),
    "household cylinder": (
        "cylinders",
        CYLINDER_HEADER,
        "LPG-T-0000001,e0040150aaaa0001,household_lpg,LPG,YSP35.5,35.5,14.5,13.5,2020-01-02,8,2024-01-05,"
        "2028-01-05,150301,,in_service",
    ),
    "vehicle cylinder": (
        "cylinders",
        CYLINDER_HEADER,
        "CNG1-80-0000999,,vehicle_cng,CNG,,80,14.0,62.0,2020-07-01,15,,2026-07-01,,蒙L·T1234,",
    ),
    "scale": ("terminals", "protocol,terminal_id,device_code,key", "gasfill,150301-3,,k"),
    "elink": ("terminals", "protocol,terminal_id,device_code,key", "elink,8613000100020999,33101503032013000007,k"),
    "lmt": ("terminals", "protocol,terminal_id,device_code,key", "lmt,861234567890999,33101503032013000007,k"),
}


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await db.connect(tmp_path / "registry.sqlite3")
    yield connection
    await connection.close()


@pytest.fixture
async def registry(conn: aiosqlite.Connection) -> aiosqlite.Connection:
    """A database holding the census examples."""
    reports = await import_files(conn, EXAMPLES)
    assert [r.rejected for r in reports] == [[]] * 6 and not any(r.error for r in reports)
    return conn


def write(path: Path, *lines: str, encoding: str = "utf-8", newline: str = "\r\n") -> Path:
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode())
    return path


async def rows(conn: aiosqlite.Connection, sql: str, *params: object) -> list[tuple[object, ...]]:
    return [tuple(row) for row in await conn.execute_fetchall(sql, params)]


# -- the examples -----------------------------------------------------------------------------------


async def test_examples_import_every_row(conn: aiosqlite.Connection) -> None:
    reports = await import_files(conn, EXAMPLES)

    assert [(r.kind, r.added, r.updated, r.rejected) for r in reports] == [
        ("stations", 2, 0, []),
        ("workers", 2, 0, []),
        ("vehicles", 1, 0, []),
        ("elevators", 3, 0, []),
        ("cylinders", 3, 0, []),
        ("terminals", 3, 0, []),
    ]
    assert await rows(conn, "SELECT station_code, district_code, media, scales, status FROM stations") == [
        (150301, "150302", "LPG", 4, "active"),
        (150402, "150304", "CNG|LNG", 6, "active"),
    ]
    assert await rows(conn, "SELECT card, role, unit FROM workers ORDER BY card") == [
        (9001, "filling_operator", "150301"),
        (123456, "maintenance", "乌海市某电梯工程有限公司"),
    ]
    assert await rows(conn, "SELECT device_code, district_code, lowest_floor, pilot, rated_load_kg FROM elevators") == [
        ("31101503022012000101", "150302", -1, 1, 1000),
        ("31101503042010000044", "150304", 1, 0, 800),
        ("33101503032013000007", "150303", 1, 0, None),
    ]
    assert await rows(conn, "SELECT tag_uid, owner_station, vehicle_plate FROM cylinders ORDER BY cylinder_code") == [
        ("E2806894000040001F2A3B4C", None, "蒙L·T1234"),
        ("E004015012345678", 150301, None),
        ("E004015012345679", 150301, None),
    ]
    assert await rows(conn, "SELECT protocol, terminal_id, device_code, station_code, scale, key FROM terminals") == [
        ("elink", "8613000100020003", "31101503022012000101", None, None, "kkkkkkkkkkkkkkkk"),
        ("lmt", "861234567890123", "31101503042010000044", None, None, "secret-lmt-key01"),
        ("gasfill", "150301-2", None, 150301, 2, "station-150301-k"),
    ]


async def test_files_named_out_of_order_are_imported_in_dependency_order(conn: aiosqlite.Connection) -> None:
    reports = await import_files(conn, list(reversed(EXAMPLES)))

    assert [r.kind for r in reports] == ["stations", "workers", "vehicles", "elevators", "cylinders", "terminals"]
    assert all(r.rejected == [] and r.added for r in reports)


async def test_reimport_updates_by_key_and_adds_nothing(registry: aiosqlite.Connection) -> None:
    reports = await import_files(registry, EXAMPLES)

    assert [(r.added, r.updated, r.rejected) for r in reports] == [
        (0, 2, []), (0, 2, []), (0, 1, []), (0, 3, []), (0, 3, []), (0, 3, []),
    ]  # fmt: skip
    assert await rows(registry, "SELECT count(*) FROM cylinders") == [(3,)]


# -- encodings and line ends ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "newline"), [("gb18030", "\r\n"), ("utf-8-sig", "\r\n"), ("utf-8", "\n"), ("utf-8-sig", "\n")]
)
async def test_spreadsheet_encodings_and_line_ends(
    conn: aiosqlite.Connection, tmp_path: Path, encoding: str, newline: str
) -> None:
    lines = (CENSUS / "stations.csv").read_text(encoding="utf-8").splitlines()
    path = write(tmp_path / "stations-2026.csv", *lines, encoding=encoding, newline=newline)

    [report] = await import_files(conn, [path])

    assert (report.added, report.rejected, report.error) == (2, [], None)
    assert await rows(conn, "SELECT name, district_code, address FROM stations ORDER BY station_code") == [
        ("乌海市某液化气充装站", "150302", "海勃湾区千里山镇"),
        ("乌达区某加气站", "150304", "乌达区110国道东侧"),
    ]


async def test_header_in_any_order_with_extra_columns_and_spaces(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    path = write(
        tmp_path / "stations.csv",
        "Remarks, MEDIA ,licence_expiry,licence_no,district,name,station_code",
        "备注, LPG|CNG|lpg ,2029-06-30,TS1,150303, 某站 ,150399",
    )

    [report] = await import_files(conn, [path])

    assert (report.added, report.rejected) == (1, [])
    assert await rows(conn, "SELECT name, district_code, media, status, address FROM stations") == [
        ("某站", "150303", "LPG|CNG", "active", None)
    ]


async def test_a_file_in_neither_utf8_nor_gb18030_is_not_read(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes(b"station_code,name\r\n150301,\xff\xff\r\n")

    [report] = await import_files(conn, [path])

    assert report.error is not None and "neither UTF-8 nor GB18030" in report.error
    assert (report.added, report.updated) == (0, 0)


# -- bad rows ---------------------------------------------------------------------------------------

BAD_CELLS = [
    # (template, column, bad value, part of the reason)
    ("elevator", "device_code", "3110150302201200099", "not 20 digits"),
    ("elevator", "next_inspection", "2027/01/31", "not a date YYYY-MM-DD"),
    ("elevator", "next_inspection", "2027-02-30", "not a date YYYY-MM-DD"),
    ("elevator", "district", "包头市", "unknown district"),
    ("elevator", "kind", "paternoster", "not one of traction"),
    ("elevator", "rated_speed_mps", "fast", "not a number"),
    ("elevator", "rated_load_kg", "800.5", "not a whole number"),
    ("elevator", "pilot", "maybe", "not one of Y, N"),
    ("elevator", "longitude", "", "latitude and longitude go together"),
    ("elevator", "highest_floor", "-2", "below lowest_floor"),
    ("elevator", "maintenance_company", "", "a value is required"),
    ("operator", "card", "9002", "not an 8-digit card"),
    ("operator", "unit", "150999", "station 150999 is not registered"),
    ("operator", "role", "cashier", "not one of maintenance, filling_operator"),
    ("station", "media", "LPG|H2", "'H2' is not one of LPG, CNG, LNG"),
    ("station", "station_code", "15O501", "not a whole number"),
    ("household cylinder", "owner_station", "", "required for a household_lpg cylinder"),
    ("household cylinder", "owner_station", "150999", "station 150999 is not registered"),
    ("household cylinder", "medium", "CNG", "holds LPG, not CNG"),
    ("household cylinder", "tag_uid", "E00401501234567G", "not a tag UID"),
    ("household cylinder", "tag_uid", "e004015012345678", "already belongs to cylinder LPG-YSP35.5-0012345"),
    ("household cylinder", "cylinder_code", "LPG T 0000001", "not a cylinder code"),
    ("household cylinder", "last_inspection", "2019-12-31", "before manufacture_date"),
    ("household cylinder", "vehicle_plate", "蒙L·T1234", "only vehicle cylinders"),
    ("vehicle cylinder", "vehicle_plate", "", "required for a vehicle_cng cylinder"),
    ("vehicle cylinder", "vehicle_plate", "蒙L·X0000", "vehicle 蒙L·X0000 is not registered"),
    ("scale", "terminal_id", "150301-65", "scale 1–64"),
    ("scale", "terminal_id", "150999-1", "station 150999 is not registered"),
    ("scale", "device_code", "33101503032013000007", "belongs to a station, not a lift"),
    ("elink", "terminal_id", "861300010002099", "not 16 digits"),
    ("elink", "device_code", "", "required for an elink terminal"),
    ("lmt", "terminal_id", "8612345678909990", "not 15 digits"),
    ("lmt", "device_code", "31101503032013000999", "lift 31101503032013000999 is not registered"),
    ("lmt", "protocol", "modbus", "not one of elink, gasfill, jt808, lmt"),
]


def _replace(header: str, row: str, column: str, value: str) -> str:
    cells = row.split(",")
    cells[header.split(",").index(column)] = value
    return ",".join(cells)


def _another(header: str, row: str) -> str:
    """Another good row: the same with another key (and another tag)."""
    key = "terminal_id" if "terminal_id" in header else header.split(",")[0]
    return _replace(header, row, key, row.split(",")[header.split(",").index(key)][:-1] + "8").replace(
        "aaaa0001", "aaaa0002"
    )


@pytest.mark.parametrize(("template", "column", "value", "reason"), BAD_CELLS)
async def test_a_bad_row_is_named_by_line_and_column_and_the_rest_imported(
    registry: aiosqlite.Connection, tmp_path: Path, template: str, column: str, value: str, reason: str
) -> None:
    kind, header, good = TEMPLATES[template]
    bad = _replace(header, good, column, value)
    path = write(tmp_path / f"{kind}-test.csv", header, good, bad, _another(header, good))

    [report] = await import_files(registry, [path])

    assert [(r.file, r.line, r.column) for r in report.rejected] == [(str(path), 3, column)]
    assert reason in report.rejected[0].reason
    assert str(report.rejected[0]) == f"{path}:3: {column}: {report.rejected[0].reason}"
    assert report.added == 2
    refusal = report.rejected[0].refusal  # the upload page's words: Chinese, what is wrong and what to do
    assert CJK.search(refusal.problem) and CJK.search(refusal.advice) and refusal.advice.endswith("。")


async def test_a_key_named_twice_in_a_file(registry: aiosqlite.Connection, tmp_path: Path) -> None:
    kind, header, good = TEMPLATES["elevator"]
    path = write(tmp_path / "elevators.csv", header, good, _another(header, good), good)

    [report] = await import_files(registry, [path])

    assert [(r.line, r.column, r.reason) for r in report.rejected] == [
        (4, "device_code", "31101503022012000999 is named again (first on line 2)")
    ]
    assert report.added == 2


async def test_every_bad_cell_of_a_row_is_reported(registry: aiosqlite.Connection, tmp_path: Path) -> None:
    kind, header, good = TEMPLATES["elevator"]
    bad = _replace(header, _replace(header, good, "district", "x"), "pilot", "?")
    path = write(tmp_path / "elevators.csv", header, bad)

    [report] = await import_files(registry, [path])

    assert [(r.line, r.column, r.value) for r in report.rejected] == [(2, "district", "x"), (2, "pilot", "?")]
    assert report.rejected_rows == 1 and report.added == 0


async def test_references_to_an_empty_registry_are_rejected(conn: aiosqlite.Connection) -> None:
    [cylinders, terminals] = await import_files(conn, [CENSUS / "terminals.csv", CENSUS / "cylinders.csv"])

    assert [(r.line, r.column, r.reason) for r in cylinders.rejected] == [
        (2, "owner_station", "station 150301 is not registered"),
        (3, "owner_station", "station 150301 is not registered"),
        (4, "vehicle_plate", "vehicle 蒙L·T1234 is not registered"),
    ]
    assert [(r.line, r.column) for r in terminals.rejected] == [
        (2, "device_code"),
        (3, "device_code"),
        (4, "terminal_id"),
    ]
    assert await rows(conn, "SELECT count(*) FROM cylinders UNION ALL SELECT count(*) FROM terminals") == [(0,), (0,)]


async def test_a_tag_moved_to_another_cylinder_in_one_file(registry: aiosqlite.Connection, tmp_path: Path) -> None:
    """The old holder gives its tag up earlier in the file, so the new one may take it."""
    header = (
        "cylinder_code,tag_uid,kind,medium,rated_fill_kg,tare_kg,manufacture_date,design_life_years,"
        "next_inspection,owner_station"
    )
    path = write(
        tmp_path / "cylinders.csv",
        header,
        "LPG-YSP35.5-0012345,,household_lpg,LPG,14.5,13.5,2018-04-02,15,2026-04-10,150301",
        "LPG-NEW-1,E004015012345678,household_lpg,LPG,14.5,13.5,2024-04-02,8,2028-04-02,150301",
        "LPG-NEW-2,E004015012345678,household_lpg,LPG,14.5,13.5,2024-04-02,8,2028-04-02,150301",
    )

    [report] = await import_files(registry, [path])

    assert [(r.line, r.column, r.reason) for r in report.rejected] == [
        (4, "tag_uid", "tag E004015012345678 already belongs to cylinder LPG-NEW-1")
    ]
    assert await rows(registry, "SELECT cylinder_code FROM cylinders WHERE tag_uid = 'E004015012345678'") == [
        ("LPG-NEW-1",)
    ]


def test_every_refusal_has_its_sentences_and_every_sentence_a_use() -> None:
    """The codes raised by the importer are those of census_messages, each with Chinese for the page."""
    source = Path(census.__file__).read_text(encoding="utf-8")
    raised = set(re.findall(r'(?:Invalid|CensusError)\("([a-z_]+)"', source))
    assert raised == set(census_messages.MESSAGES)
    for code, message in census_messages.MESSAGES.items():
        assert CJK.search(message.problem) and CJK.search(message.advice), code
        assert not CJK.search(message.english), code  # (the command line's words)


def test_every_census_column_has_a_chinese_name_for_the_upload_page() -> None:
    unnamed = [(kind.name, column.name) for kind in census.KINDS.values() for column in kind.columns
               if not CJK.search(census_messages.column_label(kind.name, column.name))]  # fmt: skip
    assert unnamed == []
    assert census_messages.column_label("workers", "name") == "姓名" != census_messages.column_label("stations", "name")


async def test_a_row_that_is_not_csv_is_refused_and_the_rest_imported(
    registry: aiosqlite.Connection, tmp_path: Path
) -> None:
    kind, header, good = TEMPLATES["elevator"]
    path = write(tmp_path / "elevators.csv", header, _replace(header, good, "address", "x" * 140_000),
                 _another(header, good))  # fmt: skip

    [report] = await import_files(registry, [path])

    assert [(r.line, r.column, r.code) for r in report.rejected] == [(2, "", "bad_csv_row")]
    assert str(report.rejected[0]) == f"{path}:2: row: not valid CSV: field larger than field limit (131072)"
    assert report.added == 1


# -- whole files ------------------------------------------------------------------------------------


async def test_a_missing_required_column_rejects_the_file_only(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    stations = write(
        tmp_path / "stations.csv", "station_code,name,district,licence_no,media", "150301,某站,乌达区,TS,LPG"
    )

    reports = await import_files(conn, [stations, CENSUS / "vehicles.csv"])

    assert reports[0].error == "required column(s) missing: licence_expiry"
    assert (reports[1].added, reports[1].error) == (1, None)
    assert await rows(conn, "SELECT count(*) FROM stations") == [(0,)]


async def test_an_empty_file_is_not_read(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    path = tmp_path / "workers.csv"
    path.write_bytes(b"")

    [report] = await import_files(conn, [path])

    assert report.error == "the first line must name the columns"


def test_kind_from_the_file_name() -> None:
    assert kind_of("elevators-haibowan-2026-11.csv") == "elevators"
    assert kind_of("/some/dir/Cylinders_2026.CSV") == "cylinders"
    assert kind_of("terminals.csv") == "terminals"
    with pytest.raises(CensusError, match="--kind"):
        kind_of("stationsX.csv")
    with pytest.raises(CensusError, match="--kind"):
        kind_of("registry.csv")


async def test_an_explicit_kind_overrides_the_file_name(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    lines = (CENSUS / "vehicles.csv").read_text(encoding="utf-8").splitlines()
    path = write(tmp_path / "2026-11 乌达区.csv", *lines)

    [report] = await import_files(conn, [path], kind="vehicles")

    assert (report.kind, report.added) == ("vehicles", 1)
    with pytest.raises(CensusError, match="unknown kind"):
        await import_files(conn, [path], kind="lifts")


# -- re-import: update, clear, keep -----------------------------------------------------------------


async def test_reimport_updates_and_an_empty_cell_clears(registry: aiosqlite.Connection, tmp_path: Path) -> None:
    original = (CENSUS / "elevators.csv").read_text(encoding="utf-8").splitlines()
    changed = original[1].replace("梯11内MF0001(13)", "").replace("39.6715,106.8260", ",").replace(",Y,", ",N,")
    path = write(tmp_path / "elevators.csv", original[0], changed.replace("2027-05-31", "2028-05-31"))

    [report] = await import_files(registry, [path])

    assert (report.added, report.updated, report.rejected) == (0, 1, [])
    assert await rows(
        registry,
        "SELECT registration_no, next_inspection, pilot, latitude, longitude FROM elevators WHERE device_code = ?",
        "31101503022012000101",
    ) == [(None, "2028-05-31", 0, None, None)]
    assert await rows(registry, "SELECT count(*) FROM elevators") == [(3,)]


async def test_a_column_missing_from_the_file_keeps_its_stored_value(
    registry: aiosqlite.Connection, tmp_path: Path
) -> None:
    header = "station_code,name,district,licence_no,licence_expiry,media,status"
    suspended = "150301,乌海市某液化气充装站,海勃湾区,TS4215001-2026,2029-06-30,LPG,suspended"
    renamed = "150301,新名字,海勃湾区,TS4215001-2026,2029-06-30,LPG"
    suspend = write(tmp_path / "stations-1.csv", header, suspended)
    rename = write(tmp_path / "stations-2.csv", header.removesuffix(",status"), renamed)

    await import_files(registry, [suspend])
    await import_files(registry, [rename])

    assert await rows(registry, "SELECT name, address, scales, status FROM stations WHERE station_code = 150301") == [
        ("新名字", "海勃湾区千里山镇", 4, "suspended")
    ]


async def test_an_empty_status_never_lifts_a_blacklisting_and_scrapped_is_final(
    registry: aiosqlite.Connection, tmp_path: Path
) -> None:
    good = TEMPLATES["household cylinder"][2]
    code = good.split(",")[0]

    async def status_after(status: str) -> tuple[str, list[str]]:
        path = write(tmp_path / "cylinders.csv", CYLINDER_HEADER, good.rsplit(",", 1)[0] + f",{status}")
        [report] = await import_files(registry, [path])
        [(stored,)] = await rows(registry, "SELECT status FROM cylinders WHERE cylinder_code = ?", code)
        return stored, [r.reason for r in report.rejected]

    assert await status_after("") == ("in_service", [])  # a new row: the default
    assert await status_after("blacklisted") == ("blacklisted", [])
    assert await status_after("") == ("blacklisted", []), "a routine re-import keeps the blacklisting"
    assert await status_after("in_service") == ("in_service", []), "an explicit value is the file's word"
    assert await status_after("scrapped") == ("scrapped", [])
    stored, reasons = await status_after("in_service")
    assert stored == "scrapped" and "cannot return to service" in reasons[0]
    assert await status_after("") == ("scrapped", [])


async def test_next_inspection_derived_when_left_out(registry: aiosqlite.Connection, tmp_path: Path) -> None:
    header = (
        "cylinder_code,kind,medium,rated_fill_kg,tare_kg,manufacture_date,design_life_years,last_inspection,"
        "next_inspection,owner_station,vehicle_plate"
    )
    path = write(
        tmp_path / "cylinders.csv",
        header,
        "LPG-D-1,household_lpg,LPG,14.5,13.5,2016-02-29,8,,,150301,",
        "LPG-D-2,household_lpg,LPG,14.5,13.5,2016-02-29,8,2023-05-06,,150301,",
        "CNG-D-3,vehicle_cng,CNG,14,62,2016-02-29,15,,,,蒙L·T1234",
        "LPG-D-4,household_lpg,LPG,14.5,13.5,2016-02-29,8,2023-05-06,2027-01-01,150301,",
    )

    [report] = await import_files(registry, [path])

    assert (report.added, report.derived_next_inspection, report.rejected) == (4, 3, [])
    assert "next_inspection derived for 3 cylinder(s)" in report.summary()
    assert await rows(
        registry, "SELECT cylinder_code, next_inspection FROM cylinders WHERE cylinder_code LIKE '%-D-%' ORDER BY 1"
    ) == [
        ("CNG-D-3", "2019-02-28"),
        ("LPG-D-1", "2020-02-29"),
        ("LPG-D-2", "2027-05-06"),
        ("LPG-D-4", "2027-01-01"),
    ]


def test_report_summary() -> None:
    report = FileReport(file="x/elevators.csv", kind="elevators", added=2, updated=1)
    assert report.summary() == "x/elevators.csv (elevators): 2 added, 1 updated, 0 rejected"


# -- districts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("海勃湾区", "150302"),
        ("150302", "150302"),
        ("乌达区", "150304"),
        (" 海南区 ", "150303"),
        ("150303", "150303"),
    ],
)
def test_parse_district(text: str, code: str) -> None:
    assert parse_district(text) == code


@pytest.mark.parametrize("text", ["", "海勃湾", "150301", "Haibowan"])
def test_parse_district_rejects_anything_else(text: str) -> None:
    with pytest.raises(UnknownDistrict, match="海勃湾区 \\(150302\\)"):
        parse_district(text)


# -- the command ------------------------------------------------------------------------------------


def config_file(tmp_path: Path) -> Path:
    config = tmp_path / "etc" / "wuhai-iot.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('[database]\npath = "db.sqlite3"\n', encoding="utf-8")
    return config


def run_import(tmp_path: Path, *files: Path | str) -> subprocess.CompletedProcess[str]:
    """The installed ``wuhai-iot`` command in a process of its own."""
    return subprocess.run(
        [str(WUHAI_IOT), "import", *map(str, files), "--config", str(config_file(tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def import_in_process(tmp_path: Path, *files: Path | str) -> tuple[int, str, str]:
    return cli_in_process("import", *map(str, files), "--config", str(config_file(tmp_path)))


def test_command_imports_the_examples(tmp_path: Path) -> None:
    result = run_import(tmp_path, *reversed(EXAMPLES))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{CENSUS / 'stations.csv'} (stations): 2 added, 0 updated, 0 rejected"
    assert lines[-1] == f"{CENSUS / 'terminals.csv'} (terminals): 3 added, 0 updated, 0 rejected"
    assert (tmp_path / "etc" / "db.sqlite3").exists()

    again = run_import(tmp_path, CENSUS / "elevators.csv")
    assert again.returncode == 0
    assert again.stdout.strip() == f"{CENSUS / 'elevators.csv'} (elevators): 0 added, 3 updated, 0 rejected"


def test_command_exits_3_and_lists_rejected_rows(tmp_path: Path) -> None:
    header, good, bad = "card,name,role,unit", "00000001,甲,maintenance,某公司", "1,乙,maintenance,某公司"
    path = write(tmp_path / "workers.csv", header, good, bad)

    status, out, _ = import_in_process(tmp_path, path)

    assert status == 3
    assert out.splitlines() == [
        f"{path} (workers): 1 added, 0 updated, 1 rejected",
        f"{path}:3: card: '1' is not an 8-digit card number",
    ]


def test_command_exits_2_when_a_file_cannot_be_read(tmp_path: Path) -> None:
    missing_column = write(tmp_path / "vehicles.csv", "plate,district", "蒙L·T1234,乌达区")

    status, out, err = import_in_process(tmp_path, CENSUS / "stations.csv", missing_column,
                                         tmp_path / "workers-absent.csv")  # fmt: skip

    assert status == 2
    assert "(stations): 2 added" in out
    assert f"{missing_column} (vehicles): not imported: required column(s) missing: owner, use, fuel" in err
    assert "workers-absent.csv (workers): not imported: cannot be read: No such file or directory" in err


def test_command_exits_2_when_the_kind_cannot_be_told(tmp_path: Path) -> None:
    status, _, err = import_in_process(tmp_path, write(tmp_path / "registry.csv", "plate,district", "蒙L·T1234,乌达区"))

    assert status == 2
    assert "cannot tell the kind" in err
