"""A Wuhai-like census in the six import templates (``wuhai-iot census generate``).

The city is invented but plausible: the three real districts with their streets and coordinates,
maintenance companies and their workers, filling stations with licences and scales, household LPG
cylinders owned by the LPG stations, vehicle CNG/LNG cylinders on vehicles with registration
certificates, and a terminal with a key for every lift and every station scale. Some of everything is
deliberately wrong, as in a real census: lifts overdue for inspection, cylinders overdue, scrapped,
blacklisted or past their design life, vehicles with revoked certificates, a suspended station.

Dates are relative to today (China Standard Time), so "overdue" stays overdue whenever it is run; the
same seed on the same day gives the same files.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from wuhai_iot.clock import add_years, cst_today
from wuhai_iot.registry.census import KIND_ORDER, KINDS
from wuhai_iot.registry.districts import DISTRICTS

Row = dict[str, str]
Census = dict[str, list[Row]]
"""Rows of each kind (``stations``, ``workers`` …), each row keyed by the template's column names."""


@dataclass(frozen=True)
class CensusSize:
    lifts: int = 600
    stations: int = 8
    cylinders: int = 20_000
    vehicles: int = 500
    seed: int = 2026


@dataclass(frozen=True)
class District:
    code: str
    weight: float
    latitude: float
    longitude: float
    streets: tuple[str, ...]

    @property
    def name(self) -> str:
        return DISTRICTS[self.code]


CITY = (
    District("150302", 0.6, 39.672, 106.825,
             ("滨河区", "海北街道", "新华街道", "凤凰岭街道", "林荫街道", "千里山镇", "人民路", "黄河街")),
    District("150304", 0.25, 39.505, 106.725,
             ("新达街", "苏海图街道", "梁家沟街道", "五虎山街道", "三道坎街道", "乌兰淖尔镇")),
    District("150303", 0.15, 39.505, 106.860,
             ("人民路", "西卓子山街道", "拉僧庙镇", "巴音陶亥镇", "公乌素镇", "滨海街道")),
)  # fmt: skip
COMPOUNDS = ("黄河花园", "阳光小区", "海馨苑", "金泰花园", "滨河家园", "学府花园", "乌海湖景苑", "凤凰城",
             "锦华苑", "紫金城", "康居小区", "新城佳苑", "朝阳小区", "沁园春小区", "惠民家园", "世纪嘉园")
PUBLIC_PLACES = ("市民服务中心", "人民医院", "第一中学", "万达广场", "购物中心", "火车站", "汽车客运站",
                 "政务服务中心", "妇幼保健院", "图书馆", "体育馆", "宾馆")
PROPERTY_COMPANIES = ("乌海市和信物业服务有限公司", "乌海市金泰物业服务有限公司", "乌海市安居物业管理有限公司",
                      "乌海市城投物业服务有限公司", "乌海市海馨物业服务有限公司", "乌达区宏达物业服务有限公司",
                      "海南区惠民物业服务有限公司", "乌海市佳苑物业管理有限公司")
MAINTENANCE_COMPANIES = ("乌海市安达电梯工程有限公司", "乌海市恒通电梯维修有限公司", "内蒙古蒙能机电设备有限公司",
                         "乌海市顺达电梯服务有限公司", "乌海市宏远电梯安装有限公司", "内蒙古北辰电梯工程有限公司",
                         "乌海市天宇电梯有限公司", "乌海市通力达机电工程有限公司", "内蒙古华升电梯技术有限公司",
                         "乌海市鼎盛电梯工程有限公司")
STATION_BRANDS = ("广源", "新奥", "恒泰", "金鼎", "华运", "安泰", "东昇", "龙港", "天然", "富丰")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌波辉宁鑫宇浩然晨阳"

# Lift kinds: (share, type code of the device code, floors low..high, speeds)
LIFT_KINDS = (
    ("traction", 0.87, "3110"),
    ("escalator", 0.08, "3310"),
    ("hydraulic", 0.04, "3120"),
    ("moving_walk", 0.01, "3320"),
)
# Household LPG cylinder models (GB 5842): model, share, capacity l, rated fill kg, tare kg range.
LPG_MODELS = (("YSP35.5", 0.85, 35.5, 14.5, (13.0, 15.0)),
              ("YSP12", 0.10, 12.0, 5.0, (5.0, 5.6)),
              ("YSP118", 0.05, 118.0, 49.5, (33.0, 36.5)))  # fmt: skip
LPG_DESIGN_LIFE = 8  # GB 5842-2006 cylinders (domain.md)
LPG_INSPECTION_YEARS = 4
VEHICLE_DESIGN_LIFE = 15
VEHICLE_INSPECTION_YEARS = 3
# Vehicle cylinder models: model, kind, medium, capacity l, rated fill kg, tare kg.
CNG_MODELS = (("CNG1-80", 80.0, 14.0, 62.0), ("CNG2-90", 90.0, 16.0, 45.0))
LNG_MODELS = (("LNG-450", 450.0, 180.0, 310.0),)

# Deliberate problems (share of their kind; at least one each when the kind has rows).
LIFT_INSPECTION_OVERDUE = 0.03
LIFT_INSPECTION_DUE_SOON = 0.08
LIFT_PILOT = 0.10
CYLINDER_OVERDUE = 0.03
CYLINDER_SCRAPPED = 0.01
CYLINDER_BLACKLISTED = 0.005
CYLINDER_PAST_LIFE = 0.01
CYLINDER_UNTAGGED = 0.02
VEHICLE_REVOKED = 0.03
VEHICLE_NO_CERTIFICATE = 0.02
LMT_SHARE = 0.3
"""Share of lifts whose terminal is an LMT-4 (the rest are ELink-200)."""
JT808_SHARE = 0.9
"""Share of vehicles whose JT/T 808 terminal is connected to the platform."""
JT808_ISSUED_SHARE = 0.3
"""Share of those without a census key: the platform issues their code at REGISTER."""
JT808_PREFIX = "0139"  # + 8 digits: 12-digit phone numbers

ELINK_PREFIX = "86130001"  # + 8 digits: 16-digit ELink ids
LMT_PREFIX = "8612345"  # + 8 digits: 15-digit IMEIs
MAINTENANCE_CARD_BASE = 100_000
OPERATOR_CARD_BASE = 9_000


class _Picker:
    """Random choices with a fixed set of rows marked for each deliberate problem."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def marked(self, count: int, share: float, taken: set[int] | None = None) -> set[int]:
        """``share`` of ``count`` row indexes (at least one when there are rows), avoiding ``taken``."""
        free = [i for i in range(count) if not taken or i not in taken]
        wanted = min(len(free), max(1, round(count * share))) if free else 0
        chosen = set(self.rng.sample(free, wanted))
        if taken is not None:
            taken |= chosen
        return chosen

    def person(self) -> str:
        given = self.rng.choice(GIVEN) + (self.rng.choice(GIVEN) if self.rng.random() < 0.6 else "")
        return self.rng.choice(SURNAMES) + given

    def day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randint(0, max(0, (last - first).days)))


def generate_census(size: CensusSize, today: date | None = None) -> Census:
    """The whole census, in memory (rows of text, as they will be written)."""
    today = today or cst_today()
    pick = _Picker(random.Random(size.seed))
    stations = _stations(pick, size.stations, today)
    lifts, companies = _lifts(pick, size.lifts, today)
    vehicles = _vehicles(pick, size.vehicles, today)
    lpg_stations = [int(s["station_code"]) for s in stations if "LPG" in s["media"].split("|")]
    # Coordinates and vehicle terminals draw from streams of their own: the rest of the census stays as it was.
    _place_stations(random.Random(size.seed + 1), stations)
    return {
        "stations": stations,
        "workers": _workers(pick, lifts, companies, stations, today),
        "vehicles": vehicles,
        "elevators": lifts,
        "cylinders": _cylinders(pick, size.cylinders, vehicles, lpg_stations, today),
        "terminals": _terminals(pick, lifts, stations, today)
        + _vehicle_terminals(random.Random(size.seed + 808), vehicles, today),
    }


def write_census(census: Census, out_dir: Path) -> list[Path]:
    """Write one ``<kind>.csv`` per kind (UTF-8, the template's columns in the template's order)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in KIND_ORDER:
        path = out_dir / f"{kind}.csv"
        with path.open("w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[column.name for column in KINDS[kind].columns])
            writer.writeheader()
            writer.writerows(census[kind])
        paths.append(path)
    return paths


def read_census(directory: Path, kinds: Sequence[str] = KIND_ORDER) -> Census:
    """The rows of every ``<kind>.csv`` in ``directory`` (kinds without a file are empty), or of ``kinds``
    alone (a province's cylinders are 2,000,000 rows)."""
    census: Census = {}
    for kind in kinds:
        path = directory / f"{kind}.csv"
        if not path.exists():
            census[kind] = []
            continue
        with path.open(encoding="utf-8-sig", newline="") as file:
            census[kind] = list(csv.DictReader(file))
    return census


# -- the kinds -------------------------------------------------------------------------------------


def _district(pick: _Picker) -> District:
    return pick.rng.choices(CITY, [d.weight for d in CITY])[0]  # type: ignore[no-any-return]


def _stations(pick: _Picker, count: int, today: date) -> list[Row]:
    lpg_count = max(1, round(count * 0.6)) if count else 0
    suspended = lpg_count - 1 if lpg_count >= 2 else -1  # never the only LPG station
    rows = []
    for index in range(count):
        district = CITY[index % len(CITY)]
        brand = STATION_BRANDS[index % len(STATION_BRANDS)]
        is_lpg = index < lpg_count
        if is_lpg:
            name, media, scales = f"乌海市{brand}液化气充装站", "LPG", 4 + index % 3
        else:
            name = f"{district.name}{brand}加气站"
            media, scales = ("CNG|LNG" if index % 2 else "CNG"), 4 + 2 * (index % 2)
        rows.append(
            {
                "station_code": str(150301 + index),
                "name": name,
                "district": district.name,
                "address": f"{district.name}{pick.rng.choice(district.streets)}{pick.rng.randint(1, 300)}号",
                "licence_no": f"TS4215{index + 1:03d}-{today.year - pick.rng.randint(0, 3)}",
                "licence_expiry": pick.day_between(add_years(today, 1), add_years(today, 4)).isoformat(),
                "media": media,
                "scales": str(scales),
                "status": "suspended" if index == suspended else "active",
            }
        )
    return rows


def _place_stations(rng: random.Random, stations: list[Row]) -> None:
    """Each station a few kilometres from its district's centre."""
    by_name = {district.name: district for district in CITY}
    for station in stations:
        district = by_name[station["district"]]
        station["latitude"] = f"{district.latitude + rng.uniform(-0.03, 0.03):.6f}"
        station["longitude"] = f"{district.longitude + rng.uniform(-0.03, 0.03):.6f}"


def _lifts(pick: _Picker, count: int, today: date) -> tuple[list[Row], list[str]]:
    rng = pick.rng
    companies = list(MAINTENANCE_COMPANIES[: min(len(MAINTENANCE_COMPANIES), max(2, count // 80 + 1))])
    company_weights = [1 / (rank + 1) for rank in range(len(companies))]
    overdue = pick.marked(count, LIFT_INSPECTION_OVERDUE, taken := set())
    due_soon = pick.marked(count, LIFT_INSPECTION_DUE_SOON, taken)
    pilot = pick.marked(count, LIFT_PILOT)
    kinds = [k[0] for k in LIFT_KINDS]
    rows = []
    for index in range(count):
        district = _district(pick)
        kind, _, type_code = LIFT_KINDS[kinds.index(rng.choices(kinds, [k[1] for k in LIFT_KINDS])[0])]
        year = rng.randint(2005, today.year - 1)
        street = rng.choice(district.streets)
        load: str = ""
        if kind in ("escalator", "moving_walk"):
            low, high, speed = 1, 2, 0.5
            address = f"{district.name}{street}{rng.choice(PUBLIC_PLACES)}"
            user_unit = f"{district.name}{rng.choice(PUBLIC_PLACES)}管理处"
        else:
            residential = rng.random() < 0.8
            high = rng.randint(6, 33) if residential else rng.randint(3, 12)
            low = -1 if rng.random() < 0.4 else 1
            speed = 1.0 if high <= 11 else (1.75 if high <= 20 else 2.5)
            if kind == "hydraulic":
                high, speed = min(high, 6), 0.5
            load = str(rng.choice((630, 800, 1000, 1050, 1350)))
            if residential:
                address = (f"{district.name}{street}{rng.choice(COMPOUNDS)}"
                           f"{rng.randint(1, 30)}号楼{rng.randint(1, 4)}单元")  # fmt: skip
                user_unit = rng.choice(PROPERTY_COMPANIES)
            else:
                address = f"{district.name}{street}{rng.choice(PUBLIC_PLACES)}"
                user_unit = f"{district.name}{rng.choice(PUBLIC_PLACES)}管理处"
        if index in overdue:
            next_inspection = today - timedelta(days=rng.randint(1, 120))
        elif index in due_soon:
            next_inspection = today + timedelta(days=rng.randint(0, 29))
        else:
            next_inspection = today + timedelta(days=rng.randint(31, 365))
        rows.append(
            {
                "device_code": f"{type_code}{district.code}{year}{index + 1:06d}",
                "registration_no": f"梯{type_code[:2]}蒙L{index + 1:05d}({year % 100:02d})",
                "district": district.name,
                "address": address,
                "user_unit": user_unit,
                "maintenance_company": rng.choices(companies, company_weights)[0],
                "kind": kind,
                "lowest_floor": str(low),
                "highest_floor": str(high),
                "rated_speed_mps": f"{speed:g}",
                "rated_load_kg": load,
                "next_inspection": next_inspection.isoformat(),
                "pilot": "Y" if index in pilot else "N",
                "latitude": f"{district.latitude + rng.gauss(0, 0.012):.5f}",
                "longitude": f"{district.longitude + rng.gauss(0, 0.015):.5f}",
            }
        )
    return rows, companies


def _workers(pick: _Picker, lifts: list[Row], companies: list[str], stations: list[Row], today: date) -> list[Row]:
    rng = pick.rng
    rows = []
    card = MAINTENANCE_CARD_BASE
    for number, company in enumerate(companies):
        lifts_served = sum(1 for lift in lifts if lift["maintenance_company"] == company)
        for worker in range(max(3, lifts_served // 25)):
            card += 1
            # The last worker of every other company holds an expired certificate.
            expired = worker == max(3, lifts_served // 25) - 1 and number % 2 == 0
            expiry = today - timedelta(days=rng.randint(10, 200)) if expired else add_years(today, rng.randint(1, 4))
            rows.append(
                {
                    "card": f"{card:08d}",
                    "name": pick.person(),
                    "role": "maintenance",
                    "unit": company,
                    "certificate_no": f"T1-150300-{card % 100_000:05d}",
                    "certificate_expiry": expiry.isoformat(),
                }
            )
    card = OPERATOR_CARD_BASE
    for station in stations:
        for _ in range(3):
            card += 1
            rows.append(
                {
                    "card": f"{card:08d}",
                    "name": pick.person(),
                    "role": "filling_operator",
                    "unit": station["station_code"],
                    "certificate_no": f"P-150300-{card % 10_000:04d}",
                    "certificate_expiry": add_years(today, rng.randint(1, 3)).isoformat(),
                }
            )
    return rows


VEHICLE_USES = (("taxi", 0.5, "T"), ("private", 0.2, "A"), ("bus", 0.1, "B"), ("freight", 0.15, "F"),
                ("other", 0.05, "X"))  # fmt: skip


def _vehicles(pick: _Picker, count: int, today: date) -> list[Row]:
    rng = pick.rng
    revoked = pick.marked(count, VEHICLE_REVOKED, taken := set())
    uncertified = pick.marked(count, VEHICLE_NO_CERTIFICATE, taken)
    used = {letter: 0 for _, _, letter in VEHICLE_USES}
    rows = []
    for index in range(count):
        use, _, letter = rng.choices(VEHICLE_USES, [u[1] for u in VEHICLE_USES])[0]
        number = used[letter]
        used[letter] += 1
        # 7919 is prime to 10,000: four scrambled digits stay unique for the first 10,000 of a letter.
        plate = f"蒙L·{letter}{(number * 7919 + 1234) % 10_000:04d}" if number < 10_000 else f"蒙L·{letter}{number:05d}"
        fuel = "LNG" if (use == "freight" and rng.random() < 0.7) or (use == "bus" and rng.random() < 0.3) else "CNG"
        if use == "taxi":
            owner = f"乌海市{rng.choice(STATION_BRANDS)}出租汽车有限公司"
        elif use == "bus":
            owner = "乌海市公共交通有限公司"
        elif use == "freight":
            owner = f"乌海市{rng.choice(STATION_BRANDS)}物流有限公司"
        else:
            owner = pick.person()
        issued = pick.day_between(add_years(today, -12), today - timedelta(days=30))
        row = {
            "plate": plate,
            "district": _district(pick).name,
            "owner": owner,
            "use": use,
            "fuel": fuel,
            "certificate_no": f"车气登蒙L{issued.year}{index + 1:06d}",
            "certificate_issued": issued.isoformat(),
            "certificate_status": "revoked" if index in revoked else "valid",
        }
        if index in uncertified:
            row.update(certificate_no="", certificate_issued="", certificate_status="")
        rows.append(row)
    return rows


def _cylinder_dates(
    pick: _Picker, today: date, design_life: int, interval: int, problem: str
) -> tuple[date, date | None, date]:
    """(manufacture date, last inspection or None, next inspection) for a cylinder with ``problem``
    (``overdue``, ``past_life`` or ``""``)."""
    rng = pick.rng
    if problem == "overdue":  # missed its first periodic inspection
        made = add_years(today - timedelta(days=rng.randint(1, 300)), -interval)
        return made, None, add_years(made, interval)
    if problem == "past_life":  # still in service after its design life, inspections kept up
        made = today - timedelta(days=rng.randint(design_life * 365 + 30, (design_life + 4) * 365))
    else:
        made = today - timedelta(days=rng.randint(30, design_life * 365 - 180))
    inspections = 0
    while add_years(made, (inspections + 1) * interval) <= today:
        inspections += 1
    last = add_years(made, inspections * interval) if inspections else None
    return made, last, add_years(made, (inspections + 1) * interval)


def _cylinders(
    pick: _Picker, count: int, vehicles: list[Row], lpg_stations: list[int], today: date
) -> list[Row]:
    rng = pick.rng
    vehicle_slots = list(_vehicle_cylinder_slots(pick, vehicles, limit=count // 2 if lpg_stations else count))
    household = count - len(vehicle_slots) if lpg_stations else 0
    total = len(vehicle_slots) + household
    overdue = pick.marked(total, CYLINDER_OVERDUE, taken := set())
    past_life = pick.marked(total, CYLINDER_PAST_LIFE, taken)
    scrapped = pick.marked(total, CYLINDER_SCRAPPED, taken)
    blacklisted = pick.marked(total, CYLINDER_BLACKLISTED, taken)
    untagged = pick.marked(total, CYLINDER_UNTAGGED)

    def problem(index: int) -> str:
        return "overdue" if index in overdue else "past_life" if index in past_life else ""

    def status(index: int) -> str:
        return "scrapped" if index in scrapped else "blacklisted" if index in blacklisted else "in_service"

    rows = []
    for index, (plate, fuel) in enumerate(vehicle_slots):
        model, capacity, rated, tare = rng.choice(LNG_MODELS if fuel == "LNG" else CNG_MODELS)
        made, last, upcoming = _cylinder_dates(pick, today, VEHICLE_DESIGN_LIFE, VEHICLE_INSPECTION_YEARS,
                                               problem(index))  # fmt: skip
        rows.append(
            {
                "cylinder_code": f"{model}-{index + 1:07d}",
                "tag_uid": "" if index in untagged else f"E2806894{index + 1:016X}",
                "kind": f"vehicle_{fuel.lower()}",
                "medium": fuel,
                "model": model,
                "capacity_l": f"{capacity:g}",
                "rated_fill_kg": f"{rated:g}",
                "tare_kg": f"{tare:g}",
                "manufacture_date": made.isoformat(),
                "design_life_years": str(VEHICLE_DESIGN_LIFE),
                "last_inspection": last.isoformat() if last else "",
                "next_inspection": upcoming.isoformat(),
                "owner_station": "",
                "vehicle_plate": plate,
                "status": status(index),
            }
        )
    models = [m[0] for m in LPG_MODELS]
    shares = [m[1] for m in LPG_MODELS]
    for number in range(household):
        index = len(vehicle_slots) + number
        model, _, capacity, rated, (tare_low, tare_high) = LPG_MODELS[models.index(rng.choices(models, shares)[0])]
        made, last, upcoming = _cylinder_dates(pick, today, LPG_DESIGN_LIFE, LPG_INSPECTION_YEARS, problem(index))
        rows.append(
            {
                "cylinder_code": f"LPG-{model}-{number + 1:07d}",
                "tag_uid": "" if index in untagged else f"E004015{number + 1:09X}",
                "kind": "household_lpg",
                "medium": "LPG",
                "model": model,
                "capacity_l": f"{capacity:g}",
                "rated_fill_kg": f"{rated:g}",
                "tare_kg": f"{rng.uniform(tare_low, tare_high):.1f}",
                "manufacture_date": made.isoformat(),
                "design_life_years": str(LPG_DESIGN_LIFE),
                "last_inspection": last.isoformat() if last else "",
                "next_inspection": upcoming.isoformat(),
                "owner_station": str(rng.choice(lpg_stations)),
                "vehicle_plate": "",
                "status": status(index),
            }
        )
    return rows


def _vehicle_cylinder_slots(pick: _Picker, vehicles: list[Row], limit: int) -> Iterator[tuple[str, str]]:
    """(plate, fuel) once per cylinder a vehicle carries, at most ``limit`` in all."""
    per_use = {"taxi": (1, 2), "private": (1, 1), "bus": (4, 6), "freight": (1, 2), "other": (1, 1)}
    produced = 0
    for vehicle in vehicles:
        low, high = per_use[vehicle["use"]]
        for _ in range(pick.rng.randint(low, high)):
            if produced >= limit:
                return
            produced += 1
            yield vehicle["plate"], vehicle["fuel"]


INSTALLERS = ("乌海市智联物联网工程有限公司", "内蒙古安信电子技术有限公司", "乌海市恒通电梯安装有限公司")
"""The units that install terminals: each lift's by its position, each station's scales by one unit."""


def _terminals(pick: _Picker, lifts: list[Row], stations: list[Row], today: date) -> list[Row]:
    rng = pick.rng
    rows = []

    def key() -> str:
        return f"{rng.getrandbits(64):016x}"

    def installed() -> str:
        return (today - timedelta(days=rng.randint(1, 400))).isoformat()

    lmt = pick.marked(len(lifts), LMT_SHARE)
    for index, lift in enumerate(lifts):
        protocol, prefix = ("lmt", LMT_PREFIX) if index in lmt else ("elink", ELINK_PREFIX)
        rows.append({"protocol": protocol, "terminal_id": f"{prefix}{index + 1:08d}",
                     "device_code": lift["device_code"], "key": key(), "installed_on": installed(),
                     "installer": INSTALLERS[index % len(INSTALLERS)], "plate": ""})  # fmt: skip
    for number, station in enumerate(stations):
        for scale in range(1, int(station["scales"]) + 1):
            rows.append({"protocol": "gasfill", "terminal_id": f"{station['station_code']}-{scale}",
                         "device_code": "", "key": key(), "installed_on": installed(),
                         "installer": INSTALLERS[number % len(INSTALLERS)], "plate": ""})  # fmt: skip
    return rows


def _vehicle_terminals(rng: random.Random, vehicles: list[Row], today: date) -> list[Row]:
    """JT/T 808 terminals of most vehicles, bound by plate; some without a key (the platform issues one)."""
    rows = []
    for index, vehicle in enumerate(vehicles):
        if rng.random() >= JT808_SHARE:
            continue
        key = "" if rng.random() < JT808_ISSUED_SHARE else f"{rng.getrandbits(32):08X}"
        rows.append({"protocol": "jt808", "terminal_id": f"{JT808_PREFIX}{index + 1:08d}", "device_code": "",
                     "key": key, "installed_on": (today - timedelta(days=rng.randint(1, 200))).isoformat(),
                     "installer": INSTALLERS[index % len(INSTALLERS)], "plate": vehicle["plate"]})  # fmt: skip
    return rows
