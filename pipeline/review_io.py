"""Review files: write the review table as Excel or CSV, read decisions back.

Excel files highlight the evidence with rich text (bold, coloured) and carry data
validation lists for the decision column (accept/reject) and the codes to add (from
a hidden ``codes`` sheet, so long codebooks fit). CSV files mark the evidence with
``[[`` ``]]``. Both carry a ``text_check`` column: the hash of the text cell as
written, so an edited text is detected even when the cell is not byte-identical to
the segment (markers, characters Excel cannot store).

Functions here return bytes or tables; the CLI writes them with the store's atomic
writers.
"""
from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline import columns as C
from pipeline import review as R
from pipeline.errors import ReviewError

SHEET = "review"
CODES_SHEET = "codes"
TEXT_CHECK = "text_check"
WRITE_COLUMNS = R.EXPORT_COLUMNS + [TEXT_CHECK]
_HIGHLIGHT_COLOR = "C00000"
_WIDTHS = {C.SEGMENT_ID: 16, C.DOC_ID: 14, C.SPEAKER: 10, C.CONTENT_HASH: 8, C.CODE_ID: 22,
           R.CODE_LABEL: 22, C.METHOD: 8, C.SCORE: 7, C.RULE: 18, C.EVIDENCE: 20,
           C.TEXT: 80, R.DECISION: 11, R.ADD_CODES: 22, R.MEMO: 40, TEXT_CHECK: 8}
MAX_ROWS = 1_048_575   # Excel's limit minus the header


def _excel_safe(text: str) -> str:
    """Drop control characters an .xlsx cell cannot hold (the text_check covers it)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    return ILLEGAL_CHARACTERS_RE.sub("", text)


def _has_illegal(values: list) -> bool:
    """Whether any string of ``values`` has a character ``_excel_safe`` drops (one search
    over them all: a regex call per cell was a twentieth of a large export)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    return ILLEGAL_CHARACTERS_RE.search("\n".join(v for v in values if isinstance(v, str))) \
        is not None


def _safe_column(values: list) -> list:
    """``values`` with ``_excel_safe`` applied to its strings."""
    if not _has_illegal(values):
        return values
    return [_excel_safe(v) if isinstance(v, str) else v for v in values]


def _rich(text: str, spans: list[tuple[int, int]]):
    """Return an openpyxl rich-text value with the spans bold and coloured."""
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    font = _highlight_font()
    parts: list = []
    pos = 0
    for s, e in spans:
        if s > pos:
            parts.append(text[pos:s])
        parts.append(TextBlock(font, text[s:e]))
        pos = e
    if pos < len(text):
        parts.append(text[pos:])
    return CellRichText(parts)


@functools.lru_cache(maxsize=1)
def _highlight_font():  # noqa: ANN202 - openpyxl InlineFont, imported on use
    """One font object for every highlight (building it per cell was a tenth of the export)."""
    from openpyxl.cell.text import InlineFont
    return InlineFont(b=True, color=_HIGHLIGHT_COLOR)


def _safe_spans(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Sanitise text for Excel and shift the spans along with the removed characters."""
    clean = _excel_safe(text)
    if clean == text:
        return text, spans
    keep = [0]
    for ch in text:   # keep[i] = position in clean of original position i
        keep.append(keep[-1] + (1 if _excel_safe(ch) else 0))
    return clean, [(keep[s], keep[e]) for s, e in spans if keep[e] > keep[s]]


def to_xlsx(table: pd.DataFrame, codes: Mapping[str, str]) -> bytes:
    """Return the review table as an .xlsx workbook.

    Args:
        table: from :func:`pipeline.review.build_review_table`.
        codes: code id -> label, listed on the hidden codes sheet for validation.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, NamedStyle
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    if len(table) > MAX_ROWS:
        raise ReviewError(f"{len(table)} rows do not fit in one Excel sheet; use --out FILE.csv")
    # Write-only: rows are streamed to the file instead of held as cell objects (a
    # review sheet of 330,000 rows took 131 s and 4.5 GB); column widths, the frozen
    # header, validations and the filter are set before the rows, as that mode requires.
    wb = Workbook(write_only=True)
    wb.add_named_style(NamedStyle("qcode header", font=Font(bold=True)))
    wb.add_named_style(NamedStyle("qcode text", alignment=Alignment(wrap_text=True,
                                                                    vertical="top")))
    ws = wb.create_sheet(SHEET)
    col = {name: i + 1 for i, name in enumerate(WRITE_COLUMNS)}
    last = max(2, len(table) + 1)
    for name, width in _WIDTHS.items():
        ws.column_dimensions[get_column_letter(col[name])].width = width
    ws.column_dimensions[get_column_letter(col[TEXT_CHECK])].hidden = True
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(WRITE_COLUMNS))}{last}"
    dv = DataValidation(type="list", formula1='"' + ",".join(R.SHEET_DECISIONS) + '"',
                        allow_blank=True, showErrorMessage=True,
                        errorTitle="decision", error="accept or reject (or leave empty)")
    dv.add(f"{get_column_letter(col[R.DECISION])}2:{get_column_letter(col[R.DECISION])}{last}")
    ws.data_validations.append(dv)
    if codes:
        # Warning style: one code picks from the list, several ";"-joined still allowed.
        dv2 = DataValidation(type="list", formula1=f"{CODES_SHEET}!$A$2:$A${len(codes) + 1}",
                             allow_blank=True, showErrorMessage=True, errorStyle="warning",
                             errorTitle="add codes",
                             error="not a code id from the list; a code label (nl or en) or "
                                   "several codes separated by ';' are accepted too")
        letter = get_column_letter(col[R.ADD_CODES])
        dv2.add(f"{letter}2:{letter}{last}")
        ws.data_validations.append(dv2)

    def header(value: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(ws, value=value)
        cell.style = "qcode header"
        return cell

    ws.append([header(name) for name in WRITE_COLUMNS])
    # the columns as lists (what to_dict("records") gives per row, without a dict per
    # row), each sanitised only when some value of it has a character to drop
    n_rows = len(table)
    columns = {name: _safe_column(table[name].tolist() if name in table.columns
                                  else [None] * n_rows)
               for name in WRITE_COLUMNS if name not in (C.TEXT, TEXT_CHECK)}
    texts = [str(t) for t in table[C.TEXT].tolist()]
    dirty = _has_illegal(texts)
    marks = table[R.HIGHLIGHTS].tolist() if R.HIGHLIGHTS in table.columns else [None] * n_rows
    for k in range(n_rows):
        spans = list(marks[k] or [])
        text, spans = _safe_spans(texts[k], spans) if dirty else (texts[k], spans)
        row: list = []
        for name in WRITE_COLUMNS:
            if name == C.TEXT:
                value = _rich(text, spans) if spans else text
            elif name == TEXT_CHECK:
                value = R.content_hash(text)
            else:
                value = columns[name][k]
                if isinstance(value, float) and math.isnan(value):
                    value = None
            if name == C.TEXT or (isinstance(value, str) and value.startswith("=")):
                cell = WriteOnlyCell(ws, value=value)
                if name == C.TEXT:
                    cell.style = "qcode text"
                if isinstance(value, str) and value.startswith("="):
                    cell.data_type = "s"   # transcript text is never a formula
                value = cell
            row.append(value)
        ws.append(row)
    cs = wb.create_sheet(CODES_SHEET)
    cs.sheet_state = "hidden"
    cs.append([C.CODE_ID, R.CODE_LABEL])
    for cid, label in codes.items():
        cs.append([cid, _excel_safe(str(label))])
    from pipeline.aggregate.export import workbook_bytes
    return workbook_bytes(wb)


def to_csv(table: pd.DataFrame, header: bool = True) -> bytes:
    """Return the review table as UTF-8 CSV (with BOM, so Excel reads it right).

    ``header=False``: the lines of a later piece of the same file (no BOM, no header).
    """
    df = table.copy()
    df[C.TEXT] = [R.mark_text(str(t), list(h or [])) for t, h in zip(df[C.TEXT], df[R.HIGHLIGHTS])]
    df[TEXT_CHECK] = [R.content_hash(t) for t in df[C.TEXT]]
    text = df[WRITE_COLUMNS].to_csv(index=False, header=header, lineterminator="\n")
    return text.encode("utf-8-sig" if header else "utf-8")


def _str(value: object) -> str:
    """Return a cell as a string; Excel turns typed ids into numbers, undo that."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value)


def _finish(df: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, dict[int, bool]]:
    """Add row numbers and compute which rows still have their exported text."""
    df = df.copy()
    df.columns = [str(c).strip().lower() for c in df.columns]
    if C.SEGMENT_ID not in df.columns or R.DECISION not in df.columns:
        raise ReviewError(f"{path}: not a review file (needs the columns {C.SEGMENT_ID} and "
                          f"{R.DECISION}); export one with `qcode review export`")
    df["row"] = range(2, len(df) + 2)
    checks: dict[int, bool] = {}
    if C.TEXT in df.columns:
        for row, text, hsh, chk in zip(df["row"], df[C.TEXT], df.get(C.CONTENT_HASH, pd.Series([""] * len(df))),
                                       df.get(TEXT_CHECK, pd.Series([""] * len(df)))):
            chk = str(chk).strip()
            if chk:
                checks[int(row)] = R.content_hash(str(text)) == chk
            elif str(hsh).strip():
                checks[int(row)] = R.content_hash(R.strip_markers(str(text))) == str(hsh).strip()
    return df, checks


def _decode(data: bytes, path: Path) -> str:
    """Decode a CSV saved by us (UTF-8) or by Excel (often cp1252)."""
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ReviewError(f"{path}: cannot decode the file as UTF-8 or Windows-1252; save it as CSV UTF-8")


def read_csv_bytes(data: bytes, path: Path) -> tuple[pd.DataFrame, dict[int, bool]]:
    """Read a review CSV; see :func:`read_review_file`."""
    text = _decode(data, path)
    if "\x00" in text:
        raise ReviewError(f"{path}: not a text file (contains NUL bytes)")
    first = text.split("\n", 1)[0]
    # Excel in a Dutch locale saves "CSV" with semicolons.
    sep = ";" if first.count(";") > first.count(",") else ","
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         engine="python")
    except Exception as exc:   # pandas raises many kinds on malformed CSV; all mean "bad file"
        raise ReviewError(f"{path}: cannot parse as CSV ({type(exc).__name__})") from None
    return _finish(df.map(_str) if len(df) else df, path)


def read_xlsx_bytes(data: bytes, path: Path) -> tuple[pd.DataFrame, dict[int, bool]]:
    """Read a review workbook; see :func:`read_review_file`."""
    from openpyxl import load_workbook
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:   # zip, XML and openpyxl errors all mean "not a workbook"
        raise ReviewError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        if SHEET not in wb.sheetnames:
            raise ReviewError(f"{path}: no sheet named {SHEET!r} (found: "
                              f"{', '.join(map(repr, wb.sheetnames)) or 'none'}); "
                              "decisions are read from the review sheet of an exported file")
        try:
            rows = [[_str(v) for v in row] for row in wb[SHEET].iter_rows(values_only=True)]
        except Exception as exc:   # corrupt sheet XML inside a valid zip
            raise ReviewError(f"{path}: sheet {SHEET!r} is unreadable ({type(exc).__name__})") from None
    finally:
        wb.close()
    if not rows:
        raise ReviewError(f"{path}: sheet {SHEET!r} is empty")
    header = rows[0]
    body = [r + [""] * (len(header) - len(r)) for r in rows[1:]]
    df = pd.DataFrame([r[: len(header)] for r in body], columns=header, dtype=object)
    return _finish(df, path)


def read_review_file(path: Path) -> tuple[pd.DataFrame, dict[int, bool]]:
    """Read the rows of a review file (.xlsx or .csv).

    Returns:
        (rows as strings with a ``row`` column holding the row number as shown by a
        spreadsheet, {row: text still as exported}).

    Raises:
        ReviewError: unreadable file, wrong format, no review sheet, missing columns.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReviewError(f"{path}: cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return read_xlsx_bytes(data, path)
    if suffix in (".csv", ".txt"):
        return read_csv_bytes(data, path)
    raise ReviewError(f"{path}: review files are .xlsx or .csv, not {suffix or 'without suffix'}")
