"""Reading the codebook file: bytes -> YAML node tree -> validated ``Codebook``."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import yaml

from pipeline.codebook.model import Codebook
from pipeline.codebook.nodes import Reader
from pipeline.codebook.patterns import PatternMemo
from pipeline.codebook.schema import CodebookBuilder
from pipeline.errors import CodebookError, Problem

ROOT = "<root>"


def _parse(path: str | os.PathLike[str], require_codes: bool = True,
           patterns: PatternMemo | None = None) -> tuple[Codebook | None, list[Problem]]:
    """Read, parse and validate; return the codebook (None on problems) and problems."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, [Problem(ROOT, "codebook file not found")]
    except OSError as exc:
        return None, [Problem(ROOT, f"cannot read the codebook: {exc.strerror or exc}")]
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [Problem(ROOT, f"not UTF-8 text (invalid byte at offset {exc.start})", line)]
    tab_problems: list[Problem] = []
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        line = mark.line + 1 if mark else None
        if "'\\t'" not in what:
            return None, [Problem(ROOT, f"malformed YAML: {what}", line)]
        # Tabs are the commonest slip when editing YAML by hand; report them all, then
        # read the file with the tabs as spaces so every other problem shows up too.
        root, tab_problems = _without_tabs(text)
        if root is None:
            return None, tab_problems or [Problem(ROOT, "malformed YAML: the line is indented "
                                                        "with a tab; YAML needs spaces", line)]
    except yaml.YAMLError as exc:  # ReaderError: control characters and the like
        pos = getattr(exc, "position", None)
        line = text[:pos].count("\n") + 1 if isinstance(pos, int) else None
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        return None, [Problem(ROOT, f"malformed YAML: {reason}", line)]
    except RecursionError:
        return None, [Problem(ROOT, "malformed YAML: nested too deeply")]
    if root is None:
        return None, [Problem(ROOT, "the codebook is empty")]
    reader = Reader()
    try:
        codebook = CodebookBuilder(reader, require_codes, patterns).build(root, file, digest)
    except RecursionError:  # e.g. a code that is its own child through a YAML alias
        reader.add(ROOT, "the codebook is nested too deeply (recursive YAML alias?)")
        codebook = None
    problems = sorted([*tab_problems, *reader.problems], key=lambda p: p.line or 0)
    return (codebook if not problems else None), problems


_TAB_MESSAGE = "malformed YAML: the line is indented with a tab; YAML needs spaces for indentation"


# Text the C parser (libyaml) could read otherwise than PyYAML's: tabs (PyYAML rejects
# some that libyaml accepts), line breaks other than LF, characters PyYAML rejects.
_PYTHON_ONLY = re.compile("[\t\r\x85\u2028\u2029\ufeff]")
_MAX_FAST_DEPTH = 100   # deeper: PyYAML's recursion limit may decide (nested too deeply)


def _compose(text: str) -> yaml.Node | None:
    """``yaml.compose(text, Loader=yaml.SafeLoader)``, through libyaml when it can.

    libyaml composes the same nodes (tags, values, marks; only the unused ``style`` /
    ``flow_style`` differ) about 15x faster. Text it might read otherwise (see
    ``_PYTHON_ONLY``), any error, very deep trees and aliases of collections go to
    PyYAML, whose nodes, errors and messages the loader reports, exactly as before.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None and not _PYTHON_ONLY.search(text) \
            and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        try:
            root = yaml.compose(text, Loader=fast)
        except Exception:  # noqa: BLE001 - PyYAML reads it again and reports the error
            root = None
        else:
            if _depth(root) <= _MAX_FAST_DEPTH:
                return root
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _depth(root: yaml.Node | None) -> int:
    """Nesting depth of a node tree (iterative: a deep tree is what it measures); a
    node met twice (an alias, maybe of an ancestor: a cycle) counts as infinitely deep."""
    deepest = 0
    seen: set[int] = set()
    todo = [(root, 1)] if root is not None else []
    while todo:
        node, depth = todo.pop()
        if isinstance(node, yaml.CollectionNode):
            if id(node) in seen:
                return 1 << 30
            seen.add(id(node))
        deepest = max(deepest, depth)
        if isinstance(node, yaml.MappingNode):
            todo.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((child, depth + 1) for child in node.value)
    return deepest


def _without_tabs(text: str) -> tuple[yaml.Node | None, list[Problem]]:
    """Parse ``text`` with leading tabs read as spaces, for the rest of the report.

    Returns the node tree (None when no tab width makes the file parse) and one
    problem per tab-indented line. Line numbers are unchanged: only indentation is
    rewritten.
    """
    lines = text.split("\n")
    tabbed = [i for i, ln in enumerate(lines) if "\t" in ln[: len(ln) - len(ln.lstrip())]]
    problems = [Problem(ROOT, _TAB_MESSAGE, i + 1) for i in tabbed]
    def indent(ln: str) -> str:
        return ln[: len(ln) - len(ln.lstrip())]

    def neighbour(i: int) -> str:
        # A tabbed line most likely belongs with the untabbed line next to it.
        for j in [*range(i + 1, len(lines)), *range(i - 1, -1, -1)]:
            if lines[j].strip() and j not in tabbed:
                return indent(lines[j])
        return "  "

    candidates = [lambda i: neighbour(i)] + [
        (lambda i, w=width: indent(lines[i]).replace("\t", " " * w)) for width in (2, 4, 8)]
    for new_indent in candidates:
        fixed = list(lines)
        for i in tabbed:
            fixed[i] = new_indent(i) + lines[i].lstrip(" \t")
        try:
            return yaml.compose("\n".join(fixed), Loader=yaml.SafeLoader), problems
        except (yaml.YAMLError, RecursionError):
            continue
    return None, problems


def validate_codebook(path: str | os.PathLike[str], *,
                      require_codes: bool = True) -> list[Problem]:
    """Return every problem of the codebook file (an empty list if it is valid).

    Args:
        path: the codebook YAML file.
        require_codes: insist on the study's required codes (``REQUIRED_CODES``);
            off for codebooks imported from other projects.

    Returns:
        Problems in line order, each with its YAML path and 1-based line.
    """
    return _parse(path, require_codes)[1]


def load_codebook(path: str | os.PathLike[str], *, require_codes: bool = True,
                  patterns: PatternMemo | None = None) -> Codebook:
    """Load and validate a codebook file.

    Args:
        path: the codebook YAML file.
        require_codes: insist on the study's required codes (``REQUIRED_CODES``);
            off for codebooks imported from other projects (REFI-QDA).
        patterns: token patterns known to be valid (a run's cache); it notes the
            ones found valid here (``PatternMemo.save`` stores them).

    Returns:
        The validated ``Codebook``; ``.hash`` is the sha256 of the file bytes.

    Raises:
        CodebookError: the file is missing, unreadable, not YAML, or breaks the
            schema; ``.problems`` lists every problem at once.
    """
    codebook, problems = _parse(path, require_codes, patterns)
    if codebook is None:
        raise CodebookError(str(path), problems or [Problem(ROOT, "invalid codebook")])
    if patterns is not None:
        # the run's cache folder (None: none): compiling its rules reads and saves the
        # tokenizer sketch there (``pipeline.code.sketch``), as the memo does its patterns
        from pipeline.code.sketch import use_folder

        use_folder(patterns.root)
    return codebook
