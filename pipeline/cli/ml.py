"""``qcode train`` and ``qcode suggest`` (supervised coder), and the cross-validated
``qcode evaluate --methods rules,ml,hybrid``."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import agreement as ag
from pipeline import columns as C
from pipeline.cli.agreement import read_table
from pipeline.errors import InputError, UsageError
from pipeline.cli.defaults import DEFAULT_CODED


# Helper column of the training segments: the unit opens its document (opening_weight)
_OPENING = "_opening"


@dataclass
class TrainingData:
    """Gold segments (with text) aligned with their labels."""

    segments: pd.DataFrame   # segment_id, doc_id, text, lang, start, end, coded
    labels: pd.DataFrame     # bool, index = segment ids, one column per code
    groups: np.ndarray       # document of each row


def _segments_source(path: str | list[str] | None, lang: str) -> pd.DataFrame | None:
    """A segments table from a coded folder or a CSV/Parquet file (id/segment_id + text);
    several sources are stacked (a segment id may appear in only one of them)."""
    if not path:
        return None
    if isinstance(path, (list, tuple)):
        if len(path) == 1:
            return _segments_source(path[0], lang)
        parts = [_segments_source(p, lang) for p in path]
        segs = pd.concat(parts, ignore_index=True)
        dup = segs[C.SEGMENT_ID][segs[C.SEGMENT_ID].duplicated()]
        if len(dup):
            raise InputError(path[0], f"segment id {dup.iloc[0]!r} is in more than one of the "
                                      f"segment sources {', '.join(map(str, path))}")
        return segs
    p = Path(path)
    if p.is_dir():
        from pipeline.store import load_coded
        coded = load_coded(p, skip=("matches",))
        segs = coded.segments.copy()
        segs[_OPENING] = _coded_openings(segs, coded.documents)
    else:
        segs = read_table(p)
        if C.SEGMENT_ID not in segs.columns:
            if "id" not in segs.columns:
                raise InputError(p, f"no '{C.SEGMENT_ID}' or 'id' column")
            segs = segs.rename(columns={"id": C.SEGMENT_ID})
    if C.TEXT not in segs.columns:
        raise InputError(p, f"no '{C.TEXT}' column")
    segs[C.SEGMENT_ID] = segs[C.SEGMENT_ID].astype(str)
    return _complete_segments(segs, lang)


def _complete_segments(segs: pd.DataFrame, lang: str) -> pd.DataFrame:
    segs = segs.copy()
    segs[C.TEXT] = segs[C.TEXT].fillna("").astype(str)
    if C.DOC_ID not in segs.columns:
        # Segment ids are "{doc_id}:{unit_index}"; a survey row id stands on its own.
        segs[C.DOC_ID] = segs[C.SEGMENT_ID].str.rsplit(":", n=1).str[0]
    if C.LANG not in segs.columns:
        segs[C.LANG] = lang
    segs[C.LANG] = segs[C.LANG].replace("", lang).fillna(lang)
    if C.START not in segs.columns:
        segs[C.START] = 0
        segs[C.END] = segs[C.TEXT].str.len()
    if C.CODED not in segs.columns:
        segs[C.CODED] = True
    if _OPENING not in segs.columns:
        segs[_OPENING] = _derived_openings(segs)
    return segs


def _coded_openings(segs: pd.DataFrame, documents: pd.DataFrame) -> np.ndarray:
    """Rows that open their document in a coded run (``settings.opening_weight``): the first
    coded unit of every document; survey tables (CSV files) have none."""
    from pipeline.code.opening import first_coded_units
    tables = set()
    if C.PATH in documents.columns:   # a coded folder made by hand may have no paths
        csv = documents[C.PATH].astype(str).str.lower().str.endswith(".csv").to_numpy()
        tables = set(documents.loc[csv, C.DOC_ID].astype(str))
    ordered = (segs.sort_values([C.DOC_ID, C.UNIT_INDEX], kind="stable")
               if C.UNIT_INDEX in segs else segs)
    return segs[C.SEGMENT_ID].isin(first_coded_units(ordered, tables)).to_numpy()


def _derived_openings(segs: pd.DataFrame) -> np.ndarray:
    """Opening rows when only a flat table of segments is known (gold with text, segments CSV).

    The first coded unit of a document by unit index (``unit_index`` or the ``:<n>`` of an
    id ``"{doc_id}:<n>"``); a document with any other id (a survey table's row ids) has none,
    as a coded run gives survey tables no opening unit.
    """
    out = np.zeros(len(segs), dtype=bool)
    if not len(segs):
        return out
    ids = segs[C.SEGMENT_ID].astype(str).tolist()
    docs = segs[C.DOC_ID].astype(str)
    head = np.array([i.rpartition(":")[0] for i in ids], dtype=object)
    tail = pd.Series([i.rpartition(":")[2] for i in ids], dtype=object)
    keyed = (head == docs.to_numpy()) & tail.str.isdigit().to_numpy()
    index = (pd.to_numeric(segs[C.UNIT_INDEX], errors="coerce").to_numpy(dtype=float)
             if C.UNIT_INDEX in segs.columns
             else pd.to_numeric(tail.where(keyed), errors="coerce").to_numpy(dtype=float))
    tables = set(docs[~keyed])
    frame = pd.DataFrame({"doc": docs.to_numpy(), "index": index, "row": np.arange(len(segs))})
    frame = frame[segs[C.CODED].astype(bool).to_numpy() & ~frame["doc"].isin(tables).to_numpy()
                  & ~np.isnan(index)]
    first = frame.sort_values(["doc", "index"], kind="stable").drop_duplicates("doc")["row"]
    out[first.to_numpy()] = True
    return out


def load_training(gold_path: str, *, segments: str | list[str] | None, codebook=None, lang: str = "nl",
                  segments_flag: str = "--segments") -> TrainingData:
    """Read GOLD (wide with text, or long/wide plus a segments source) into TrainingData.

    ``segments_flag`` is the option named in the error when the gold has no text.

    Raises:
        InputError: label columns that are not codebook ids, gold segments without
            text, no label columns.
    """
    gold = read_table(gold_path)
    # Long gold: the units are the segments it lists (a row with an empty code_id is a
    # segment hand-coded with no code). Wide gold: its rows.
    mat = ag.to_matrix(gold, name="gold", source=gold_path).matrix
    if codebook is not None:
        known = set(codebook.ids())
        unknown = [c for c in mat.columns if c not in known]
        if unknown:
            raise InputError(gold_path, f"label column(s) {', '.join(map(repr, unknown))} are not "
                                        f"code ids of {codebook.path}")
    if not len(mat.columns):
        raise InputError(gold_path, "no label columns (expected one 0/1 column per code)")
    id_col = C.SEGMENT_ID if C.SEGMENT_ID in gold.columns else "id"
    if C.TEXT in gold.columns and C.CODE_ID not in gold.columns:
        segs = gold.rename(columns={id_col: C.SEGMENT_ID})
        keep = [c for c in (C.SEGMENT_ID, C.DOC_ID, C.TEXT, C.LANG, C.START, C.END) if c in segs]
        segs = segs[keep].copy()
        segs[C.SEGMENT_ID] = segs[C.SEGMENT_ID].astype(str)
        segs = _complete_segments(segs, lang)
    elif segments:
        # Only read the segments source when the gold itself has no text.
        segs = _segments_source(segments, lang).set_index(C.SEGMENT_ID).reindex(mat.index)
        missing = segs.index[segs[C.TEXT].isna()]
        if len(missing):
            raise InputError(gold_path, f"{len(missing)} gold segment(s) not in {segments}, e.g. "
                                        f"{missing[0]!r}")
        segs = segs.reset_index()
        segs[C.CODED] = True
    else:
        raise UsageError(f"{gold_path} has no text column: give {segments_flag} with a coded folder "
                         "or a segments table (segment_id, text)")
    segs = segs.reset_index(drop=True)
    labels = mat.loc[segs[C.SEGMENT_ID]].astype(bool)
    return TrainingData(segs, labels, segs[C.DOC_ID].astype(str).to_numpy())


def _prepare(data: TrainingData, codebook):
    """Features and (with a codebook) rule scores of the training segments."""
    from pipeline.ml import analyze, rule_score_matrix
    from pipeline.nlp import parse_segments
    docs = parse_segments(data.segments)
    features = analyze(data.segments, docs)
    features.index = data.labels.index
    rule_scores = None
    if codebook is not None:
        from pipeline.code import code_segments
        # The rule scores a coded run gives these units: settings.opening_weight applies to
        # the unit that opens its document in the source (not to whichever gold unit of a
        # document comes first), and to no unit of a document whose opening is not here.
        segs = data.segments
        opening = segs[_OPENING].fillna(False).astype(bool).to_numpy()
        tables = set(segs[C.DOC_ID].astype(str)) - set(segs.loc[opening, C.DOC_ID].astype(str))
        order = np.argsort(~opening, kind="stable")
        _, codings = code_segments(segs.iloc[order], [docs[k] for k in order], codebook,
                                   tables=tables)
        rule_scores = rule_score_matrix(codings, data.labels.index, list(data.labels.columns))
    return features, rule_scores


def _load_cb(path: str | None):
    if not path:
        return None
    from pipeline.codebook import load_codebook
    return load_codebook(path)


def cmd_train(args: argparse.Namespace) -> int:
    """Train the supervised coder on a gold standard and write the model file."""
    from pipeline.ml import save_model, train_model
    from pipeline.ml.persistence import library_versions
    codebook = _load_cb(args.codebook)
    lang = args.lang or (codebook.settings.default_lang if codebook else "nl")
    data = _load_golds(args.gold, args.segments, codebook, lang)
    cal = _calibration_data(args, codebook, lang, data) if args.calibration else None
    features, rule_scores = _prepare(data, codebook)
    meta = {"gold": ", ".join(map(str, args.gold)), "libraries": library_versions()}
    if codebook is not None:
        meta.update(codebook_hash=codebook.hash, codebook_path=str(codebook.path))
    model = train_model(features, data.labels, data.groups, rule_scores=rule_scores,
                        folds=args.folds, min_positives=args.min_positives, seed=args.seed,
                        meta=meta)
    if cal is not None:
        from pipeline.ml.calibrate import calibrate_hybrid
        cal_features, cal_rules = _prepare(cal, codebook)
        model = calibrate_hybrid(model, cal_features, cal.labels, cal.groups, cal_rules,
                                 folds=args.folds, seed=args.seed,
                                 thresholds=args.calibrate_thresholds,
                                 source=", ".join(map(str, args.calibration)))
    save_model(model, args.out)
    if not args.quiet:
        print(f"trained model {model.version} on {model.meta['n_segments']} segments from "
              f"{model.meta['n_documents']} documents ({model.meta['folds']}-fold grouped CV)")
        uses = model.meta.get("hybrid_combiners", {})
        for code in model.labels:
            hyb = f"  hybrid uses {uses[code]}" if code in uses else ""
            if code in model.not_learnable:
                print(f"  {code:<24} not learnable: {model.not_learnable[code]}{hyb}")
            else:
                print(f"  {code:<24} positives {model.meta['positives'][code]:>4}  threshold "
                      f"{model.thresholds[code]:.3f}  CV F1 {model.meta['cv_f1_ml'][code]:.2f}{hyb}")
        cal = model.meta.get("hybrid_calibration")
        if cal:
            print(f"hybrid combiners chosen on {cal['gold']} ({cal['n_segments']} segments from "
                  f"{cal['n_documents']} documents the model was not trained on)")
        elif model.hybrid:
            print("note: hybrid combiners were chosen on the training gold; if the codebook's "
                  "rules were written from it they look better there than they are and the "
                  "hybrid leans on them (give --calibration GOLD2 to choose on unseen data)")
        print(f"wrote {args.out}" + ("" if model.hybrid else " (no codebook: --method ml only)"))
    return 0


def _load_golds(golds: list[str], segments: list[str] | None, codebook, lang: str,  # noqa: ANN001
                segments_flag: str = "--segments") -> TrainingData:
    """One or more gold files as one training set (segment ids must not repeat)."""
    parts = [load_training(g, segments=segments, codebook=codebook, lang=lang,
                           segments_flag=segments_flag) for g in golds]
    if len(parts) == 1:
        return parts[0]
    labels = pd.concat([p.labels for p in parts]).fillna(False).astype(bool)
    dup = labels.index[labels.index.duplicated()]
    if len(dup):
        raise InputError(golds[0], f"segment {dup[0]!r} is in more than one gold file; each "
                                   "unit may be hand-coded once in the training data")
    missing = [f"{c} ({g})" for p, g in zip(parts, golds) for c in labels.columns
               if c not in p.labels.columns]
    if missing:
        raise InputError(golds[0], "the gold files do not share their code columns: missing "
                                   + ", ".join(missing))
    return TrainingData(pd.concat([p.segments for p in parts], ignore_index=True), labels,
                        np.concatenate([p.groups for p in parts]))


def _calibration_data(args: argparse.Namespace, codebook, lang: str,  # noqa: ANN001
                      training: TrainingData) -> TrainingData:
    """``--calibration``: the gold on which the hybrid combiners are chosen (checked first)."""
    if codebook is None:
        raise UsageError("--calibration needs --codebook: it chooses how rule evidence and "
                         "the model are combined")
    cal = _load_golds(args.calibration, args.calibration_segments, codebook, lang,
                      segments_flag="--calibration-segments")
    overlap = sorted(set(map(str, cal.labels.index)) & set(map(str, training.labels.index)))
    if overlap:
        raise InputError(args.calibration[0], f"{len(overlap)} segment(s) are also in the "
                                              f"training gold, e.g. {overlap[0]!r}; the "
                                              "calibration gold must be separate")
    return cal


def cmd_suggest(args: argparse.Namespace) -> int:
    """Write the segments a researcher should hand-code next."""
    from pipeline.ml import analyze, load_model, suggest
    from pipeline.nlp import parse_segments
    model = load_model(args.model, _load_cb(args.codebook))
    segs = _segments_source(args.segments or args.coded, args.lang)
    exclude: list[str] = []
    if args.exclude:
        ex = read_table(args.exclude)
        col = C.SEGMENT_ID if C.SEGMENT_ID in ex.columns else "id"
        if col not in ex.columns:
            raise InputError(args.exclude, f"no '{C.SEGMENT_ID}' column")
        exclude = ex[col].astype(str).tolist()
    segs = segs.reset_index(drop=True)
    features = analyze(segs, parse_segments(segs))
    sheet = suggest(model, segs, features, n=args.n, exclude=exclude)
    if args.out:
        from pipeline.store import atomic_write_text
        atomic_write_text(args.out, sheet.to_csv(index=False))
        if not args.quiet:
            print(f"wrote {len(sheet)} segment(s) to hand-code to {args.out}")
    else:
        sheet.to_csv(sys.stdout, index=False)
    return 0


def run_cv_evaluation(args: argparse.Namespace, gold: ag.CodingMatrix) -> int:
    """``qcode evaluate GOLD --methods rules,ml,hybrid``: cross-validated comparison."""
    from pipeline.ml import cross_validate_methods, replace_readme_block, to_markdown
    methods = [m.strip() for m in args.methods.split(",")]
    bad = [m for m in methods if m not in ("rules", "ml", "hybrid")]
    if bad:
        raise UsageError(f"--methods: unknown method(s) {', '.join(bad)} (rules, ml, hybrid)")
    codebook = _load_cb(args.codebook)
    data = load_training(args.gold, segments=args.segments or args.coded, codebook=codebook,
                         lang=codebook.settings.default_lang)
    features, rule_scores = _prepare(data, codebook)
    table = cross_validate_methods(features, data.labels, data.groups, rule_scores=rule_scores,
                                   folds=args.folds, seed=args.seed)
    keep = [c for c in table.columns if not any(c.endswith(f"_{m}") for m in ("rules", "ml", "hybrid")
                                                if m not in methods)
            and not (c == "hybrid_uses" and "hybrid" not in methods)]
    table = table[keep]
    if args.out:
        from pipeline.store import atomic_write_text
        atomic_write_text(args.out, table.to_csv(index=False))
    md = (to_markdown(table) if set(methods) == {"rules", "ml", "hybrid"}
          else table.round(3).to_string(index=False))
    if args.readme:
        from pipeline.store import atomic_write_text
        readme = Path(args.readme)
        text = readme.read_text(encoding="utf-8") if readme.exists() else ""
        block = (f"Cross-validated ({args.folds} folds, grouped by document) on `{args.gold}`, "
                 f"{len(data.labels)} segments from {len(np.unique(data.groups))} documents:\n\n" + md)
        atomic_write_text(readme, replace_readme_block(text, block))
    if not args.quiet:
        print(md)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``suggest``."""
    p = sub.add_parser(
        "train", help="train the supervised coder on a gold standard",
        description="Train a multi-label model (lemma, stem and character n-gram features; "
                    "one-vs-rest logistic regression; per-code thresholds chosen by "
                    "cross-validation grouped by document) on GOLD: a wide CSV (id, text, one "
                    "0/1 column per code) or a coding table plus --segments/--coded for the "
                    "texts. With --codebook, label columns must be codebook ids and the model "
                    "also chooses, per code on held-out folds, how to combine rule evidence "
                    "with it (--method hybrid: rules only, rules OR a confident model, rules "
                    "AND NOT a confident model veto, or a stacker); --calibration chooses "
                    "that on a second gold the rules were not written from. Codes with "
                    "too few positives are reported as not learnable. The model file is a "
                    "skops archive (no pickle).")
    p.add_argument("gold", nargs="+", help="gold standard table(s) (CSV or Parquet); several "
                                           "files are trained on together")
    p.add_argument("--out", required=True, help="model file to write (e.g. models/coder.skops)")
    p.add_argument("--codebook", help="codebook YAML (recommended: enables hybrid coding and "
                                      "ties the model to this codebook)")
    p.add_argument("--segments", nargs="+", help="segments table(s) or coded folder(s) with the "
                                                 "texts, when GOLD has no text column")
    p.add_argument("--lang", choices=["nl", "en"], help="language of texts without a lang column")
    p.add_argument("--calibration", metavar="GOLD", nargs="+",
                   help="gold standard(s) NOT used to write the codebook's rules nor to "
                        "train: each code's hybrid combination is chosen on them, where rule and "
                        "model scores are both out-of-sample (needs --codebook)")
    p.add_argument("--calibration-segments", metavar="SEGMENTS", nargs="+",
                   help="segments table(s) or coded folder(s) with the texts of --calibration")
    p.add_argument("--calibrate-thresholds", action="store_true",
                   help="with --calibration: also choose the model's decision thresholds "
                        "(--method ml) on the calibration gold")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--min-positives", type=int, default=5,
                   help="fewer positive examples make a code not learnable (default 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "suggest", help="segments to hand-code next (active learning)",
        description="Rank the segments the model has not been trained on by how uncertain it "
                    "is about them (nearest a code's decision threshold) and write the top N "
                    "as a CSV sheet with an empty column per code, ready to hand-code and add "
                    "to the gold standard.")
    p.add_argument("--model", required=True, help="model file from 'qcode train'")
    p.add_argument("--n", type=int, default=20, help="number of segments (default 20)")
    p.add_argument("--coded", default=DEFAULT_CODED,
                   help=f"coded folder with the segments (default: {DEFAULT_CODED})")
    p.add_argument("--segments", help="segments table (or survey CSV with id, text) instead of --coded")
    p.add_argument("--exclude", help="table of segment ids already hand-coded (e.g. the gold)")
    p.add_argument("--codebook", help="codebook YAML: refuse a model trained on another one")
    p.add_argument("--lang", choices=["nl", "en"], default="nl",
                   help="language of texts without a lang column (default nl)")
    p.add_argument("--out", help="CSV to write (default: standard output)")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary")
    p.set_defaults(func=cmd_suggest)
