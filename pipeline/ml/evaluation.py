"""Cross-validated comparison of the rule, ml and hybrid coders against a gold standard."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from pipeline import columns as C
from pipeline.agreement import MACRO, cell_stats
from pipeline.ml.model import group_folds, hybrid_proba, train_model

METHOD_NAMES = ("rules", "ml", "hybrid")
COMBINER_NAMES = {"rules": "rules", "rules_or_model": "rules OR model",
                  "rules_and_not_model": "rules AND NOT model", "stacker": "stacker"}


def cross_validate_methods(features: pd.DataFrame, Y: pd.DataFrame, groups, *,
                           rule_scores: pd.DataFrame, folds: int = 5, seed: int = 0,
                           **train_kw) -> pd.DataFrame:
    """Per-code F1 and Cohen's kappa of rules, ml and hybrid, cross-validated by document.

    Each outer fold trains a complete model on the other documents (its thresholds
    and each code's hybrid combiner chosen by an inner grouped cross-validation) and
    codes the held-out documents, so no number is measured on data the model saw.

    Args:
        features: ``analyze()`` output, index = segment ids.
        Y: boolean gold labels (same index), one column per code.
        groups: document of each row.
        rule_scores: rule-coder score per row x code (0: no rule fired).
        folds: outer folds.
        seed: random seed.
        **train_kw: passed to :func:`train_model`.

    Returns:
        One row per code plus ``(macro)``: ``code_id``, ``n_units``, ``positives``,
        then ``f1_<method>`` and ``kappa_<method>`` for each method, then
        ``hybrid_uses``: the combiners the outer folds chose for the code, most
        frequent first, with counts (e.g. ``rules 4, rules OR model 1``).
    """
    groups = np.asarray(groups)
    Yb = Y.astype(bool)
    labels = list(Y.columns)
    rs = rule_scores.reindex(index=Y.index, columns=labels, fill_value=0.0)
    preds = {m: pd.DataFrame(False, index=Y.index, columns=labels) for m in METHOD_NAMES}
    preds["rules"] = rs > 0
    uses: dict[str, Counter] = {code: Counter() for code in labels}
    for train, test in group_folds(groups, folds):
        model = train_model(features.iloc[train], Yb.iloc[train], groups[train],
                            rule_scores=rs.iloc[train], folds=folds, seed=seed, **train_kw)
        proba = model.predict_proba(features.iloc[test])
        for code in model.learnable:
            preds["ml"].loc[Y.index[test], code] = (proba[code] >= model.thresholds[code]).to_numpy()
        _, dec = hybrid_proba(model, proba, rs.iloc[test])
        preds["hybrid"].loc[Y.index[test], labels] = dec[labels].to_numpy()
        for code in labels:
            uses[code][COMBINER_NAMES[model.hybrid[code]["combiner"]]] += 1
    rows = []
    for code in labels:
        row = {C.CODE_ID: code, "n_units": len(Y), "positives": int(Yb[code].sum())}
        y = Yb[code].to_numpy()
        for m in METHOD_NAMES:
            p = preds[m][code].to_numpy(bool)
            st = cell_stats(np.sum(y & p), np.sum(y & ~p), np.sum(~y & p), np.sum(~y & ~p))
            row[f"f1_{m}"], row[f"kappa_{m}"] = float(st["f1"]), float(st["kappa"])
        row["hybrid_uses"] = ", ".join(f"{name} {n}" for name, n in uses[code].most_common())
        rows.append(row)
    table = pd.DataFrame(rows)
    macro = {C.CODE_ID: MACRO, "n_units": len(Y), "positives": int(Yb.to_numpy().sum())}
    for col in table.columns[3:]:
        if col != "hybrid_uses":
            macro[col] = float(np.nanmean(table[col])) if len(table) else np.nan
    macro["hybrid_uses"] = ""
    return pd.concat([table, pd.DataFrame([macro])], ignore_index=True)


def to_markdown(table: pd.DataFrame) -> str:
    """Render the comparison as a Markdown table (for the README)."""
    cols = [C.CODE_ID, "positives"] + [f"f1_{m}" for m in METHOD_NAMES] + \
        [f"kappa_{m}" for m in METHOD_NAMES]
    head = ["code", "positives"] + [f"F1 {m}" for m in METHOD_NAMES] + [f"κ {m}" for m in METHOD_NAMES]
    uses = "hybrid_uses" in table.columns
    if uses:
        head.append("hybrid uses")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [str(r[C.CODE_ID]), str(int(r["positives"]))]
        cells += ["n/a" if pd.isna(r[c]) else f"{r[c]:.2f}" for c in cols[2:]]
        if uses:
            cells.append(str(r["hybrid_uses"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


README_START = "<!-- qcode:evaluation:start -->"
README_END = "<!-- qcode:evaluation:end -->"


def replace_readme_block(readme: str, block: str) -> str:
    """Put ``block`` between the evaluation markers (appending them when absent)."""
    body = f"{README_START}\n{block}\n{README_END}"
    if README_START in readme and README_END in readme:
        head, rest = readme.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        return head + body + tail
    return readme.rstrip("\n") + "\n\n" + body + "\n"
