"""Which rules fire, how often, and which never do: for pruning and extending a codebook."""
from __future__ import annotations

import pandas as pd

from pipeline import columns as C

RULE_REPORT_COLUMNS = [C.CODE_ID, C.RULE_ID, C.LANG, "kind", "weight", "n_matches", "n_segments",
                       "n_codings", "fired", "lang_in_data"]


def rules_report(codebook, matches: pd.DataFrame, codings: pd.DataFrame,
                 segments: pd.DataFrame) -> pd.DataFrame:
    """One row per codebook rule with its activity on a coded corpus.

    Args:
        codebook: the loaded ``Codebook`` the corpus was coded with.
        matches: the matches table (every surviving rule hit).
        codings: the codings table (``rules`` lists the rule ids behind each coding).
        segments: the segments table (for the languages present).

    Returns:
        ``RULE_REPORT_COLUMNS``: ``n_matches`` hits, ``n_segments`` segments hit,
        ``n_codings`` codings the rule contributed to (a weak rule can hit without
        the segment reaching the threshold), ``fired`` whether it hit at all,
        ``lang_in_data`` whether the corpus has coded segments in the rule's language
        (a rule of an absent language cannot fire). Exclude rules are listed with
        ``kind`` "exclude" and no counts: vetoed matches are not recorded. Sorted by
        code, then most matches first.
    """
    coded_langs = set(segments.loc[segments[C.CODED].astype(bool), C.LANG]) if len(segments) else set()
    hits = matches.groupby(C.RULE_ID).agg(n_matches=(C.SEGMENT_ID, "size"),
                                          n_segments=(C.SEGMENT_ID, "nunique"))
    contributed: dict[str, int] = {}
    for rules in codings.get(C.RULES, pd.Series(dtype=str)).fillna(""):
        for rule_id in filter(None, str(rules).split(";")):
            contributed[rule_id] = contributed.get(rule_id, 0) + 1
    rows = []
    for code_id, code in codebook.codes.items():
        for lang, rules in code.rules.items():
            for rule in rules:
                is_veto = rule.kind == "exclude"
                n = int(hits["n_matches"].get(rule.id, 0)) if not is_veto else None
                rows.append({
                    C.CODE_ID: code_id, C.RULE_ID: rule.id, C.LANG: lang, "kind": rule.kind,
                    "weight": None if is_veto else rule.weight,
                    "n_matches": n,
                    "n_segments": None if is_veto else int(hits["n_segments"].get(rule.id, 0)),
                    "n_codings": None if is_veto else contributed.get(rule.id, 0),
                    "fired": None if is_veto else bool(n),
                    "lang_in_data": lang in coded_langs,
                })
    report = pd.DataFrame(rows, columns=RULE_REPORT_COLUMNS)
    order = {code_id: i for i, code_id in enumerate(codebook.codes)}
    report["_code"] = report[C.CODE_ID].map(order)
    report["_n"] = report["n_matches"].fillna(-1)
    report = report.sort_values(["_code", "_n", C.RULE_ID], ascending=[True, False, True],
                                kind="stable")
    return report.drop(columns=["_code", "_n"]).reset_index(drop=True)


def summarise(report: pd.DataFrame, top: int = 3) -> list[str]:
    """Readable lines per code: the busiest rules and the ones that never fired."""
    lines = []
    for code_id, group in report.groupby(C.CODE_ID, sort=False):
        active = group[group["fired"].eq(True)]
        silent = group[group["fired"].eq(False) & group["lang_in_data"]]
        busiest = ", ".join(f"{r} ({int(n)})" for r, n in
                            zip(active[C.RULE_ID].head(top), active["n_matches"].head(top)))
        lines.append(f"{code_id}: {len(active)} of {len(active) + len(silent)} rules fired"
                     + (f"; most: {busiest}" if busiest else ""))
        if len(silent):
            lines.append(f"  never fired: {', '.join(silent[C.RULE_ID])}")
    return lines
