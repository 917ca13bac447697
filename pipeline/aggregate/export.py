"""Build one formatted Excel workbook from several matrices (saving is the caller's job)."""
from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.aggregate.matrices import flatten_columns

if TYPE_CHECKING:  # openpyxl is imported on use: every CLI command imports this module
    from openpyxl import Workbook

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_HEADER_COLOR = "DDDDDD"


def sheet_name(name: str, taken: set[str]) -> str:
    """Return an Excel-safe, unique sheet name (max 31 chars, no []:*?/\\)."""
    base = _BAD_SHEET_CHARS.sub("_", name)[:31] or "sheet"
    out, i = base, 2
    while out.lower() in {t.lower() for t in taken}:
        suffix = f"~{i}"
        out, i = base[: 31 - len(suffix)] + suffix, i + 1
    return out


def codebook_table(codebook: Any) -> pd.DataFrame:
    """Tabulate a codebook: id, parent, kind, nl and en labels, colour, definition."""
    rows = []
    for cid, code in codebook.codes.items():
        parent = cid.rsplit(".", 1)[0] if "." in cid else ""
        rows.append({
            "code_id": cid, "parent": parent, "kind": getattr(code, "kind", "theme"),
            "label_nl": codebook.label(cid, "nl"), "label_en": codebook.label(cid, "en"),
            "color": getattr(code, "color", None) or "",
            "definition": " ".join(str(getattr(code, "definition", "") or "").split()),
        })
    return pd.DataFrame(rows)


# Excel's sheet size: rows and columns beyond these make a file Excel will not open.
EXCEL_ROWS = 1_048_576
EXCEL_COLUMNS = 16_384


def build_workbook(matrices: Mapping[str, pd.DataFrame], codebook: Any = None) -> Workbook:
    """Put each matrix on its own sheet, plus a ``codebook`` sheet.

    Headers are bold and frozen, the index is the first column, long text wraps,
    shares get a percentage format. The workbook is write-only (rows are streamed,
    a million-row KWIC does not hold a million cell objects): save it once, with
    ``workbook_bytes``. A matrix wider than Excel allows (a code x document matrix of
    more than 16,383 documents) is written transposed; a table longer than Excel
    allows keeps its first rows and says how many more the CSV has.
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    _add_styles(wb)
    taken: set[str] = set()
    sheets = dict(matrices)
    if codebook is not None:
        sheets["codebook"] = codebook_table(codebook).set_index("code_id")
    for name, df in sheets.items():
        title = sheet_name(name, taken)
        taken.add(title)
        _write_sheet(wb.create_sheet(title), flatten_columns(df), percent="share" in name)
    return wb


# Named styles: a cell takes one by name, which is cheap; setting a font or an
# alignment object on each of a million cells is not (openpyxl hashes it every time).
_HEADER, _TEXT, _PERCENT, _DECIMAL = "qcode header", "qcode text", "qcode percent", "qcode decimal"


def _add_styles(wb: Workbook) -> None:
    from openpyxl.styles import Alignment, Font, NamedStyle, PatternFill

    wrap = Alignment(wrap_text=True, vertical="top")
    wb.add_named_style(NamedStyle(_HEADER, font=Font(bold=True), alignment=wrap,
                                  fill=PatternFill("solid", fgColor=_HEADER_COLOR)))
    wb.add_named_style(NamedStyle(_TEXT, alignment=wrap))
    wb.add_named_style(NamedStyle(_PERCENT, number_format="0.0%"))
    wb.add_named_style(NamedStyle(_DECIMAL, number_format="0.00"))


def _write_sheet(ws: Any, df: pd.DataFrame, *, percent: bool) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    if df.shape[1] + 1 > EXCEL_COLUMNS:
        df = df.T
    index_name = (" / ".join(n for n in df.index.names if n) or "") \
        if df.index.name is None else str(df.index.name)
    columns = [df.iloc[:, j] for j in range(df.shape[1])]
    text = [v.dtype == object or str(v.dtype).startswith(("str", "string")) for v in columns]
    style = [_TEXT if t else (_PERCENT if percent else _DECIMAL)
             if pd.api.types.is_float_dtype(v) else "" for v, t in zip(columns, text)]
    index = [str(i) for i in df.index]
    widths = [max([len(index_name)] + [len(i) for i in index] + [8])]
    for v, t, col in zip(columns, text, df.columns):
        widths.append(min(60, max(10, max([len(str(x)) for x in v] + [len(str(col))]))) if t
                      else min(30, max(9, len(str(col)) + 2)))
    # column widths and the frozen header must be set before the first row is written
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w
    ws.freeze_panes = "B2"

    def cell(value: Any, name: str) -> Any:
        c = WriteOnlyCell(ws, value=value)
        c.style = name
        return c

    ws.append([cell(h, _HEADER) for h in [index_name, *[str(c) for c in df.columns]]])
    room = EXCEL_ROWS - 1
    shown = len(df) if len(df) <= room else room - 1
    for idx, row in zip(index[:shown], df.iloc[:shown].itertuples(index=False, name=None)):
        ws.append([idx, *[cell(_cell(v), st) if st else _cell(v) for v, st in zip(row, style)]])
    if shown < len(df):
        ws.append([f"... {len(df) - shown:,} more rows: beyond Excel's {EXCEL_ROWS:,}; "
                   "the CSV file has every row"])


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar -> python
        return value.item()
    return value


# Zip's earliest representable time: workbooks from identical inputs are identical
# bytes unless SOURCE_DATE_EPOCH (the reproducible-builds convention) says otherwise.
_EPOCH_DEFAULT = 315532800   # 1980-01-01T00:00:00Z
_CORE = "docProps/core.xml"


def workbook_bytes(wb: Workbook) -> bytes:
    """Serialise a workbook to bytes that depend only on its content.

    openpyxl stamps the current time into ``docProps/core.xml`` and into every zip
    entry, so two saves of the same workbook differ; here both get one fixed time
    (``SOURCE_DATE_EPOCH`` when set, else 1980-01-01 UTC).
    """
    from openpyxl.writer.excel import ExcelWriter

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", _EPOCH_DEFAULT))
    when = datetime.fromtimestamp(max(epoch, _EPOCH_DEFAULT), tz=timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if wb.write_only and not wb.worksheets:
        wb.create_sheet()  # as ``Workbook.save``
    wb.properties.modified = datetime.now(tz=timezone.utc).replace(tzinfo=None)
    out = io.BytesIO()
    # ``wb.save``'s archive (``openpyxl.writer.excel.save_workbook``), but stored, in a
    # temp file: its members are deflated once, here, not also by openpyxl (a review
    # sheet of 100k segments is ~200 MB of XML); copied member by member, not read whole
    with tempfile.TemporaryFile() as raw:
        ExcelWriter(wb, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True)).save()
        raw.seek(0)
        with zipfile.ZipFile(raw) as src, \
                zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as dst:
            for info in src.infolist():
                fixed = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
                fixed.compress_type = zipfile.ZIP_DEFLATED
                fixed.external_attr = info.external_attr
                if info.filename == _CORE:
                    data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                                  rb"\g<1>" + stamp.encode() + rb"\g<3>", src.read(info))
                    dst.writestr(fixed, data)
                    continue
                fixed.file_size = info.file_size  # (stored: exact) zip64 only past its limit
                with src.open(info) as data, dst.open(fixed, "w") as target:
                    shutil.copyfileobj(data, target, 1 << 20)
    return out.getvalue()
