"""Build one formatted Excel workbook from several matrices (saving is the caller's job)."""
from __future__ import annotations

import io
import os
import re
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


def build_workbook(matrices: Mapping[str, pd.DataFrame], codebook: Any = None) -> Workbook:
    """Put each matrix on its own sheet, plus a ``codebook`` sheet.

    Headers are bold and frozen, the index is the first column, long text wraps,
    shares get a percentage format.
    """
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    taken: set[str] = set()
    sheets = dict(matrices)
    if codebook is not None:
        sheets["codebook"] = codebook_table(codebook).set_index("code_id")
    for name, df in sheets.items():
        title = sheet_name(name, taken)
        taken.add(title)
        ws = wb.create_sheet(title)
        flat = flatten_columns(df)
        index_name = (" / ".join(n for n in flat.index.names if n) or "") \
            if flat.index.name is None else str(flat.index.name)
        header = [index_name, *[str(c) for c in flat.columns]]
        ws.append(header)
        for idx, row in zip(flat.index, flat.itertuples(index=False, name=None)):
            ws.append([str(idx), *[_cell(v) for v in row]])
        _format(ws, flat, percent="share" in name)
    return wb


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if hasattr(value, "item"):  # numpy scalar -> python
        return value.item()
    return value


def _format(ws: Any, df: pd.DataFrame, *, percent: bool) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    fill = PatternFill("solid", fgColor=_HEADER_COLOR)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "B2"
    widths = [max([len(str(ws.cell(1, 1).value or ""))] + [len(str(i)) for i in df.index] + [8])]
    for j, col in enumerate(df.columns):
        values = df[col]
        if values.dtype == object or str(values.dtype).startswith(("str", "string")):
            longest = max([len(str(v)) for v in values] + [len(str(col))])
            widths.append(min(60, max(10, longest)))
            for r in range(2, len(df) + 2):
                ws.cell(r, j + 2).alignment = Alignment(wrap_text=True, vertical="top")
        else:
            widths.append(min(30, max(9, len(str(col)) + 2)))
            if pd.api.types.is_float_dtype(values):
                fmt = "0.0%" if percent else "0.00"
                for r in range(2, len(df) + 2):
                    ws.cell(r, j + 2).number_format = fmt
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w


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
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", _EPOCH_DEFAULT))
    when = datetime.fromtimestamp(max(epoch, _EPOCH_DEFAULT), tz=timezone.utc)
    raw = io.BytesIO()
    wb.save(raw)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == _CORE:
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<3>", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)
    return out.getvalue()
