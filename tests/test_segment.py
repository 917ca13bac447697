import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.errors import UsageError
from pipeline.segment import content_hash, normalise_label, segment, speaker_role


def _texts_match(docs, seg):
    text = dict(zip(docs[C.DOC_ID], docs[C.TEXT]))
    return all(text[d][s:e] == t for d, s, e, t in
               zip(seg[C.DOC_ID], seg[C.START], seg[C.END], seg[C.TEXT]))


def test_turn_units_ids_roles_and_offsets(tiny_corpus):
    docs, turns = tiny_corpus
    seg = segment(docs, turns)
    assert list(seg.columns[: len(C.SEGMENT_COLUMNS)]) == C.SEGMENT_COLUMNS
    interview = seg[seg[C.DOC_ID] == "int01"]
    assert list(interview[C.SEGMENT_ID]) == ["int01:0", "int01:1", "int01:2", "int01:3"]
    assert list(interview[C.ROLE]) == ["interviewer", "respondent"] * 2
    assert list(interview[C.CODED]) == [False, True, False, True]
    assert _texts_match(docs, seg)
    # CSV rows keep their own ids and row attributes; document attributes are joined.
    survey = seg[seg[C.DOC_ID] == "survey"]
    assert list(survey[C.SEGMENT_ID]) == ["S001", "S002"]
    assert list(survey["sector"]) == ["PO", "VO"]
    assert list(survey["country"]) == ["BE", "BE"]
    assert survey[C.CODED].all()


def test_paragraph_and_sentence_units(tiny_corpus):
    docs, turns = tiny_corpus
    para = segment(docs, turns, unit="paragraph")
    r1 = para[(para[C.DOC_ID] == "int01") & (para[C.TURN] == 1)]
    assert list(r1[C.TEXT]) == ["We mochten het zelf invullen.", "Dat was fijn."]
    sent = segment(docs, turns, unit="sentence")
    r3 = sent[(sent[C.DOC_ID] == "int01") & (sent[C.TURN] == 3)]
    assert list(r3[C.TEXT]) == ["Daar had ik gewoon geen uren voor.", "Echt niet."]
    assert _texts_match(docs, para) and _texts_match(docs, sent)
    # Unit indices run through the document, so ids stay unique.
    assert para[C.SEGMENT_ID].is_unique and sent[C.SEGMENT_ID].is_unique


def test_ids_and_hashes_are_stable_across_runs(tiny_corpus):
    docs, turns = tiny_corpus
    a, b = segment(docs, turns), segment(docs, turns.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(a, b)
    assert a.loc[1, C.CONTENT_HASH] == content_hash("We mochten het zelf invullen.\n\nDat was fijn.")


def test_code_speakers_override(tiny_corpus):
    docs, turns = tiny_corpus
    everyone = segment(docs, turns, code_speakers="all")
    assert everyone[C.CODED].all()
    only_i = segment(docs, turns, code_speakers=["i"])
    assert list(only_i[only_i[C.CODED]][C.SPEAKER]) == ["I", "I"]


@pytest.mark.parametrize("label", ["I", "Int", "interviewer", "Interviewer 2", "**Interviewer**",
                                   "Q", "Moderator", "I1"])
def test_interviewer_labels(label):
    assert speaker_role(label, ["I", "Int", "Interviewer", "Q", "Moderator"]) == "interviewer"


@pytest.mark.parametrize("label", ["R", "R1", "Marieke", "", "Ine"])
def test_respondent_labels(label):
    assert speaker_role(label, ["I", "Int", "Interviewer", "Q", "Moderator"]) == "respondent"


def test_normalise_label():
    assert normalise_label(" Interviewer 2: ") == "interviewer"


def test_unknown_unit(tiny_corpus):
    with pytest.raises(UsageError, match="unknown unit 'page'"):
        segment(*tiny_corpus, unit="page")


def test_attribute_collisions(tiny_corpus):
    docs, turns = tiny_corpus
    docs = docs.assign(role=["teacher", "leader"], start=["x", "y"])
    turns = turns.assign(country=[None] * 4 + ["NL", ""])
    seg = segment(docs, turns)
    assert seg["start_attr"].tolist()[0] == "x"  # pipeline offsets untouched
    assert seg[C.START].dtype == "int64"
    assert seg["role"].iloc[0] == "teacher" and seg[C.ROLE].iloc[0] == "interviewer"
    survey = seg[seg[C.DOC_ID] == "survey"]
    assert list(survey["country"]) == ["NL", "BE"]  # row value wins, document fills the gap


def _mixed_csv_docs(fmt: str = "csv"):
    answers = ["We mochten het zelf invullen, dat was fijn.",
               "We could shape it ourselves and the team decided.", "Ok."]
    text, spans = "", []
    for a in answers:
        if text:
            text += "\n\n"
        spans.append((len(text), len(text) + len(a)))
        text += a
    docs = pd.DataFrame([{C.DOC_ID: "survey", C.PATH: "survey.csv", C.FORMAT: fmt,
                          C.ENCODING: "utf-8", C.LANG: "nl", C.N_CHARS: len(text),
                          C.SHA256: "x", C.TEXT: text}])
    turns = pd.DataFrame([{C.DOC_ID: "survey", C.TURN: k, C.SPEAKER: "", C.START: s, C.END: e,
                           C.TIME_START: float("nan"), C.TIME_END: float("nan"),
                           C.UNIT_KEY: f"S{k}"} for k, (s, e) in enumerate(spans)])
    return docs, turns


def test_detect_lang_per_segment():
    docs, turns = _mixed_csv_docs()
    assert segment(docs, turns)[C.LANG].tolist() == ["nl", "nl", "nl"]  # default: off
    for mode in (True, "always", "csv"):
        seg = segment(docs, turns, detect_lang=mode)
        assert seg[C.LANG].tolist() == ["nl", "en", "nl"], mode  # "Ok.": the document's
    assert segment(docs, turns, detect_lang="never")[C.LANG].tolist() == ["nl"] * 3
    assert segment(docs, turns, detect_lang=True, languages=("nl",))[C.LANG].tolist() == ["nl"] * 3
    txt_docs, txt_turns = _mixed_csv_docs("txt")
    assert segment(txt_docs, txt_turns, detect_lang="csv")[C.LANG].tolist() == ["nl"] * 3
    assert segment(txt_docs, txt_turns, detect_lang="always")[C.LANG].tolist() == ["nl", "en", "nl"]


def test_detect_lang_unknown_mode():
    docs, turns = _mixed_csv_docs()
    with pytest.raises(UsageError, match="unknown detect_lang 'sometimes'"):
        segment(docs, turns, detect_lang="sometimes")


# --- UAT fixes: Teams interviewer labels, preamble, CSV ids across documents ---------------

@pytest.mark.parametrize("label", ["Pieters, Anna (Onderzoeker)", "Anna Pieters (interviewer)",
                                   "Anna (I)", "Interviewer - Anna", "Anna | Q",
                                   "Jansen, Piet (Interviewer 2)"])
def test_interviewer_as_role_in_parentheses_or_prefix(label):
    assert speaker_role(label, ["I", "Interviewer", "Onderzoeker", "Q"]) == C.INTERVIEWER


@pytest.mark.parametrize("label", ["Anna (R)", "Iris", "Pieters, Anna (Respondent)",
                                   "Ingrid - Docent", "Anna (Idee)"])
def test_names_containing_interviewer_letters_stay_respondents(label):
    assert speaker_role(label, ["I", "Interviewer", "Onderzoeker", "Q"]) == C.RESPONDENT


def _docs(rows):
    docs = pd.DataFrame([{C.DOC_ID: d, C.PATH: f"{d}.{fmt}", C.FORMAT: fmt, C.ENCODING: "utf-8",
                          C.LANG: "nl", C.N_CHARS: len(t), C.SHA256: "", C.TEXT: t}
                         for d, fmt, t in rows], columns=C.DOCUMENT_COLUMNS)
    return docs


def _turns(rows):
    return pd.DataFrame([{C.DOC_ID: d, C.TURN: i, C.SPEAKER: sp, C.START: s, C.END: e,
                          C.TIME_START: float("nan"), C.TIME_END: float("nan"), C.UNIT_KEY: k}
                         for d, i, sp, s, e, k in rows], columns=C.TURN_COLUMNS)


def test_preamble_before_first_label_is_other_and_not_coded():
    text = "# Interview 04\n\nSchool X\n\nI: Hoe ging het?\nR: Goed.\n\nNog iets."
    plain = "Een samenvatting.\n\nTweede alinea."
    docs = _docs([("int04", "md", text), ("summary", "txt", plain)])
    turns = _turns([("int04", 0, "", 0, 14, ""), ("int04", 1, "", 16, 24, ""),
                    ("int04", 2, "I", 29, 42, ""), ("int04", 3, "R", 46, 62, ""),
                    ("summary", 0, "", 0, 17, ""), ("summary", 1, "", 19, 33, "")])
    seg = segment(docs, turns, code_speakers="all")
    interview = seg[seg[C.DOC_ID] == "int04"]
    assert list(interview[C.TEXT])[:2] == ["# Interview 04", "School X"]
    assert list(interview[C.ROLE]) == [C.OTHER, C.OTHER, C.INTERVIEWER, C.RESPONDENT]
    assert list(interview[C.SPEAKER])[:2] == ["", ""]
    assert list(interview[C.CODED]) == [False, False, True, True]
    summary = seg[seg[C.DOC_ID] == "summary"]  # no labels: not a preamble, coded as before
    assert list(summary[C.ROLE]) == [C.RESPONDENT] * 2 and summary[C.CODED].all()
    default = segment(docs, turns)
    assert list(default[default[C.DOC_ID] == "int04"][C.CODED]) == [False, False, False, True]


def test_csv_ids_shared_by_two_documents_are_prefixed_with_a_warning():
    docs = _docs([("a", "csv", "een\n\ntwee"), ("b", "csv", "drie\n\nvier"),
                  ("c", "csv", "vijf"), ("d", "txt", "I: zes")])
    turns = _turns([("a", 0, "", 0, 3, "1"), ("a", 1, "", 5, 9, "2"),
                    ("b", 0, "", 0, 4, "1"), ("b", 1, "", 6, 10, "7"),
                    ("c", 0, "", 0, 4, "d:0"), ("d", 0, "I", 3, 6, "")])
    errors: list[dict] = []
    seg = segment(docs, turns, errors=errors)
    assert list(seg[C.SEGMENT_ID]) == ["a:1", "2", "b:1", "7", "c:d:0", "d:0"]
    assert seg[C.SEGMENT_ID].is_unique
    assert [e[C.ERROR_FILE] for e in errors] == ["a.csv", "b.csv", "c.csv"]
    assert all(e[C.ERROR_SEVERITY] == "warning" and e[C.ERROR_STAGE] == "segment" for e in errors)
    assert "'1'" in errors[0][C.ERROR_MESSAGE] and "'b'" in errors[0][C.ERROR_MESSAGE]
    # One document per table (a single survey): the documented rule, ids unchanged.
    alone = segment(docs[docs[C.DOC_ID] == "a"], turns[turns[C.DOC_ID] == "a"], errors=errors)
    assert list(alone[C.SEGMENT_ID]) == ["1", "2"] and len(errors) == 3


def test_unique_across_batches_renames_later_ids():
    from pipeline.segment import SegmentIds, unique_across

    docs = _docs([("a", "csv", "een"), ("b", "csv", "twee\n\ndrie"), ("t", "txt", "R: x"),
                  ("c", "csv", "vier")])
    turns = _turns([("a", 0, "", 0, 3, "1"), ("b", 0, "", 0, 4, "1"), ("b", 1, "", 6, 10, "2"),
                    ("t", 0, "R", 3, 4, ""), ("c", 0, "", 0, 4, "t:0")])
    taken = SegmentIds()
    first, renames = unique_across(segment(docs[:1], turns[:1]), taken)
    assert renames == {} and "1" in taken and "2" not in taken
    errors: list[dict] = []
    second, renames = unique_across(segment(docs[1:3], turns[1:4]), taken, errors,
                                    paths={"b": "b.csv"})
    assert list(second[C.SEGMENT_ID]) == ["b:1", "2", "t:0"] and renames == {"1": "b:1"}
    assert all(i in taken for i in ["1", "b:1", "2", "t:0"]) and "3" not in taken
    assert [e[C.ERROR_FILE] for e in errors] == ["b.csv"]
    # A CSV id equal to an earlier document's "<doc_id>:<n>" id is renamed too.
    third, renames = unique_across(segment(docs[3:], turns[4:]), taken, errors)
    assert list(third[C.SEGMENT_ID]) == ["c:t:0"] and len(errors) == 2


def test_segment_ids_contains_is_membership_one_by_one():
    import random

    import pandas as pd

    from pipeline import columns as C
    from pipeline.segment import SegmentIds

    rng = random.Random(1)
    docs = ["a", "b", "a:b", "", "d:1", "x²", "S1"]
    for _ in range(200):
        taken = SegmentIds()
        rows = {}
        for _ in range(rng.randint(0, 8)):
            d, n = rng.choice(docs), rng.randint(0, 3)
            seg = rng.choice([f"{d}:{n}", f"{rng.choice(docs)}:{n}", "S1", "b:x", "c:²", ":", ""])
            rows.setdefault(seg, (seg, d, n))
        taken.add(pd.DataFrame(list(rows.values()), columns=[C.SEGMENT_ID, C.DOC_ID, C.UNIT_INDEX]))
        probe = pd.Series([*rows, "a:1", "S1", "a:b:2", "c:²", "x²:1", "x²:²", "zz", ":"], dtype="str")
        assert taken.contains(probe).tolist() == [seg in taken for seg in probe]


def test_vraag_antwoord_labels_by_default():
    """The Dutch V:/A: (vraag/antwoord) convention: V is the interviewer without any settings."""
    from pipeline.segment import DEFAULT_INTERVIEWER_LABELS

    assert speaker_role("V", DEFAULT_INTERVIEWER_LABELS) == C.INTERVIEWER
    assert speaker_role("V:", DEFAULT_INTERVIEWER_LABELS) == C.INTERVIEWER
    assert speaker_role("A", DEFAULT_INTERVIEWER_LABELS) == C.RESPONDENT
    assert speaker_role("Vincent", DEFAULT_INTERVIEWER_LABELS) == C.RESPONDENT


def test_csv_row_attributes_with_any_column_name_keep_their_values(tmp_path):
    """Attributes such as "age group", "class" or "2nd" reach the segments (no itertuples renaming)."""
    from pipeline.ingest import ingest

    (tmp_path / "survey.csv").write_text(
        'id,text,age group,class,2nd,_x\n'
        'a1,"We mochten het zelf invullen.",30-40,4B,ja,p\n'
        'a2,"Daar had ik geen uren voor.",50+,5A,nee,q\n', encoding="utf-8")
    got = ingest([tmp_path])
    seg = segment(got.documents, got.turns)
    assert seg["age group"].tolist() == ["30-40", "50+"]
    assert seg["class"].tolist() == ["4B", "5A"]
    assert seg["2nd"].tolist() == ["ja", "nee"]
    assert seg["_x"].tolist() == ["p", "q"]


def test_unique_across_arrow_path_is_the_pandas_path(monkeypatch, random_id_batch):
    """Random batches through unique_across: the Arrow columns path (string ids, integer
    indexes) renames, warns and remembers exactly what the pandas path does."""
    import random

    import pandas as pd

    from pipeline import segment_ids
    from pipeline.segment import SegmentIds, unique_across

    rng = random.Random(7)
    docs = ["a", "b", "a:b", "", "d:1", "x²", "S1", "t"]

    def batch():
        return random_id_batch(rng, docs)

    for dtype in ("str", object):
        for _ in range(100):
            batches = [batch().astype({C.SEGMENT_ID: dtype, C.DOC_ID: dtype})
                       for _ in range(rng.randint(1, 5))]
            results = []
            for fast in (True, False):
                if not fast:
                    monkeypatch.setattr(segment_ids._Columns, "of", classmethod(lambda c, s: None))
                taken, errors, out = SegmentIds(), [], []
                for b in batches:
                    if fast and len(b):  # membership exactly as one by one
                        found = taken._contains(segment_ids._Columns.of(b)).tolist()
                        assert found == [i in taken for i in b[C.SEGMENT_ID]]
                    seg, renames = unique_across(b.copy(), taken, errors)
                    out.append((seg[C.SEGMENT_ID].tolist(), renames))
                results.append((out, errors, taken.docs, taken.other))
                monkeypatch.undo()
            assert results[0] == results[1]
    # nullable or float indexes, categorical ids: the pandas path
    frame = pd.DataFrame({C.SEGMENT_ID: ["a:1", "b"], C.DOC_ID: ["a", "b"], C.UNIT_INDEX: [1, 2]})
    assert segment_ids._Columns.of(frame) is not None
    for other in (frame.astype({C.UNIT_INDEX: "Int64"}), frame.astype({C.UNIT_INDEX: float}),
                  frame.astype({C.SEGMENT_ID: "category"})):
        assert segment_ids._Columns.of(other) is None
