"""Reports as .xlsx workbooks (XlsxWriter: a well-kept writer that streams large sheets), a sheet per
section, figures written as numbers (a share as a number formatted as a percentage)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import xlsxwriter

from wuhai_iot.publishing.evaluation import Evaluation, Table

SHEET_NAME_MAX = 31


class _Book:
    def __init__(self) -> None:
        self.output = io.BytesIO()
        self.book = xlsxwriter.Workbook(self.output, {"in_memory": True, "strings_to_numbers": False})
        self.bold = self.book.add_format({"bold": True})
        self.title = self.book.add_format({"bold": True, "font_size": 14})
        self.header = self.book.add_format({"bold": True, "bg_color": "#E8EEF5", "border": 1, "text_wrap": True})
        self.percent = self.book.add_format({"num_format": "0.0%"})
        self.decimal = self.book.add_format({"num_format": "0.0#"})

    def cell(self, sheet: Any, row: int, col: int, value: Any, percent: bool = False) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            sheet.write_boolean(row, col, value)
        elif isinstance(value, int):
            sheet.write_number(row, col, value)
        elif isinstance(value, float):
            sheet.write_number(row, col, value, self.percent if percent else self.decimal)
        else:
            sheet.write_string(row, col, str(value))

    def table(self, sheet: Any, row: int, table: Table) -> int:
        sheet.write_string(row, 0, table.caption, self.bold)
        row += 1
        for col, name in enumerate(table.columns):
            sheet.write_string(row, col, name, self.header)
        row += 1
        for values in table.rows:
            for col, value in enumerate(values):
                self.cell(sheet, row, col, value, col in table.percent)
            row += 1
        if table.note:
            sheet.write_string(row, 0, table.note)
            row += 1
        return row + 1

    def close(self) -> bytes:
        self.book.close()
        return self.output.getvalue()


def evaluation_workbook(report: Evaluation) -> bytes:
    book = _Book()
    cover = book.book.add_worksheet("报告说明")
    cover.set_column(0, 0, 18)
    cover.set_column(1, 1, 40)
    cover.write_string(0, 0, report.title, book.title)
    for row, (name, value) in enumerate([("阶段", report.phase.label),
                                         ("阶段日期", f"{report.phase.starts_on} 至 {report.phase.ends_on}"),
                                         ("统计截至", report.until.isoformat()),
                                         ("数据读取时间", report.taken_at.isoformat(timespec="seconds"))], start=2):  # fmt: skip
        cover.write_string(row, 0, name, book.bold)
        cover.write_string(row, 1, value)
    for section in report.sections:
        sheet = book.book.add_worksheet(section.key[:SHEET_NAME_MAX])
        sheet.set_column(0, 0, 16)
        sheet.set_column(1, 40, 12)
        sheet.write_string(0, 0, section.title, book.title)
        row = 2
        for table in section.tables:
            row = book.table(sheet, row, table)
    return book.close()


def table_workbook(sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]], set[int]]]) -> bytes:
    """Sheets of (name, columns, rows, percent columns), rows written as they come."""
    book = _Book()
    for name, columns, rows, percent in sheets:
        sheet = book.book.add_worksheet(name[:SHEET_NAME_MAX])
        sheet.set_column(0, len(columns), 16)
        book.table(sheet, 0, Table(name, list(columns), [], percent))
        for row_number, values in enumerate(rows, start=2):
            for col, value in enumerate(values):
                book.cell(sheet, row_number, col, value, col in percent)
    return book.close()
