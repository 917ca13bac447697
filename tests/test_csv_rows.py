"""pipeline.csv_rows writes the bytes DataFrame.to_csv writes."""
from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from pipeline.csv_rows import _columnar, csv_rows

CHARS = ["a", ",", '"', "\n", "\r", " ", "é", "\t", "'", ";", '""', "\x00", "\u2028", "\x1c",
         "\x0b", "\x0c", "\x85"]


def _to_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")


def _text(rng: random.Random) -> object:
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.15:
        return float("nan")
    if r < 0.2:
        return ""
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(1, 6)))


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_match_to_csv(seed: int) -> None:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    n = rng.randint(1, 40)
    floats = nrng.random(n) * 10.0 ** nrng.integers(-8, 18, n)
    floats[::3] = np.nan
    floats[1::7] = -0.0
    floats[2::11] = np.inf
    floats[4::13] = 0.0
    df = pd.DataFrame({"a": [_text(rng) for _ in range(n)], "b": floats,
                       "c": nrng.integers(-10**12, 10**12, n), "d": nrng.random(n) > .5,
                       "e": pd.array([_text(rng) for _ in range(n)], dtype="str"),
                       "f": nrng.integers(0, 3, n).astype("int32")})
    got = _columnar(df)
    assert got is not None  # the columnar path ran, and gives to_csv's bytes
    assert got == _to_csv(df)


@pytest.mark.parametrize("df", [
    pd.DataFrame({"a": ["x", 1, None], "b": [1, 2, 3]}),                    # mixed objects
    pd.DataFrame({"a": [""], "b": [None]}),
    pd.DataFrame({"a": ["", None]}),                                       # one column
    pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype="int64")}),
    pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": ["x", "y"]}),
    pd.DataFrame({"a": pd.to_datetime(["2020-01-01", None]), "b": ["x", "y"]}),
    pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1.5, 2.0]}),
])
def test_other_tables_fall_back_to_the_same_bytes(df: pd.DataFrame) -> None:
    assert csv_rows(df) == _to_csv(df)


@pytest.mark.parametrize("values, special", [
    (["a", "b"], False), (["a", "b,c"], True), (['"'], True), (["x\ny"], True),
    (["x\ry", "é;"], False), (["", ""], False), ([None, "a"], False),
])
def test_byte_scan_finds_fields_to_quote(values, special) -> None:
    import pyarrow as pa

    from pipeline.csv_rows import _has_special

    strings = pa.array(values, type=pa.large_string())
    assert _has_special(strings) is special
    assert _has_special(strings.slice(1)) is any(  # a slice scans its own bytes only
        v is not None and any(c in v for c in ',"\n') for v in values[1:])
    df = pd.DataFrame({"a": pd.array(values, dtype="str"), "b": [1] * len(values)})
    assert _columnar(df) == _to_csv(df)
