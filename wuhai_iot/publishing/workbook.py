"""Reports as .xlsx workbooks (XlsxWriter: a well-kept writer that streams large sheets), a sheet per
section, figures written as numbers (a share as a number formatted as a percentage). A small report is
built in memory; a list of every terminal is written row by row to a file (``StreamedBook``)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter

from wuhai_iot.publishing.evaluation import Evaluation, Table

SHEET_NAME_MAX = 31


class _Book:
    def __init__(self, output: io.BytesIO | Path | None = None) -> None:
        self.output = io.BytesIO() if output is None else output
        options = ({"in_memory": True} if isinstance(self.output, io.BytesIO)
                   else {"constant_memory": True, "tmpdir": str(self.output.parent)})  # fmt: skip
        self.book = xlsxwriter.Workbook(self.output if isinstance(self.output, io.BytesIO) else str(self.output),
                                        {**options, "strings_to_numbers": False})  # fmt: skip
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
        return self.output.getvalue() if isinstance(self.output, io.BytesIO) else b""


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


class StreamedBook:
    """A workbook written to ``path`` in XlsxWriter's constant-memory mode: each row goes to a temporary file
    beside it as it is written (one row in memory), so sheets of any length cost the same memory. Sheets are
    written one after the other, each top to bottom (``sheet``, then ``rows`` for it)."""

    def __init__(self, path: Path) -> None:
        self._book = _Book(path)
        self._sheet: Any = None
        self._row = 0

    def sheet(self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self._sheet = self._book.book.add_worksheet(name[:SHEET_NAME_MAX])
        self._sheet.set_column(0, len(columns), 16)
        self._row = self._book.table(self._sheet, 0, Table(name, list(columns), [])) - 1
        self.rows(rows)

    def rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for values in rows:
            for col, value in enumerate(values):
                self._book.cell(self._sheet, self._row, col, value)
            self._row += 1

    def close(self) -> None:
        self._book.close()
