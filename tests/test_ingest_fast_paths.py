"""The fast paths of ingest and segment give what the general ones give.

Reading builds plain columns and one table per batch, labels are matched at line
starts with memoised verdicts, sorts and joins are skipped or done by a positional
take when the input allows it. Each test compares a fast path with the slower,
obviously right way of getting the same result.
"""
from __future__ import annotations

import math
import random
import re

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.errors import InputError
from pipeline.ingest import decode_bytes, join_metadata, read_file, read_files
from pipeline.ingest.files import read_parts, turns_frame
from pipeline.ingest.labels import (
    Turn, _match_label, paragraphs, split_turns, strip_span, turn_lists)
from pipeline.segment import segment

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _split_line_by_line(text: str, forced: dict[int, int]) -> list[Turn]:
    """``split_turns`` the slow, plain way: match every line of the text on its own."""
    labels, pos = [], 0
    for line in text.split("\n"):
        if pos in forced:
            labels.append((pos, pos + forced[pos], line[: forced[pos] - 1].strip(), math.nan))
        else:
            found = _match_label(line)
            if found:
                labels.append((pos, pos + found[1], found[0], found[2]))
        pos += len(line) + 1
    if not labels:
        return paragraphs(text)
    turns = paragraphs(text, 0, labels[0][0])
    for i, (_, content_start, speaker, time) in enumerate(labels):
        end = labels[i + 1][0] if i + 1 < len(labels) else len(text)
        span = strip_span(text, content_start, end)
        if span:
            turns.append(Turn(speaker, *span, time_start=time))
    return turns


def _same(a: list[Turn], b: list[Turn]) -> bool:
    return [(t.speaker, t.start, t.end) for t in a] == [(t.speaker, t.start, t.end) for t in b] \
        and all(x.time_start == y.time_start or (math.isnan(x.time_start)
                                                 and math.isnan(y.time_start))
                for x, y in zip(a, b))


@pytest.mark.parametrize("seed", range(5))
def test_labels_found_at_line_starts_equal_line_by_line_matching(seed):
    rng = random.Random(seed)
    pieces = ["I:", "R1:", "Anja de Vries:", "[00:01:02] Anja:", "(01:02) I:", "**Piet:**",
              "**Kees**:", "Kortom:", "10:30", "http://x.nl", "tekst", " ", "\t", "\n",
              "\n\n", ":", "Ja, het punt is:", "Pieters, Anna (Onderzoeker):"]
    for _ in range(300):
        text = "".join(rng.choice(pieces) + rng.choice(["", " ", "\n"]) for _ in range(25))
        starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        forced = {p: rng.randint(1, 5) for p in rng.sample(starts, min(2, len(starts)))
                  if rng.random() < 0.3}
        assert _same(split_turns(text, forced), _split_line_by_line(text, forced)), text



@pytest.mark.parametrize("seed", range(3))
def test_turn_lists_are_the_columns_of_split_turns(seed):
    rng = random.Random(seed)
    pieces = ["I:", "R1:", "Anja de Vries:", "[00:01:02] Anja:", "**Piet:**", "Kortom:",
              "10:30", "tekst", " ", "\t", "\n", "\n\n", ":", "Pieters, Anna (Onderzoeker):"]
    texts = ["", "geen labels\n\nmaar alinea's", "I:\nR: ja", "# Titel\n\nI: vraag\nR: antwoord"]
    texts += ["".join(rng.choice(pieces) + rng.choice(["", " ", "\n"]) for _ in range(25))
              for _ in range(300)]
    for text in texts:
        speakers, starts, ends, times = turn_lists(text)
        got = [Turn(*row) for row in zip(speakers, starts, ends, times)]
        assert _same(got, split_turns(text)), text
        assert all(math.isnan(t.time_end) for t in split_turns(text))

def test_read_parts_are_read_file_without_dataframes(tmp_path):
    txt = tmp_path / "int.txt"
    txt.write_text("# Titel\n\nI: Hoe ging het?\nR: Goed.\n\nEcht goed.\n", encoding="utf-8")
    csv = tmp_path / "survey.csv"
    csv.write_text("id;text;regio\nA;Eerste;Noord\nB;  ;Zuid\nC;Derde;\n", encoding="utf-8")
    for path in (txt, csv):
        parts, got = read_parts(path), read_file(path)
        assert pd.DataFrame([parts.document], columns=C.DOCUMENT_COLUMNS).equals(got.documents)
        pd.testing.assert_frame_equal(turns_frame(parts.turns), got.turns)
        assert parts.warnings == got.warnings


def test_read_files_table_equals_concatenated_file_tables(tmp_path):
    (tmp_path / "b.txt").write_text("I: Vraag?\nR: Antwoord.\n", encoding="utf-8")
    (tmp_path / "a.csv").write_text("id,text,land\n1,Ja,NL\n2,Nee,BE\n", encoding="utf-8")
    (tmp_path / "c.csv").write_text("id,text,sector\n1,Hm,PO\n", encoding="utf-8")
    paths = sorted(tmp_path.iterdir())
    got = read_files(paths, [p.stem for p in paths], [p.name for p in paths], [""] * 3,
                     text_column="text", id_column="id", report=lambda *a: None)
    frames = [read_file(p).turns for p in paths]
    expected = pd.concat(frames, ignore_index=True)
    extra = [c for c in expected.columns if c not in C.TURN_COLUMNS]
    expected[extra] = expected[extra].fillna("")
    expected = expected.sort_values([C.DOC_ID, C.TURN], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got.turns, expected)
    assert list(got.documents[C.PATH]) == ["a.csv", "b.txt", "c.csv"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16", "utf-32"])
def test_control_characters_counted_on_bytes_as_on_text(encoding):
    text = "caf\u00e9 " * 30 + "\x01\x07" + "\u20ac" * 10 + "\x1f\x7f"
    data = text.encode(encoding)
    with pytest.raises(Exception, match=r"not a text file \(4 control characters\)"):
        decode_bytes(data, "f.txt")
    clean = ("caf\u00e9 " * 300 + "\x01").encode(encoding)
    assert decode_bytes(clean, "f.txt")[0] == "caf\u00e9 " * 300 + "\x01"
    assert len(_CONTROL.findall(text)) == 4


def test_segment_of_sorted_and_shuffled_turns_is_the_same(tiny_corpus):
    docs, turns = tiny_corpus
    ordered = turns.sort_values([C.DOC_ID, C.TURN], kind="stable").reset_index(drop=True)
    shuffled = ordered.sample(frac=1, random_state=7)
    pd.testing.assert_frame_equal(segment(docs, ordered), segment(docs, shuffled))


def test_document_attributes_by_take_equal_merge(tiny_corpus):
    docs, turns = tiny_corpus
    docs = docs.assign(region=[f"r{i}" for i in range(len(docs))])
    fast = segment(docs, turns)
    # object doc ids on one side only: segment falls back to merge
    slow = segment(docs.astype({C.DOC_ID: object}), turns)
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
    assert fast["region"].dtype == docs["region"].dtype


def test_metadata_take_join_equals_merge():
    documents = pd.DataFrame({C.DOC_ID: ["b", "a", "c"], C.PATH: ["b.txt", "a.txt", "c.txt"]})
    meta = pd.DataFrame({C.DOC_ID: ["a", "b", "x"], "land": ["NL", "BE", "DE"]})
    got = join_metadata(documents, meta, "metadata.csv", set(), lambda *a: None)
    expected = documents.merge(meta, on=C.DOC_ID, how="left")
    expected["land"] = expected["land"].fillna("").astype(str)
    pd.testing.assert_frame_equal(got, expected)
    assert list(got["land"]) == ["BE", "NL", ""]



@pytest.mark.parametrize("land", [["NL", "BE"], ["NL", None]])
def test_metadata_take_join_without_gaps_equals_merge(land):
    documents = pd.DataFrame({C.DOC_ID: ["b", "a"], C.PATH: ["b.txt", "a.txt"]})
    meta = pd.DataFrame({C.DOC_ID: ["a", "b"], "land": pd.array(land, dtype="str")})
    got = join_metadata(documents, meta, "metadata.csv", set(), lambda *a: None)
    expected = documents.merge(meta, on=C.DOC_ID, how="left")
    expected["land"] = expected["land"].fillna("").astype(str)
    pd.testing.assert_frame_equal(got, expected)
    assert list(got["land"]) == ["BE" if land[1] else "", "NL"]

def test_reserved_csv_column_whose_new_name_is_taken_is_an_error(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,text,start,start_csv\n1,hallo,a,b\n", encoding="utf-8")
    with pytest.raises(InputError, match="'start_csv', its new name, is taken"):
        read_file(path)
