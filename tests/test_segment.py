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
