"""The vectorised aggregate paths (built for a million segments) against plain reference
formulations on random corpora: same rows, same order, same dtypes."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from pipeline import aggregate as A
from pipeline import columns as C
from pipeline.aggregate import _common, framework
from pipeline.aggregate.cooccurrence import PAIR_COLUMNS
from pipeline.aggregate.portrait import PORTRAIT_COLUMNS

CODES = ["agency", "ownership", "amo", "amo.ability", "amo.motivation", "amo.ability.skills",
         "alignment", "shared_leadership.teams"]
WORDS = ["team", "eigenaarschap", "we", "mochten", "zelf", "kiezen", "school", "tijd",
         "ruimte", "vernieuwing", "de", "het"]


def _corpus(seed: int, n_docs: int = 6, n_segs: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    segs, cods = [], []
    for d in range(n_docs):
        offset = 0
        for i in range(int(rng.integers(1, n_segs))):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 12))))
            sid = f"d{d}:{i}"
            segs.append((sid, f"d{d}", i, f"R{i % 2}", True, text, offset, offset + len(text),
                         "NL" if d % 2 else "BE"))
            for code in rng.choice(CODES, size=int(rng.integers(0, 4)), replace=True):
                a = int(rng.integers(0, len(text)))
                b = int(rng.integers(a, len(text) + 1))
                score = float(rng.choice([0.5, 0.7, 0.9, np.nan]))
                cods.append((sid, f"d{d}", code, score, 1, offset + a, offset + b, "rules"))
            offset += len(text) + 1
    seg = pd.DataFrame(segs, columns=[C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX, C.SPEAKER, C.CODED,
                                      C.TEXT, C.START, C.END, "country"])
    cod = pd.DataFrame(cods, columns=[C.SEGMENT_ID, C.DOC_ID, C.CODE_ID, C.SCORE, C.N_MATCHES,
                                      C.START, C.END, C.METHOD])
    # shuffled rows: the functions must not rely on the table already being in document order
    return (seg.sample(frac=1, random_state=seed).reset_index(drop=True),
            cod.sample(frac=1, random_state=seed).reset_index(drop=True))


def _level_reference(codings: pd.DataFrame, level) -> pd.DataFrame:
    """apply_level as a loop over codes and ancestors, one boolean selection each."""
    if level == "all":
        extra = [codings[codings[C.CODE_ID] == code].assign(**{C.CODE_ID: anc})
                 for code in codings[C.CODE_ID].drop_duplicates() for anc in A.ancestors(code)]
        mapped = pd.concat([codings, *extra], ignore_index=True) if extra else codings
    else:
        cut = 1 if level == "top" else level
        mapped = codings.assign(**{C.CODE_ID: codings[C.CODE_ID].map(
            lambda c: ".".join(str(c).split(".")[:cut]))})
    mapped = mapped.sort_values(C.SCORE, ascending=False, kind="mergesort")
    return mapped.drop_duplicates([C.SEGMENT_ID, C.CODE_ID], keep="first").reset_index(drop=True)


def _cooccurrence_reference(seg, cod, window, level, imbalance=5.0) -> pd.DataFrame:
    """Pair counts from the public ``code_windows``, counted one window at a time."""
    wins = A.code_windows(seg, cod, window=window, level=level)
    own = A.code_windows(seg, cod, window=0, level=level)
    codes = _common.code_order({c for w in wins for c in w}, None, level)
    rows = []
    for a, b in combinations(codes, 2):
        n_a, n_b = sum(a in w for w in wins), sum(b in w for w in wins)
        n_ab = sum(a in w and b in w for w in wins)
        union = n_a + n_b - n_ab
        ratio = max(n_a, n_b) / min(n_a, n_b) if min(n_a, n_b) else float("inf")
        rows.append((a, b, n_a, n_b, n_ab, n_ab / union if union else 0.0,
                     n_ab / union if union else 0.0, bool(max(n_a, n_b) > 0 and ratio >= imbalance),
                     sum(a in w for w in own), sum(b in w for w in own)))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("level", ["all", "top", 1, 2])
def test_apply_level_equals_the_loop_over_codes_and_ancestors(seed, level):
    _, cod = _corpus(seed)
    pd.testing.assert_frame_equal(A.apply_level(cod, level), _level_reference(cod, level),
                                  check_exact=True)


def test_apply_level_all_puts_ancestor_copies_after_the_codings_code_by_code():
    cod = pd.DataFrame({C.SEGMENT_ID: ["s1", "s2", "s3"], C.DOC_ID: "d",
                        C.CODE_ID: ["a.b.c", "x", "a.b"]})
    got = A.apply_level(cod, "all")
    assert list(zip(got[C.SEGMENT_ID], got[C.CODE_ID])) == [
        ("s1", "a.b.c"), ("s2", "x"), ("s3", "a.b"),
        ("s1", "a.b"), ("s1", "a"), ("s3", "a")]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("window", [0, 1, 3])
@pytest.mark.parametrize("level", ["code", "top", "all"])
def test_cooccurrence_equals_counting_the_windows(seed, window, level):
    seg, cod = _corpus(seed)
    got = A.cooccurrence(seg, cod, window=window, level=level, imbalance=2.0)
    want = _cooccurrence_reference(seg, cod, window, level, imbalance=2.0)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    mat = A.cooccurrence_matrix(got, "count")
    for row in got.itertuples(index=False):
        assert mat.loc[row.code_a, row.code_b] == mat.loc[row.code_b, row.code_a] == row.n_ab
        assert mat.loc[row.code_a, row.code_a] == row.n_a


def test_cooccurrence_counts_a_segment_id_listed_twice_in_each_of_its_windows():
    seg, cod = _corpus(7)
    twice = pd.concat([seg, seg.iloc[[0]]], ignore_index=True)   # a repeated id, as in a bad merge
    pd.testing.assert_frame_equal(A.cooccurrence(twice, cod, window=1),
                                  _cooccurrence_reference(twice, cod, 1, "code"),
                                  check_exact=True)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("query", [{"code": "amo", "level": "all"}, {"code": "agency"},
                                   {"term": "eigenaar*"}, {"term": "de school"}])
@pytest.mark.parametrize("window", [0, 2])
def test_kwic_by_position_equals_kwic_by_segment_id(seed, query, window):
    seg, cod = _corpus(seed)
    q = {"code": None, "term": None, "level": "code", **query}
    got = A.kwic(seg, cod, window=window, **query)
    ordered = _common.segment_order(seg)
    want = framework._kwic_rows(ordered.set_index(C.SEGMENT_ID, drop=False), cod, q["code"],
                                q["term"], window, q["level"])
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got[C.START].le(got[C.END]).all()


@pytest.mark.parametrize("values, allowed, dtype", [
    (["a", "b", None, "c"], ["a", None], "str"),
    (["a", "b", None, "c"], ["a", None], object),
    (["a", 1, None], ["a"], object),               # mixed object column: pandas' isin
    ([1, 2, 3], [2], None),
    (["a", "b"], [], "str"),
])
def test_isin_agrees_with_pandas(values, allowed, dtype):
    v = pd.Series(values, dtype=dtype)
    a = pd.Series(allowed, dtype=dtype if allowed else "str")
    got = _common._isin(v, a)
    assert got.dtype == bool
    assert got.tolist() == v.isin(a).tolist()


def test_filter_coded_keeps_only_codings_of_kept_segments():
    seg, cod = _corpus(3)
    kept, kc = A.filter_coded(seg, cod, where={"country": "NL"})
    assert set(kc[C.SEGMENT_ID]) <= set(kept[C.SEGMENT_ID])
    assert len(kc) == int(cod[C.SEGMENT_ID].isin(kept[C.SEGMENT_ID]).sum()) > 0


def _portrait_reference(seg, cod, level, codebook=None) -> pd.DataFrame:
    """document_portrait as a loop over documents, segments and their sorted codes."""
    seg = _common.segment_order(seg)
    cod = A.apply_level(cod, level)
    order = {c: i for i, c in
             enumerate(_common.code_order(cod[C.CODE_ID].unique(), codebook, level))}
    by_seg = cod.groupby(C.SEGMENT_ID)[C.CODE_ID].agg(
        lambda s: sorted(set(s), key=lambda c: order.get(c, len(order)))).to_dict()
    rows = []
    for doc, ids in seg.groupby(C.DOC_ID, sort=True)[C.SEGMENT_ID]:
        for pos, sid in enumerate(ids):
            codes = by_seg.get(sid) or [""]
            rows.extend((str(doc), pos, len(ids), sid, code, slot, len(codes))
                        for slot, code in enumerate(codes))
    return pd.DataFrame(rows, columns=PORTRAIT_COLUMNS)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("level", ["code", "top", "all"])
def test_document_portrait_equals_the_loop_over_segments(seed, level):
    seg, cod = _corpus(seed)
    cod = pd.concat([cod, cod.iloc[:3]], ignore_index=True)   # a code twice on a segment
    twice = pd.concat([seg, seg.iloc[[1]]], ignore_index=True)  # and a repeated segment id
    for segments in (seg, twice):
        pd.testing.assert_frame_equal(A.document_portrait(segments, cod, level=level),
                                      _portrait_reference(segments, cod, level),
                                      check_exact=True)
