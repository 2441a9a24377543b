"""Why the census import refuses a row or a file, in the two forms its readers need.

Every refusal has a code (``not_date``). The command line prints the English sentence; the upload page,
read by district staff, shows the Chinese one: what is wrong and what to do about it. Both come from the
one table here, filled from the refusal's parameters (``value``, ``count``, …).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    english: str
    problem: str
    """Chinese: what is wrong."""
    advice: str
    """Chinese: what to do about it."""


_TEXT_CELL = "若表格软件改动了它（科学计数法、日期格式），请把该列设为“文本”格式后重新输入。"

MESSAGES: dict[str, Message] = {
    # -- a cell ---------------------------------------------------------------------------------------
    "required": Message("a value is required", "必填项为空", "请填写该列。"),
    "too_long": Message(
        "longer than {max} characters", "超过 {max} 个字符", "请缩短到 {max} 个字符以内。"
    ),
    "not_digits": Message(
        "{value!r} is not {count} digits", "「{value}」不是 {count} 位数字", f"请填写 {{count}} 位数字，不加空格或符号；{_TEXT_CELL}"
    ),
    "not_integer": Message(
        "{value!r} is not a whole number", "「{value}」不是整数", "请填写整数，不带小数点、单位或空格。"
    ),
    "integer_out_of_range": Message(
        "{value} is outside {low}–{high}", "{value} 超出允许范围", "请填写 {low}～{high} 之间的整数。"
    ),
    "not_number": Message("{value!r} is not a number", "「{value}」不是数字", "请填写数字（可带小数点），不带单位。"),
    "number_out_of_range": Message(
        "{value} is out of range (must be {bound} {low} and ≤ {high})",
        "{value} 超出允许范围",
        "请填写 {bound} {low} 且 ≤ {high} 的数。",
    ),
    "not_date": Message(
        "{value!r} is not a date YYYY-MM-DD",
        "「{value}」不是有效日期",
        f"请按“年-月-日”四位年份填写，如 2027-01-31；{_TEXT_CELL}",
    ),
    "not_one_of": Message(
        "{value!r} is not one of {allowed}", "「{value}」不是可选的值", "请填写以下之一（按模板原样填写英文）：{allowed}。"
    ),
    "unknown_district": Message(
        "unknown district {value!r}; expected one of {known}",
        "「{value}」不是乌海市的区",
        "请填写区名或行政区划代码：{known_zh}。",
    ),
    "not_card": Message(
        "{value!r} is not an 8-digit card number",
        "「{value}」不是 8 位卡号",
        f"请填写 8 位卡号，前面的 0 不能省略（如 00009001）；{_TEXT_CELL}",
    ),
    "not_tag_uid": Message(
        "{value!r} is not a tag UID (8–32 hex digits, whole bytes)",
        "「{value}」不是电子标签号",
        "请填写读卡器显示的标签号：8～32 位十六进制（0-9、A-F），位数为偶数。",
    ),
    "not_cylinder_code": Message(
        "{value!r} is not a cylinder code (1–20 ASCII characters, no spaces)",
        "「{value}」不是气瓶编号",
        "气瓶编号为 1～20 位英文字母、数字或符号，不含空格和汉字；请按钢印编号填写。",
    ),
    # -- a row, against other columns or the registry -------------------------------------------------
    "operator_unit_not_station": Message(
        "a filling operator's unit is the station code, not {value!r}",
        "充装操作员的单位应为充装站编号，而不是「{value}」",
        "请在 unit 列填写所在充装站的编号（stations 文件的 station_code）。",
    ),
    "station_not_registered": Message(
        "station {station} is not registered",
        "充装站 {station} 尚未登记",
        "请先导入该站的 stations 文件（可与本文件一起上传），或核对站编号。",
    ),
    "coordinates_apart": Message(
        "latitude and longitude go together",
        "经度和纬度只填了一个",
        "请同时填写 latitude 和 longitude，或两者都留空。",
    ),
    "floors_reversed": Message(
        "{high} is below lowest_floor {low}",
        "最高层 {high} 低于最低层 {low}",
        "请核对 lowest_floor 和 highest_floor（地下层为负数）。",
    ),
    "medium_mismatch": Message(
        "a {kind} cylinder holds {expected}, not {medium}",
        "{kind} 类气瓶应充装 {expected}，不是 {medium}",
        "请核对气瓶类型 kind 与介质 medium。",
    ),
    "owner_station_required": Message(
        "required for a household_lpg cylinder",
        "民用液化气瓶必须填写产权充装站",
        "请在 owner_station 填写产权单位的充装站编号。",
    ),
    "vehicle_plate_required": Message(
        "required for a {kind} cylinder",
        "车用气瓶必须填写所装车辆的车牌",
        "请在 vehicle_plate 填写车牌号（与 vehicles 文件一致）。",
    ),
    "vehicle_not_registered": Message(
        "vehicle {plate} is not registered",
        "车辆 {plate} 尚未登记",
        "请先导入该车的 vehicles 文件（可与本文件一起上传），或核对车牌号。",
    ),
    "plate_on_other_cylinder": Message(
        "only vehicle cylinders belong to a vehicle (kind is {kind})",
        "只有车用气瓶才填写车牌（本行类型为 {kind}）",
        "请清空 vehicle_plate，或把 kind 改为 vehicle_cng / vehicle_lng。",
    ),
    "inspected_before_made": Message(
        "{last} is before manufacture_date {made}",
        "上次检验日期 {last} 早于制造日期 {made}",
        "请核对 last_inspection 和 manufacture_date。",
    ),
    "scrapped_is_final": Message(
        "scrapped on record: a scrapped cylinder's code is void and cannot return to service",
        "该气瓶已登记报废，不能恢复使用",
        "报废气瓶的编号作废；新气瓶请用新编号登记。如确属误登记，请联系市局管理员。",
    ),
    "tag_taken": Message(
        "tag {tag} already belongs to cylinder {holder}",
        "标签 {tag} 已属于气瓶 {holder}",
        "请核对标签号；若标签已改装到本瓶，请先在同一文件中较前的行清空原气瓶的 tag_uid。",
    ),
    "terminal_id_format": Message(
        "{detail}",
        "终端编号「{value}」不符合 {protocol} 协议的格式",
        "请按终端铭牌或安装单填写：{format}。",
    ),
    "plate_on_fixed_terminal": Message(
        "{protocol} terminals are installed on a {binding}, not a vehicle",
        "{protocol} 终端不装在车上",
        "请清空 plate 列。",
    ),
    "station_terminal_on_lift": Message(
        "a {protocol} terminal belongs to a station, not a lift",
        "{protocol} 终端属于充装站，不装在电梯上",
        "请清空 device_code 列（终端编号已包含站号和秤号）。",
    ),
    "lift_required": Message(
        "required for an {protocol} terminal (the lift it is installed on)",
        "{protocol} 终端必须填写所装电梯的设备代码",
        "请在 device_code 填写该电梯的 20 位设备代码。",
    ),
    "lift_not_registered": Message(
        "lift {lift} is not registered",
        "电梯 {lift} 尚未登记",
        "请先导入该电梯的 elevators 文件（可与本文件一起上传），或核对设备代码。",
    ),
    "vehicle_required": Message(
        "required for a {protocol} terminal (the vehicle it rides in)",
        "{protocol} 终端必须填写所装车辆的车牌",
        "请在 plate 填写车牌号（与 vehicles 文件一致）。",
    ),
    "vehicle_terminal_on_lift": Message(
        "a {protocol} terminal belongs to a vehicle, not a lift",
        "{protocol} 终端装在车上，不装在电梯上",
        "请清空 device_code 列，在 plate 填写车牌号。",
    ),
    "binding_not_supported": Message(
        "{protocol} terminals are installed on a {binding}, which the census cannot bind yet",
        "普查文件暂不能登记 {protocol} 终端",
        "请联系市局管理员。",
    ),
    "key_repeated": Message(
        "{value} is named again (first on line {first})",
        "「{value}」在本文件中重复（第 {first} 行已有）",
        "同一文件中每个编号只能出现一次：请删除或合并重复的行。",
    ),
    "bad_csv_row": Message(
        "not valid CSV: {detail}",
        "该行不是有效的 CSV",
        "请检查引号是否成对、单元格是否过长（不超过 10 万字符），用表格软件重新另存为 CSV。",
    ),
    # -- a whole file --------------------------------------------------------------------------------
    "unreadable": Message("cannot be read: {detail}", "文件无法读取", "请重新上传该文件。"),
    "bad_encoding": Message(
        "neither UTF-8 nor GB18030 (bad byte at offset {offset})",
        "文件编码无法识别（既不是 UTF-8 也不是 GB18030）",
        "请在表格软件中“另存为”CSV（UTF-8）格式后重新上传。",
    ),
    "no_header": Message(
        "the first line must name the columns",
        "第 1 行不是列名（或文件为空）",
        "请使用普查模板：第 1 行为英文列名，数据从第 2 行开始。",
    ),
    "columns_missing": Message(
        "required column(s) missing: {columns}",
        "缺少必填列：{columns}",
        "请按普查模板补上这些列（第 1 行的列名须与模板一致）后重新上传。",
    ),
    "columns_repeated": Message(
        "column(s) named twice: {columns}",
        "列名重复：{columns}",
        "每个列名只能出现一次：请删除重复的列后重新上传。",
    ),
    # -- the upload as a whole -----------------------------------------------------------------------
    "kind_not_told": Message(
        "{path}: cannot tell the kind from the file name; name it after the kind ({kinds}) or give --kind",
        "无法从文件名「{name}」判断数据类型",
        "请把文件名以类型开头（{kinds}，如 elevators-海勃湾区.csv），或在“类型”中选择。",
    ),
    "no_such_file": Message("{path}: no such file", "文件「{name}」不存在", "请检查文件路径。"),
    "unknown_kind": Message(
        "unknown kind {kind!r}; one of {kinds}", "未知的数据类型「{kind}」", "请选择以下之一：{kinds}。"
    ),
}


COLUMNS: dict[str, str] = {
    "station_code": "充装站编号", "name": "名称", "district": "所在区", "address": "地址", "licence_no": "许可证编号",
    "licence_expiry": "许可证有效期至", "media": "充装介质", "scales": "充装秤数", "status": "状态",
    "latitude": "纬度", "longitude": "经度",
    "card": "卡号", "role": "岗位", "unit": "单位", "certificate_no": "证书编号", "certificate_expiry": "证书有效期至",
    "plate": "车牌号", "owner": "车主", "use": "用途", "fuel": "燃料", "certificate_issued": "发证日期",
    "certificate_status": "证书状态",
    "device_code": "设备代码", "registration_no": "使用登记证编号", "user_unit": "使用单位",
    "maintenance_company": "维保单位", "kind": "类型", "lowest_floor": "最低层", "highest_floor": "最高层",
    "rated_speed_mps": "额定速度（米/秒）", "rated_load_kg": "额定载重量（千克）", "next_inspection": "下次检验日期",
    "pilot": "是否试点",
    "cylinder_code": "气瓶编号", "tag_uid": "电子标签号", "medium": "充装介质", "model": "型号", "capacity_l": "容积（升）",
    "rated_fill_kg": "额定充装量（千克）", "tare_kg": "皮重（千克）", "manufacture_date": "制造日期",
    "design_life_years": "设计使用年限", "last_inspection": "上次检验日期", "owner_station": "产权充装站",
    "vehicle_plate": "所装车辆车牌号",
    "protocol": "通信协议", "terminal_id": "终端编号", "key": "接入密钥", "installed_on": "安装日期",
    "installer": "安装单位",
}  # fmt: skip
"""What each census column holds, in Chinese (the page shows it beside the template's column name)."""
COLUMNS_OF_KIND = {("workers", "name"): "姓名"}
"""Where a column of one kind means something else."""


def column_label(kind: str, column: str) -> str:
    """The Chinese name of a census column of ``kind`` ("" for a column nobody named)."""
    return COLUMNS_OF_KIND.get((kind, column)) or COLUMNS.get(column, "")


def english(code: str, params: Mapping[str, Any]) -> str:
    return MESSAGES[code].english.format(**params)


def problem(code: str, params: Mapping[str, Any]) -> str:
    """Chinese: what is wrong."""
    return MESSAGES[code].problem.format(**params)


def advice(code: str, params: Mapping[str, Any]) -> str:
    """Chinese: what to do."""
    return MESSAGES[code].advice.format(**params)
