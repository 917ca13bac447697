"""Content tests of codebook.yaml: it validates, and the rule coder reproduces its own examples.

For every code, each positive example (coded alone as one respondent segment) must get that
code or one of its descendants from the rule coder, and each negative example must not.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import columns as C
from pipeline.code import code_segments
from pipeline.codebook import load_codebook, validate_codebook
from pipeline.nlp import parse_segments

CODEBOOK = Path(__file__).resolve().parents[1] / "codebook.yaml"

# Examples the rules cannot be expected to get right, with the reason: (code id, text) -> reason.
XFAIL: dict[tuple[str, str], str] = {}


def _examples() -> list[tuple[str, str, str, bool]]:
    """(code id, text, lang, positive?) for every example in the codebook."""
    book = load_codebook(CODEBOOK)
    default = book.settings.default_lang
    out = []
    for code_id, code in book.codes.items():
        for positive, items in ((True, code.examples_positive), (False, code.examples_negative)):
            for text, lang in items:
                out.append((code_id, text, lang or default, positive))
    return out


# The examples are later turns of one document: its first coded unit, the respondent's
# opening turn, is weighted by settings.opening_weight (round 6), which is about where a
# turn stands, not about the words of an example.
OPENING = "Ik ben juf in groep vijf, al twaalf jaar, op een basisschool in de stad."


def _segments(texts_langs: list[tuple[str, str]]) -> pd.DataFrame:
    rows = [{C.SEGMENT_ID: "ex:open", C.DOC_ID: "ex", C.UNIT: "turn", C.UNIT_INDEX: -1,
             C.TURN: -1, C.SPEAKER: "R", C.ROLE: "respondent", C.CODED: True,
             C.START: 0, C.END: len(OPENING), C.LANG: "nl", C.TEXT: OPENING}]
    for k, (text, lang) in enumerate(texts_langs):
        rows.append({C.SEGMENT_ID: f"ex:{k}", C.DOC_ID: "ex", C.UNIT: "turn", C.UNIT_INDEX: k,
                     C.TURN: k, C.SPEAKER: "R", C.ROLE: "respondent", C.CODED: True,
                     C.START: 0, C.END: len(text), C.LANG: lang, C.TEXT: text})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def coded() -> dict[tuple[str, str], set[str]]:
    """(text, lang) -> the code ids the rule coder gives it, with all their ancestors."""
    book = load_codebook(CODEBOOK)
    keys = list(dict.fromkeys((text, lang) for _, text, lang, _ in _examples()))
    segments = _segments(keys)
    _, codings = code_segments(segments, parse_segments(segments), book)
    found: dict[str, set[str]] = {sid: set() for sid in segments[C.SEGMENT_ID]}
    for sid, code_id in zip(codings[C.SEGMENT_ID], codings[C.CODE_ID], strict=True):
        found[sid].update([code_id, *book.ancestors(code_id)])
    return {key: found[f"ex:{k}"] for k, key in enumerate(keys)}


def test_codebook_validates() -> None:
    assert validate_codebook(CODEBOOK) == []
    book = load_codebook(CODEBOOK)
    assert len(book.codes) == 33
    for code_id in book.ids():
        assert book.codes[code_id].rules, f"{code_id} has no rules"


def test_every_code_has_rules_in_both_languages() -> None:
    book = load_codebook(CODEBOOK)
    for lang in ("nl", "en"):
        with_rules = {rule.code_id for rule in book.rules(lang)}
        assert set(book.ids()) <= with_rules, f"{lang}: no rules for {set(book.ids()) - with_rules}"


def _params():
    for code_id, text, lang, positive in _examples():
        marks = []
        reason = XFAIL.get((code_id, text))
        if reason:
            marks.append(pytest.mark.xfail(reason=reason, strict=True))
        yield pytest.param(code_id, text, lang, positive, marks=marks,
                           id=f"{code_id}-{'pos' if positive else 'neg'}-{text[:40]}")


@pytest.mark.parametrize(("code_id", "text", "lang", "positive"), list(_params()))
def test_example(coded, code_id: str, text: str, lang: str, positive: bool) -> None:
    codes = coded[(text, lang)]
    if positive:
        assert code_id in codes, f"positive example of {code_id} not coded; got {sorted(codes)}"
    else:
        assert code_id not in codes, f"negative example of {code_id} was coded {code_id}"


# Decoys and cues of the cross-writer revision (round 3): invented sentences, one per concept-level
# change, so that a later edit that brings the misreading back fails here. (text, lang, code, coded?)
DECOYS: list[tuple[str, str, str, bool]] = [
    # round 6: a noun that names the context (the innovation, a role, others' expertise) does
    # not code alone; with a second cue about teachers it still does
    ("Sinds vorig jaar doen we co-teaching in groep zeven en acht.", "nl", "alignment", False),
    ("The consultant from the trust came in twice that autumn.", "en", "amo.opportunity", False),
    ("Zij heeft veel expertise in leesonderwijs, ze komt van de hogeschool.", "nl", "amo.ability", False),
    ("We started with the new report cards in September.", "en", "agency", False),
    ("By the second year it really felt like ours.", "en", "ownership", True),
    ("There was a real sense of ownership among the staff.", "en", "ownership", True),
    # the researcher's or respondent's setting is not a condition or a skill
    ("Volgens de expert is dat in veel scholen nog een open vraag.", "nl", "amo.ability", False),
    ("Zij werkt als onderzoeker aan een hogeschool in Antwerpen.", "nl", "amo.opportunity", False),
    ("He teaches at a university and met us in a café near the station.", "en", "amo.opportunity", False),
    ("Mijn lokaal is op de tweede verdieping, naast de kantine.", "nl", "amo.opportunity", False),
    ("We hebben een lokaal nodig dat groot genoeg is voor twee klassen.", "nl", "amo.opportunity", True),
    # pupils' motivation, the owner of a shop, the expert's own critical stance
    ("De motivatie van die jongens voor wiskunde blijft laag.", "nl", "amo.motivation", False),
    ("De nieuwe eigenaar van de bakkerij heeft dat geregeld.", "nl", "ownership", False),
    ("Over de planning is de expert kritisch.", "nl", "amo.motivation", False),
    # lexicon and idioms that carry the concept in other writers' words
    ("Veel collega's doen het alleen omdat het moet.", "nl", "amo.motivation", True),
    ("Niemand wist hoe je zoiets in de klas aanpakt.", "nl", "amo.ability", True),
    ("De directeur maakte elke week een middag vrij voor ons.", "nl", "amo.opportunity", True),
    ("Ze vroeg twee docenten om de werkgroep te trekken.", "nl", "shared_leadership", True),
    ("Teachers experienced it as something done to them.", "en", "ownership", True),
    ("Elke sectie werkte op haar eigen eiland, we stonden er alleen voor.", "nl", "alignment", True),
    # negation: a decision that was never taken is not the adoption phase
    ("Zo is het gegroeid, niet dat iemand dat ooit zo besloten heeft.", "nl", "phase.adoption", False),
    # round 4: families of expressions (invented sentences, not taken from any coded text)
    # agency: acting unasked, making something oneself, drained or persisting, self-doubt, identity
    ("Ze is er uit zichzelf mee begonnen in haar groep.", "nl", "agency", True),
    ("Die juf heeft zelf een nieuw formulier gemaakt voor de kleuters.", "nl", "agency", True),
    ("Nobody asked her to do it, she just kept it going for years.", "en", "agency", True),
    ("Na twee jaar waren ze er klaar mee en zijn ze afgehaakt.", "nl", "agency", True),
    ("Wie ben ik om mijn collega's te vertellen hoe ze moeten lesgeven?", "nl", "agency", True),
    ("Ik ben geen psycholoog, ik ben leraar wiskunde.", "nl", "agency", True),
    ("I'm not a social worker, I'm a science teacher.", "en", "agency", True),
    ("Het begon bij een paar leerkrachten van de bovenbouw.", "nl", "agency", True),
    ("Deelname was vrijwillig, niemand werd verplicht.", "nl", "agency", True),
    ("The teams could choose their own topic for the year.", "en", "agency", True),
    ("De uitval van studenten in het eerste jaar is gedaald.", "nl", "agency", False),
    ("Nobody had asked us, the software was simply there in September.", "en", "agency", False),
    # shared leadership: a leader who stays out of it, a leader acting without a title nearby
    ("De directeur bemoeide zich er zo min mogelijk mee: jullie zoeken het uit.", "nl", "shared_leadership", True),
    ("Onze directeur, Ellen, is nuchter. Ze heeft ervoor gezorgd dat we samen vrij waren.", "nl", "shared_leadership", True),
    ("Zij is nu de drijvende kracht achter het project in de school.", "nl", "shared_leadership", True),
    ("Our head said we could pick the theme ourselves and didn't take over.", "en", "shared_leadership", True),
    # alignment: learning from a colleague, working alone, layers not knowing each other's work
    ("Mijn buurcollega heeft mij dat geleerd, ik heb veel van haar afgekeken.", "nl", "alignment", True),
    ("We zijn gaan kijken bij een school in Gent die er al langer mee werkt.", "nl", "alignment", True),
    ("They watched each other teach and showed each other what had worked.", "en", "alignment", True),
    ("In het begin stond ik daar helemaal alleen voor.", "nl", "alignment", True),
    ("For months nobody in the leadership team knew what the department had built.", "en", "alignment", True),
    ("Niet iedereen is mee, de helft van het team kijkt nog toe.", "nl", "alignment", True),
    # ownership: whose project it is, a vote, imposed by mail; decoys: a wall's draagvlak, 'van ons' as giver
    ("Eerst was het haar project, nu dragen we het samen.", "nl", "ownership", True),
    ("Het team heeft gestemd over de nieuwe aanpak.", "nl", "ownership", True),
    ("We kregen een mail dat iedereen vanaf maandag het nieuwe systeem moest gebruiken.", "nl", "ownership", True),
    ("It felt like another thing from the board.", "en", "ownership", True),
    ("Het draagvlak van de achtergevel moest opnieuw berekend worden.", "nl", "ownership", False),
    ("Ze kreeg van ons een nieuwe laptop voor haar verjaardag.", "nl", "ownership", False),
    ("In het schoolplan staat eigenaarschap van het kind centraal.", "nl", "ownership", False),
    ("We want more student ownership of their learning.", "en", "ownership", False),
    ("Wij hebben als bestuur beslist dat alle scholen hetzelfde systeem kiezen.", "nl", "agency", False),
    ("In onze sectie bepalen we samen welke toetsen we geven.", "nl", "agency", True),
    ("Toen sloten er steeds meer collega's aan, nu doen er twaalf mee.", "nl", "alignment", True),
    ("Zij heeft toen geregeld dat we een cursus konden volgen.", "nl", "shared_leadership", True),
    ("I started here eight years ago, after moving from Leeds.", "en", "agency", False),
    ("Ik ben hier begonnen als invalkracht in groep drie.", "nl", "agency", False),
    ("Het voelt alsof ik het opeens niet meer kan met dat nieuwe systeem.", "nl", "agency", True),
    ("We hebben een gedeeld verhaal over waarom we dit doen.", "nl", "shared_leadership", False),
    ("We kregen een mail van de fotograaf over de schoolfoto's.", "nl", "ownership", False),
    ("We kregen een mail dat we vanaf maandag verplicht het nieuwe systeem moesten gebruiken.", "nl", "ownership", True),
    ("De directeur van het museum gaf ons een rondleiding.", "nl", "shared_leadership", False),
    ("Ik heb in mijn klas gewoon voor een andere aanpak gekozen.", "nl", "agency", True),
    ("We stemmen elke week samen af wat we in de lessen doen.", "nl", "alignment", True),
    ("Ik zag er eerlijk gezegd enorm tegenop.", "nl", "amo.motivation", True),
    ("Ik voelde me een robot die alleen maar de methode afwerkte.", "nl", "agency", True),
    ("We were only told afterwards.", "en", "ownership", True),
    ("Het bestuur zegt het ene, de directie het andere.", "nl", "alignment", True),
    ("De directeur hield alles strak in handen.", "nl", "shared_leadership", True),
    ("Half the staff just couldn't be bothered.", "en", "amo.motivation", True),
    ("Na dat jaar was ik echt op, ik kon niet meer.", "nl", "agency", True),
    ("The head hands over real responsibility to a team of teachers.", "en", "shared_leadership", True),
    ("Veel collega's zaten er echt niet op te wachten.", "nl", "amo.motivation", True),
    ("De werkingsmiddelen van de school zijn op.", "nl", "amo.opportunity", True),
    ("Ik pas de methode altijd een beetje aan voor mijn eigen groep.", "nl", "agency", True),
    ("Wij hebben als team besloten om het anders te doen dan de scholengroep wilde.", "nl", "agency", True),
    ("Het was niet ons plan, we moesten het gewoon uitvoeren.", "nl", "ownership", True),
    ("Binnen het team zijn we het er nog lang niet over eens.", "nl", "alignment", True),
    ("Every department does its own thing and nobody knows what the others are doing.", "en", "alignment", True),
    ("De directeur heeft een nieuwe auto gekocht.", "nl", "amo.opportunity", False),
    ("We were basically told to follow the script word for word.", "en", "agency", True),
    ("Now the staff see it as their own.", "en", "ownership", True),
    ("Senior leadership and the classroom teachers want completely different things.", "en", "alignment", True),
    ("Our deputy head always makes time to ask how it's going.", "en", "shared_leadership", True),
    ("A few of the older staff were dead set against it.", "en", "amo.motivation", True),
    # opportunity: extra work, a timetable, an HR role; decoys: a guidance service as context, buying, devices
    ("Dat is weer extra werk bovenop de lessen.", "nl", "amo.opportunity", True),
    ("Voor een leerkracht die zoiets trekt is er geen functie en geen schaal.", "nl", "amo.opportunity", True),
    ("Ze was vroeger pedagogisch begeleider voor Frans.", "nl", "amo.opportunity", False),
    ("The board chose the platform and paid for the licences.", "en", "amo.opportunity", False),
    ("Iedere leerling kreeg een laptop van school.", "nl", "amo.opportunity", False),
    # motivation: Flemish wording, seeing the value, scepticism; decoys: 'geen zin' as pointless
    ("Ik had er echt goesting in, het was plezant om te doen.", "nl", "amo.motivation", True),
    ("Daar gaan we weer, dacht ik, over een jaar ligt het in een la.", "nl", "amo.motivation", True),
    ("They complied on paper but kept teaching much as before.", "en", "amo.motivation", True),
    ("Anders heeft dit gesprek geen zin.", "nl", "amo.motivation", False),
    # ability: being good at something, knowing nothing about it
    ("Van programmeren wist ik niks, zij is daar veel beter in dan ik.", "nl", "amo.ability", True),
    # round 5 (five writers): a lone medium cue no longer codes (threshold 0.55); role and document
    # nouns are weak; generic leader verbs need a leader in the turn; families of everyday wording
    ("Ik werk als coach op een middelbare school in Gent.", "nl", "amo.ability", False),
    ("I work as a coach, and the rest of my timetable is coaching.", "en", "amo.ability", False),
    ("Onze onderwijsvisie hangt in de gang bij de ingang.", "nl", "alignment", False),
    ("We moeten die spullen straks nog meenemen naar de gymzaal.", "nl", "alignment", False),
    ("Hij coacht het voetbalteam van zijn zoon op zaterdag.", "nl", "shared_leadership", False),
    ("De directeur coacht ons en denkt mee als we vastlopen.", "nl", "shared_leadership", True),
    ("Met het lerarentekort staan er nu twee vacatures open die niemand invult.", "nl", "amo.opportunity", True),
    ("Staff turnover means we start again every September.", "en", "amo.opportunity", True),
    ("Ik zit elke zondagavond lessen voor te bereiden.", "nl", "amo.opportunity", True),
    ("We spend our weekends marking and planning.", "en", "amo.opportunity", True),
    ("Ik heb die nacht 's avonds liggen piekeren.", "nl", "amo.opportunity", False),
    ("De rector is bij ons overleg komen zitten en heeft alleen maar geluisterd.", "nl", "shared_leadership", True),
    ("The head never took it over; she let us decide and took the flak from parents.", "en", "shared_leadership", True),
    ("Een paar informele leiders in het team trekken de rest mee.", "nl", "shared_leadership", True),
    ("A few informal leaders without a formal role carried it.", "en", "shared_leadership", True),
    ("Die nieuwe regel viel heel slecht in de leraarskamer.", "nl", "amo.motivation", True),
    ("The new marking policy went down badly with staff.", "en", "amo.motivation", True),
    ("Dat hebben we gewoon gedaan zonder iemand iets te vragen.", "nl", "agency", True),
    ("We ran it for a term without asking anyone.", "en", "agency", True),
    ("In het tweede jaar had ik een dip, ik sliep slecht.", "nl", "agency", True),
    ("By February everyone was knackered, but the good lessons keep you going.", "en", "agency", True),
    ("Onze leerlingen zien op de studiedag een presentatie over het nieuwe rapport.", "nl", "amo.ability", False),
    ("De directeur had op een congres iets gezien over thematisch werken.", "nl", "amo.ability", False),
    ("Ik geef fysica en een paar uur STEM in de tweede graad.", "nl", "ownership", False),
    ("Het bestuur van de stichting telt veertien scholen in de regio.", "nl", "alignment", False),
    ("I did my teacher training in Leeds before moving here.", "en", "amo.ability", False),
    ("Het nieuwe plan kwam van boven.", "nl", "ownership", False),
    ("Ik was daar nogal ambetant van, eerlijk gezegd.", "nl", "amo.motivation", True),
    ("De directeur bleef aan de zijkant, en toen we een blok vroegen heeft hij dat geregeld.", "nl", "shared_leadership", True),
    ("A couple of the younger teachers really took it on.", "en", "shared_leadership", True),
    ("Onze directeur kwam heel enthousiast terug van dat bezoek.", "nl", "amo.motivation", False),
    ("De collega's waren enthousiast en hadden er echt zin in.", "nl", "amo.motivation", True),
]


@pytest.fixture(scope="module")
def coded_decoys() -> list[set[str]]:
    book = load_codebook(CODEBOOK)
    segments = _segments([(text, lang) for text, lang, _, _ in DECOYS])
    _, codings = code_segments(segments, parse_segments(segments), book)
    found: dict[str, set[str]] = {sid: set() for sid in segments[C.SEGMENT_ID]}
    for sid, code_id in zip(codings[C.SEGMENT_ID], codings[C.CODE_ID], strict=True):
        found[sid].update([code_id, *book.ancestors(code_id)])
    return [found[f"ex:{k}"] for k in range(len(DECOYS))]


@pytest.mark.parametrize("k", range(len(DECOYS)), ids=[f"{d[2]}-{d[0][:40]}" for d in DECOYS])
def test_decoy(coded_decoys, k: int) -> None:
    text, _, code_id, expected = DECOYS[k]
    codes = coded_decoys[k]
    assert (code_id in codes) == expected, f"{text!r}: expected {code_id} {expected}; got {sorted(codes)}"


def test_vocab_lists_are_used() -> None:
    """Every shared vocabulary list has both languages and is referenced by at least one rule."""
    import yaml
    raw = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    text = CODEBOOK.read_text(encoding="utf-8")
    for name, langs in raw["vocab"].items():
        assert set(langs) == {"nl", "en"}, name
        assert f'"@{name}"' in text or f"@{name}" in text.split("\ncodes:\n", 1)[1], f"@{name} unused"
