"""`qcode pseudonymise INPUT... --out DIR`: pseudonymised copies of transcripts.

Originals are only read. Each input is written to DIR under the same name and the
same sub-folder as under its input folder (a .docx as .txt, UTF-8). Names come from
speaker labels, --names, the metadata, cues ("juf Anja", "ik heet Ruud") and
capitalised common given names in running text ("samen met Ruud"); a name found
anywhere is replaced everywhere. The key linking pseudonyms to real names goes to a
separate file outside DIR, and DIR/PSEUDONYMISATION_REPORT.csv counts the
replacements per file. Detection is automatic: check the output by hand before
sharing it. With --coded the coded folder of the originals is copied to --coded-out
with every offset moved to the pseudonymised texts.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import pandas as pd

from pipeline import columns as C
from pipeline import privacy as P
from pipeline.errors import InputError, PipelineError, UsageError

NAME_COLUMNS = ("name", "naam", "voornaam", "achternaam", "respondent", "participant",
                "deelnemer", "speaker", "spreker", "interviewer", "docent", "teacher")
SCHOOL_COLUMNS = ("school", "schoolnaam", "school_name", "organisatie", "organisation")
EXIT_PARTIAL = 2
REPORT_FILE = "PSEUDONYMISATION_REPORT.csv"
MANUAL_CHECK = ("pseudonymisation is automatic and misses names it cannot recognise (surnames, "
                "rare or foreign given names, nicknames, places, indirect identifiers). Read every "
                "file in {out} by hand before sharing it; {report} shows what was replaced per file.")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``qcode pseudonymise``."""
    p = subparsers.add_parser(
        "pseudonymise", aliases=["pseudonymize"],
        help="replace names, e-mails, phone numbers and schools in transcripts",
        description=" ".join(__doc__.split("\n\n")[1].split()))
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="transcript files or folders")
    p.add_argument("--out", required=True, help="folder for the pseudonymised files")
    p.add_argument("--key", help="key file (CSV) linking pseudonyms to originals; reused when it "
                                 "exists (default: <out>-key.csv next to the out folder)")
    p.add_argument("--names", help="file with person names, one per line (or a CSV with a 'name' column)")
    p.add_argument("--schools", help="file with school names, one per line")
    p.add_argument("--metadata", help="metadata CSV; name and school columns are pseudonymised "
                                      "and a pseudonymised copy is written to the out folder")
    p.add_argument("--no-name-list", action="store_true",
                   help="do not treat capitalised common given names in running text as names "
                        "(only labels, --names, metadata and cues)")
    p.add_argument("--keep-labels", default="", metavar="LABELS",
                   help="comma-separated speaker labels that are roles, not names")
    p.add_argument("--coded", help="coded folder of the originals: remap its offsets")
    p.add_argument("--coded-out", help="where to write the remapped coded folder")
    p.add_argument("--text-column", default="text", help="CSV inputs: the column with the text")
    p.add_argument("--id-column", default="id", help="CSV inputs: the id column")
    p.set_defaults(func=run)


def _read_list(path: str | None, column: str = "name") -> list[str]:
    """Names from a one-per-line file or a CSV with a name column."""
    if not path:
        return []
    from pipeline.ingest import decode_bytes
    try:
        text, _ = decode_bytes(Path(path).read_bytes(), path)
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror})") from None
    lines = [ln.strip() for ln in text.split("\n")]
    if lines and lines[0].lower().split(",")[0].strip() == column:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        return [v.strip() for v in df[df.columns[0]] if v.strip()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _check_paths(inputs: list[str], files: list[Path], out: Path, key: Path) -> None:
    """Refuse any layout in which an original could be overwritten or the key shipped."""
    out_r = out.resolve()
    for inp in inputs:
        src = Path(inp).resolve()
        if src.is_dir() and (out_r == src or src in out_r.parents):
            raise UsageError(f"--out {out} is inside the input folder {inp}; originals stay untouched, "
                             "choose a folder elsewhere")
    names = [f.stem for f in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"two inputs share the document id {dup[0]!r}; rename one")
    originals = {f.resolve() for f in files}
    for f in files:
        if (out / out_path(f, inputs)).resolve() in originals:
            raise UsageError(f"{out / out_path(f, inputs)} would overwrite an original")
    if out_r == key.resolve().parent or out_r in key.resolve().parents:
        raise UsageError(f"--key {key} is inside --out {out}; the key must be kept apart "
                         "from the pseudonymised data")


def _out_name(path: Path) -> str:
    # A .docx cannot be rewritten run by run without losing names split over runs: plain text.
    return path.stem + ".txt" if path.suffix.lower() == ".docx" else path.name


def out_path(path: Path, inputs: list[str]) -> Path:
    """Where a file goes under --out: its folder relative to the input folder it was found in.

    ``in/sub/deeper/clip.srt`` found under input ``in`` -> ``sub/deeper/clip.srt``; a
    file given by name -> its name.
    """
    resolved = path.resolve()
    for inp in inputs:
        root = Path(inp)
        if root.is_dir():
            try:
                rel = resolved.relative_to(root.resolve())
            except ValueError:
                continue
            return rel.parent / _out_name(path)
    return Path(_out_name(path))


def run(args: argparse.Namespace) -> int:
    from pipeline.ingest import decode_bytes, discover, read_file
    from pipeline.store import atomic_write_bytes
    out = Path(args.out)
    key_path = Path(args.key) if args.key else out.parent / f"{out.name}-key.csv"
    files = discover(args.inputs)
    if not files:
        raise UsageError("no transcript files among the inputs")
    _check_paths(args.inputs, files, out, key_path)
    if args.coded and not args.coded_out:
        raise UsageError("--coded needs --coded-out (the original coded folder is never rewritten)")
    if args.coded and Path(args.coded_out).resolve() == Path(args.coded).resolve():
        raise UsageError("--coded-out must differ from --coded")

    key = P.PseudonymKey()
    if key_path.exists():
        key = P.PseudonymKey.from_rows(pd.read_csv(key_path, dtype=str, keep_default_na=False))
    names = _read_list(args.names)
    schools = _read_list(args.schools, "school")
    meta = None
    if args.metadata:
        from pipeline.ingest import read_metadata
        meta = read_metadata(args.metadata)
        for col in meta.columns:
            values = [v for v in meta[col].astype(str) if v.strip()]
            if str(col).lower() in NAME_COLUMNS:
                names += values
            elif str(col).lower() in SCHOOL_COLUMNS:
                schools += values
    found: set[str] = set()   # names with evidence in this run (not only the old key)

    def person(name: str) -> None:
        key.add_person(name)
        found.add(" ".join(str(name).split()))

    for n in names:
        person(n)

    # per file only its id and text between the passes (not the ingested tables: at a
    # million segments those held most of the command's memory)
    docs: dict[Path, tuple[str, str]] = {}
    problems: list[str] = []
    keep = [s for s in args.keep_labels.split(",") if s.strip()]
    for f in files:
        try:
            ing = read_file(f, text_column=args.text_column, id_column=args.id_column)
        except PipelineError as exc:
            problems.append(str(exc))
            continue
        docs[f] = (str(ing.documents[C.DOC_ID].iloc[0]), str(ing.documents[C.TEXT].iloc[0]))
        for label in dict.fromkeys(ing.turns[C.SPEAKER].astype(str)):
            if P.is_role_label(label, keep):
                continue
            name, variants = P.label_person(label, keep)
            if name:
                person(name)
                for variant in variants:  # "Pieters, Anna" is Anna Pieters
                    key.persons.setdefault(variant, key.persons.get(name, name))
    for _, text in docs.values():
        for name in P.cue_names(text):
            person(name)
        if not args.no_name_list:
            for name in P.text_names(text):
                person(name)
    if not args.no_name_list:
        for _, text in docs.values():
            for name in P.coordinated_names(text, found):
                key.add_person(name)
    # An ambiguous given name ("An", "Will") known only from weak evidence (coordination,
    # an earlier run's key) is not replaced where it starts a sentence.
    guarded = {n for n in key.persons if n in P.AMBIGUOUS_NAMES and n not in found}
    detector = P.Detector(names=list(key.persons), schools=schools, guarded=guarded)
    coded = _check_coded(args, dict(docs.values())) if args.coded else None

    maps, texts, mismatched, report = {}, {}, [], []
    for f, (doc_id, text) in docs.items():
        new_text, omap = P.pseudonymise_text(text, detector, key)
        source = text if f.suffix.lower() == ".docx" else decode_bytes(f.read_bytes(), f)[0]
        spans = detector.spans(source)
        payload = P.apply(source, spans, key)[0]
        rel = out_path(f, args.inputs)
        report.append({"file": rel.as_posix(), **P.count_kinds(spans)})
        target = atomic_write_bytes(out / rel, payload.encode("utf-8"))
        back = read_file(target, text_column=args.text_column, id_column=args.id_column)
        if str(back.documents[C.TEXT].iloc[0]) != new_text:
            mismatched.append(doc_id)
        if coded is not None:  # kept for moving the coded folder's offsets
            maps[doc_id], texts[doc_id] = omap, new_text
    if meta is not None:
        meta_out = meta.copy()
        meta_counts = dict.fromkeys(P.KINDS, 0)
        for col in meta_out.columns:
            if col != C.DOC_ID:
                cells = []
                for v in meta_out[col].astype(str):
                    spans = detector.spans(v)
                    for kind, n in P.count_kinds(spans).items():
                        meta_counts[kind] += n
                    cells.append(P.apply(v, spans, key)[0])
                meta_out[col] = cells
        atomic_write_bytes(out / "metadata.csv", meta_out.to_csv(index=False).encode("utf-8"))
        report.append({"file": "metadata.csv", **meta_counts})
    atomic_write_bytes(out / REPORT_FILE, _report_bytes(report))
    atomic_write_bytes(key_path, key.rows().to_csv(index=False).encode("utf-8"), private=True)
    print(f"qcode: warning: {key_path} links every pseudonym to the real name. Keep it apart from "
          f"{out} (another disk or vault), never share or commit it.", file=sys.stderr)
    print("qcode: warning: " + MANUAL_CHECK.format(out=out, report=out / REPORT_FILE),
          file=sys.stderr)
    counts = key.rows()["kind"].value_counts()
    print(f"{out}: {len(docs)} file(s) pseudonymised; key has "
          + ", ".join(f"{counts.get(k, 0)} {k}" for k in (P.PERSON, P.EMAIL, P.PHONE, P.SCHOOL)))
    for msg in problems:
        print(f"qcode: warning: {msg} (skipped)", file=sys.stderr)
    if coded is not None:
        _remap(args, coded, maps, texts, mismatched, detector, key)
    elif mismatched:
        print(f"qcode: warning: re-reading {', '.join(mismatched)} gives a different text layout; "
              "offsets computed on the originals do not carry over", file=sys.stderr)
    return EXIT_PARTIAL if problems else 0


def _report_bytes(rows: list[dict]) -> bytes:
    """Per written file: replacements per kind and in total (counts only, never originals)."""
    cols = ["file", P.PERSON, P.EMAIL, P.PHONE, P.SCHOOL]
    df = pd.DataFrame(rows, columns=cols)
    df["total"] = df[cols[1:]].sum(axis=1).astype(int)
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _check_coded(args, originals: dict[str, str]):
    """Load the coded folder and refuse, before writing anything, if it cannot be remapped."""
    from pipeline.store import load_coded
    data = load_coded(args.coded)
    doc_text = dict(zip(data.documents[C.DOC_ID].astype(str), data.documents[C.TEXT].astype(str)))
    for d in dict.fromkeys(data.segments[C.DOC_ID].astype(str)):
        if d not in originals:
            raise UsageError(f"{args.coded}: document {d!r} is coded but not among the inputs; "
                             "give every coded transcript, or refusing to remap")
        if doc_text.get(d) != originals[d]:
            raise UsageError(f"{args.coded}: document {d!r} differs from the input file (coded from "
                             "another version); re-run `qcode code` first, refusing to remap")
    return data


def _remap(args, data, maps, texts, mismatched, detector, key) -> None:
    """Write the coded folder with offsets moved, or refuse with the reason."""
    from pipeline.store import CodedData, atomic_write_bytes, write_coded
    doc_ids = list(dict.fromkeys(data.segments[C.DOC_ID].astype(str)))
    for d in doc_ids:
        if d in mismatched:
            raise UsageError(f"{d}: the pseudonymised file does not read back to the mapped text; "
                             "refusing to remap offsets (they would be wrong)")
    tables = {"documents": data.documents[data.documents[C.DOC_ID].astype(str).isin(doc_ids)],
              "segments": data.segments, "codings": data.codings, "matches": data.matches}
    reviews_path = Path(args.coded) / C.REVIEWS_FILE
    if reviews_path.exists():
        tables["reviews"] = pd.read_csv(reviews_path, dtype=str, keep_default_na=False)
    new = P.remap_coded(tables, {d: maps[d] for d in doc_ids}, texts, detector, key)
    errors = data.errors.copy()   # messages may carry short excerpts with names
    for col in errors.columns:
        errors[col] = [P.replace_all(v, detector, key) for v in errors[col].astype(str)]
    manifest = dict(data.manifest)
    manifest.pop("outputs", None)
    manifest["pseudonymised"] = True
    write_coded(args.coded_out, CodedData(documents=new["documents"], segments=new["segments"],
                                          codings=new["codings"], matches=new["matches"],
                                          errors=errors, manifest=manifest))
    if "reviews" in new:
        atomic_write_bytes(Path(args.coded_out) / C.REVIEWS_FILE,
                           new["reviews"].to_csv(index=False, lineterminator="\n").encode("utf-8"))
    print(f"{args.coded_out}: coded folder with offsets remapped ({len(new['codings'])} codings)")
