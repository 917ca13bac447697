"""Tests of pipeline.privacy (pure pseudonymisation and offset maps)."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline import privacy as P

TEXT = ("I: Hoe gaat het?\nAnja de Vries: Goed. Collega Piet en meneer De Boer van het "
        "Stedelijk Lyceum. Bel 06-12345678 of +31 6 12345678, mail anja@school.nl. "
        "Anja zei dat ook, en de Vries ook. De roos bloeit; datum 12-03-2020 om 10:30.")


def setup_key():
    key = P.PseudonymKey()
    key.add_person("Anja de Vries")
    for name in P.cue_names(TEXT):
        key.add_person(name)
    return key, P.Detector(names=list(key.persons), schools=["stedelijk  lyceum"])


def test_cue_names():
    assert P.cue_names(TEXT) == ["Piet", "De Boer"]
    assert P.cue_names("juf Marieke zei het. Mevrouw Van der Berg ook. meester en leerling") == [
        "Marieke", "Van der Berg"]
    assert P.cue_names("collega De") == []


def test_pseudonymise_replaces_everything_consistently():
    key, det = setup_key()
    new, _ = P.pseudonymise_text(TEXT, det, key)
    for leaked in ("Anja", "Vries", "Piet", "Boer", "Stedelijk", "12345678", "anja@"):
        assert leaked not in new
    assert new.startswith("I: Hoe gaat het?\nPersoon A: Goed. Collega Persoon B en meneer Persoon C "
                          "van het School A. Bel [telefoon 1] of [telefoon 1], mail email1@example.org.")
    assert "Persoon A zei dat ook, en Persoon A ook." in new
    assert "De roos bloeit; datum 12-03-2020 om 10:30." in new   # no false positives
    # a second document gets the same pseudonyms
    again, _ = P.pseudonymise_text("Anja en Piet", det, key)
    assert again == "Persoon A en Persoon B"


def test_offset_map_moves_and_snaps_spans():
    key, det = setup_key()
    new, omap = P.pseudonymise_text(TEXT, det, key)
    for word in ("Goed", "Collega", "bloeit", "10:30"):
        s = TEXT.index(word)
        ns, ne = omap.span(s, s + len(word))
        assert new[ns:ne] == word
    s = TEXT.index("Piet")
    assert new[slice(*omap.span(s, s + 4))] == "Persoon B"
    # a span starting inside a name widens to the whole pseudonym
    s = TEXT.index("de Vries:")
    assert new[slice(*omap.span(s + 3, s + 14))] == "Persoon A: Goed"
    assert omap.position(0) == 0 and omap.position(len(TEXT)) == len(new)


def test_key_rows_roundtrip_keeps_pseudonyms():
    key, det = setup_key()
    P.pseudonymise_text(TEXT, det, key)
    rows = key.rows()
    assert list(rows.columns) == P.KEY_COLUMNS
    got = dict(zip(rows["original"], rows["pseudonym"]))
    assert got["Anja de Vries"] == got["Anja"] == got["de Vries"] == "Persoon A"
    assert got["Stedelijk Lyceum"] == "School A" and got["anja@school.nl"] == "email1@example.org"
    key2 = P.PseudonymKey.from_rows(rows)
    det2 = P.Detector(names=list(key2.persons) + ["Kees"], schools=["Stedelijk Lyceum"])
    key2.add_person("Kees")
    out, _ = P.pseudonymise_text("Kees, Piet en Anja van Stedelijk Lyceum", det2, key2)
    assert out == "Persoon D, Persoon B en Persoon A van School A"


def test_role_labels_are_not_names():
    assert P.is_role_label("I") and P.is_role_label("R2") and P.is_role_label("Interviewer")
    assert P.is_role_label("Persoon B") and P.is_role_label("Coach", ["coach"])
    assert not P.is_role_label("Anja")


def test_remap_coded_tables():
    key, det = setup_key()
    new, omap = P.pseudonymise_text(TEXT, det, key)
    s1 = TEXT.index("Goed")
    e1 = TEXT.index("Anja zei")
    seg_text = TEXT[s1:e1]
    segs = pd.DataFrame([{C.SEGMENT_ID: "d:1", C.DOC_ID: "d", C.SPEAKER: "Anja de Vries",
                          C.START: s1, C.END: e1, C.CONTENT_HASH: P.content_hash(seg_text),
                          C.TEXT: seg_text}])
    p = TEXT.index("Piet")
    codings = pd.DataFrame([{C.SEGMENT_ID: "d:1", C.DOC_ID: "d", C.CODE_ID: "agency",
                             C.METHOD: "rules", C.RULE: "rule:x", C.RULES: "x",
                             C.EVIDENCE: "Collega Piet", C.START: p - 8, C.END: p + 4}])
    matches = pd.DataFrame([{C.SEGMENT_ID: "d:1", C.DOC_ID: "d", C.CODE_ID: "agency",
                             C.RULE_ID: "x", C.EVIDENCE: "Collega Piet", C.START: p - 8,
                             C.END: p + 4, C.SCORE: 1.0}])
    docs = pd.DataFrame([{C.DOC_ID: "d", C.TEXT: TEXT, C.N_CHARS: len(TEXT), "school": "Stedelijk Lyceum"}])
    reviews = pd.DataFrame([{"segment_id": "d:1", "content_hash": P.content_hash(seg_text),
                             "memo": "Piet is duidelijk"},
                            {"segment_id": "d:1", "content_hash": "0" * 16, "memo": ""}])
    out = P.remap_coded({"documents": docs, "segments": segs, "codings": codings,
                         "matches": matches, "reviews": reviews}, {"d": omap}, {"d": new}, det, key)
    seg = out["segments"].iloc[0]
    assert seg[C.TEXT] == new[seg[C.START]:seg[C.END]] and seg[C.TEXT].startswith("Goed. Collega Persoon B")
    assert seg[C.CONTENT_HASH] == P.content_hash(seg[C.TEXT]) and seg[C.SPEAKER] == "Persoon A"
    cod = out["codings"].iloc[0]
    assert new[cod[C.START]:cod[C.END]] == "Collega Persoon B" == cod[C.EVIDENCE]
    assert out["matches"].iloc[0][C.EVIDENCE] == "Collega Persoon B"
    assert out["documents"].iloc[0]["school"] == "School A"
    assert out["documents"].iloc[0][C.N_CHARS] == len(new)
    rev = out["reviews"]
    assert rev.iloc[0]["content_hash"] == seg[C.CONTENT_HASH]   # current decision follows the text
    assert rev.iloc[1]["content_hash"] == "0" * 16                # a stale one stays stale
    assert rev.iloc[0]["memo"] == "Persoon B is duidelijk"


@pytest.mark.parametrize("text,n", [("bel 020-1234567", 1), ("06 1234 5678", 1), ("in 2019 2020", 0),
                                    ("score 123", 0), ("0031 20 123 4567", 1)])
def test_phone_numbers(text, n):
    det = P.Detector(names=[])
    assert [s.kind for s in det.spans(text)] == [P.PHONE] * n


# --- names in running text (bundled given-name list) ---------------------------------

@pytest.mark.parametrize("text, expected", [
    ("R2: Mag ik? Ik ben Ruud, trouwens. Wat Eline zegt klopt.", ["Ruud", "Eline"]),
    ("We hebben het pas achteraf aan Mirjam verteld, onze schoolleider.", ["Mirjam"]),
    ("Mirjam, onze schoolleider, vond het goed.", ["Mirjam"]),          # apposition
    ("Dat hebben we samen met Jasper gedaan.", ["Jasper"]),
    ("Our science teacher, Amira, and I were on bus duty.", ["Amira"]),
    ("ik heet Mark en mijn naam is Frans", ["Mark", "Frans"]),           # strong cues: any word
    # lower case and sentence-initial words are never taken from the list
    ("we gaan naar de markt. We will see. Kris heeft gelijk.", []),
    # given names that are also ordinary words stay without strong evidence
    ("Ik was docent Frans. I think Will and May came. Ben je er? Wil je dat?", []),
    ("Een euro, Mark, ... nee. Dat is een frank.", []),
    # a surname after a given name goes with it, particles included
    ("Toen kwam Roel Jansen binnen, samen met Eline van der Berg.", ["Roel Jansen", "Eline van der Berg"]),
    ("Dat zei Anneke Van Dyck ook.", ["Anneke Van Dyck"]),
    # ... but not a function word, a place after 'in'/'op', or a second given name
    ("Toen zei Roel Maar ja. Met Eline in Zwolle en Sanne op Texel.", ["Roel", "Eline", "Sanne"]),
    ("Daar stonden Sanne Femke en ik.", ["Sanne", "Femke"]),
])
def test_text_names_realistic_sentences(text, expected):
    assert P.text_names(text) == expected


def test_first_name_list_is_bundled_and_broad():
    names = P.first_names()
    assert len(names) >= 400
    assert {"Eline", "Ruud", "Mirjam", "Sofie", "Niamh", "Siobhan", "Oliver", "Lieve"} <= names
    assert all(n[0].isupper() for n in names)


def test_coordinated_ambiguous_name_is_guarded_at_sentence_start():
    text = "Twee juffen, Sofie en An, kwamen bij mij. An important point: Anna."
    assert P.coordinated_names(text, ["Sofie"]) == ["An"]
    key = P.PseudonymKey()
    for n in ("Sofie", "An"):
        key.add_person(n)
    det = P.Detector(names=["Sofie", "An"], guarded={"An"})
    new = P.replace_all(text, det, key)
    assert new == ("Twee juffen, Persoon A en Persoon B, kwamen bij mij. "
                   "An important point: Anna.")


def test_count_kinds():
    det = P.Detector(names=["Eline"], schools=["De Horizon"])
    counts = P.count_kinds(det.spans("Eline (eline@x.nl) van De Horizon; Eline."))
    assert counts == {P.EMAIL: 1, P.PHONE: 0, P.SCHOOL: 1, P.PERSON: 2}
