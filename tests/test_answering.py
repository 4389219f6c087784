"""Small pure functions of the answerer: what a question asks for, where a date or a figure stands in a sentence,
spelling-insensitive word matching and its weights, sentence-level reranking, and the refusal threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.answering.questions import (
    AnswerKind,
    analyse,
    another_year,
    answers_amount,
    asks_for_money,
    describes_a_name,
    fits_kind,
    is_money,
    is_proper_name,
    typed_spans,
)
from rag.answering.spans import MARGIN_ONLY, SPAN_FEATURES, span_features
from rag.answering.terms import missing_share, term_coverage, term_keys, term_weights, text_keys
from rag.evaluation import calibrate_threshold, refusal_tradeoff, refused_at
from rag.retrieval import W_RERANK_LEXICAL, RetrievedPassage, rerank
from rag.spelling import fold
from rag.store import StoredSentence


def spans_of(sentence: str, kind: AnswerKind) -> list[str]:
    return [sentence[start:end] for start, end in typed_spans(sentence, kind)]


# --- analyse: the kind of answer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question,kind",
    [
        ("When did Mosul fall?", "date"),
        ("when was raqa taken", "date"),
        ("On what date was Raqqah captured?", "date"),
        ("How many people have been liberated?", "number"),
        ("how much did profits rise", "number"),
        ("What percentage of its territory has IS lost?", "percent"),
        ("How long did the battle last?", "duration"),
        ("how fast can the robot run now", "number"),
        ("What portion of the country did the group hold?", "percent"),
        ("territory lost %", "percent"),
        ("whats doria's second biggest city", "place"),
        ("what is the population of the city", "other"),  # the place noun only says whose population
        ("how soon will the plant open", "date"),
        ("album release date", "date"),
        ("mosul fall date", "date"),
        ("How many days did it take to liberate Hawija?", "duration"),
        ("Who is the spokesman for the Syrian army?", "person"),
        # Asked what someone is, not for a name: the reader finds the description ("the U.S. envoy ...").
        ("who is brett mcgurk", "other"),
        ("Who's Gen. Joseph Dunford?", "other"),
        ("who was haider al-abadi", "other"),
        ("who is snow patrol's new bassist", "person"),
        ("who is directing casino royale", "person"),
        ("and who is she", "person"),
        ("who is the pm", "person"),
        ("Where is Qaim?", "place"),
        ("which company bought the firm", "organization"),
        ("What did the Syrian army spokesman call the capture?", "other"),
        ("Why did foreign fighters go to Raqqa?", "open"),
        ("how did the group lose the city", "open"),
        ("What happened in Mosul after July 10?", "open"),
        ("tell me about hawija", "open"),
        ("and what did mcgurk say about it", "open"),
        ("list the towns the group lost", "open"),
        ("compare the two reports", "open"),
        ("summarise the profits story", "open"),
        ("the strike last winter what happened", "open"),
        ("whats the novel about", "open"),
        ("What is the report about?", "open"),
        ("what was different about the second vote", "open"),
        ("who is the book about", "person"),
        ("whats different about the second vote", "open"),
        ("hows the coach kept the players fresh", "open"),
        ("Who's the spokesman?", "person"),
        # Asked yes or no: the sentences that tell it answer.
        ("could the rebels come back the way they did in 2009", "open"),
        ("Is the plant still open?", "open"),
        ("and did the army keep the bridge", "open"),
        ("were the tests high-voltage or low-voltage", "other"),  # a choice, which a span answers
        ("is it true that 20 or more died", "open"),
        ("does the article say who leads the group", "person"),  # asks who, not yes or no
        ("did they say how many soldiers died", "number"),
        # Two things set against each other: what each side's sentences say.
        ("raqqa vs doria, which one fell first", "open"),
        ("when did the offensive start, ap vs reuters", "open"),
        ("who won the doria vs ruvia final", "person"),  # a question word of its own asks of the pair
        # Things counted, named in a few words: a span; reasons are told in sentences.
        ("what are the two words the court may answer with", "other"),
        ("what were the three reasons for the strike", "open"),
        ("what are the towns the rebels hold", "open"),
        ("when was the doria vs. ruvia match", "date"),
    ],
)
def test_analyse_finds_the_kind_of_answer(question: str, kind: str) -> None:
    assert analyse(question).kind == kind
    assert analyse(question).open == (kind == "open")


@pytest.mark.parametrize("question,described", [("who is brett mcgurk", True), ("Who's Gen. Joseph Dunford?", True),
                                                ("who is the spokesman", False), ("who is he", False)])
def test_the_rules_leave_a_question_for_a_description_untyped(question: str, described: bool) -> None:
    from rag.answering.rule_forms import analyse as rule_form

    # So the default hands it to the reader, which finds the description; the rules look for a name.
    assert rule_form(question).kind == ("other" if described else "person")


def test_a_question_asking_roughly_takes_an_order_of_magnitude() -> None:
    assert analyse("roughly how many fighters surrendered").rough
    assert not analyse("how many fighters surrendered").rough


def test_terms_and_names_of_a_question() -> None:
    form = analyse("When did Kurdish-led forces take Raqqa?")
    assert form.terms == ("kurdish", "led", "forces", "take", "raqqa")
    assert form.names == ("kurdish", "led", "raqqa")
    assert analyse("tell me about hawija").terms == ("hawija",)
    assert analyse("when did mosul fall").names == ()
    # A question word typed with "is" run into it is no content word; a possessive goes, an O' name stays.
    assert analyse("whats o'sullivan's plan").terms == ("sullivan", "plan")


@pytest.mark.parametrize("question,names", [
    ("When did the Doria militia take Ruvia?", ("doria", "ruvia")),
    ("WHEN DID THE DORIA MILITIA TAKE RUVIA?", ()),  # typed in capitals: they mark nothing
    ("When Did the Doria Militia Take Ruvia?", ()),  # a title: "Take" is no name
    ("Who wrote Rise of the Robots?", ("rise", "robots")),
    ("Purpose of Telnet", ("telnet",)),  # one capitalised word is no title
    ("Karsh Works vs Doria Group", ("works", "doria", "group")),  # keywords: no verb capitalised as in a title
    ('When Did "Doria" Fall?', ()),
    ("When did the UN enter Ruvia?", ("un", "ruvia")),
])
def test_capitals_mark_names_unless_every_word_has_them(question: str, names: tuple[str, ...]) -> None:
    from rag.answering.rule_forms import analyse as rule_form

    assert analyse(question).names == names
    assert rule_form(question).names == names


# --- answer_spans: dates, numbers, percentages, durations ----------------------------------------------------------

RAQQA = ("Raqqa, the IS group’s de-facto capital, fell to Kurdish-led forces on Oct. 17, four months after "
         "operations to reclaim it began.")
MOSUL = "Iraqi forces declared victory in Mosul on July 10."
TAL_AFAR = "The town was liberated by coalition-backed Iraqi forces Aug. 30, ending the IS presence in northern Iraq."
FRIDAY = ("With new losses Friday, the Islamic State group has been driven from more than 96 percent of the large "
          "parts of Iraq and Syria it once held.")
MCGURK = ("He earlier said 6.6 million people have been liberated as the group lost over 90,000 square kilometers "
          "in the last year.")
FIGHTERS = ("The U.S.-led coalition estimated that 40,000 fighters from Europe, North Africa and Asia once flowed "
            "into IS territory.")
DEIR = ("The Syrian government declared Friday that it has taken full control of Deir el-Zour, where its troops and "
        "tens of thousands of civilians have been besieged by IS militants for nearly three years.")
HAWIJA = ("Iraqi forces fought alongside the Kurdish peshmerga to retake the city in oil-rich Kirkuk province on "
          "Oct. 10.")
QAIM = "Iraqi Prime Minister Haider al-Abadi proclaimed victory in retaking the town of Qaim on the border."
MAYHOUB = "Gen. Ali Mayhoub, spokesman for the Syrian army, called it a strategic victory."


@pytest.mark.parametrize(
    "sentence,expected",
    [
        (RAQQA, "Oct. 17"),
        (MOSUL, "July 10"),
        (TAL_AFAR, "Aug. 30"),
        (FRIDAY, "Friday"),
        ("Three years ago, in 2014, they had defiantly erased that line.", "in 2014"),
        ("Operations began there in the last week of October.", "the last week of October"),
    ],
)
def test_date_spans(sentence: str, expected: str) -> None:
    assert expected in spans_of(sentence, "date")


def test_date_spans_are_only_dates() -> None:
    assert spans_of(RAQQA, "date") == ["Oct. 17"]
    assert spans_of("The militants pulled back a few days after the battle began.", "date") == []


def test_month_and_year_is_one_date() -> None:
    assert spans_of("It had been under IS control since July of 2014.", "date") == ["July of 2014"]
    assert spans_of("Mosul fell in early July 2017.", "date") == ["early July 2017"]
    assert spans_of("On Oct. 14, 2017, the town fell.", "date") == ["Oct. 14, 2017"]


@pytest.mark.parametrize("sentence,expected", [("The group seized Mosul in June 2014.", "June 2014"),
                                               ("It fell in July 2014 to IS.", "July 2014")])
def test_a_month_and_year_is_not_a_day_of_the_month(sentence: str, expected: str) -> None:
    """BUG: in ``PATTERNS["date"]`` the alternative "month day" ("June" then one or two digits) comes first and has no
    word boundary after the day, so in "June 2014" it takes the first two digits of the year as a day: the span is
    "June 20", and a "when" question would be answered with a wrong date."""
    assert spans_of(sentence, "date") == [expected]


@pytest.mark.parametrize("sentence,expected", [(MCGURK, "6.6 million"), (FIGHTERS, "40,000"), (MCGURK, "over 90,000")])
def test_number_spans(sentence: str, expected: str) -> None:
    assert expected in spans_of(sentence, "number")


def test_a_year_is_not_a_count() -> None:
    sentence = "Thousands of fighters fled in 2015, and 300 stayed."
    numbers = spans_of(sentence, "number")
    assert "300" in numbers
    assert not any("2015" in span for span in numbers)


def test_a_number_word_opening_a_compound_is_not_a_count() -> None:
    sentence = "One-off gains of 8 mln dlrs lifted a one-time loser in a two-day sale to three buyers."
    assert spans_of(sentence, "number") == ["8 mln", "three"]
    assert spans_of("It signed a thirty-five-year lease.", "number") == []
    assert spans_of(sentence, "duration") == ["two-day"]


def test_a_date_is_not_a_count() -> None:
    assert not any("17" in span for span in spans_of(RAQQA, "number"))


def test_a_duration_is_a_duration() -> None:
    assert spans_of(RAQQA, "duration") == ["four months"]


@pytest.mark.parametrize(
    "sentence,expected",
    [
        (FRIDAY, "more than 96 percent"),
        ("Over 96% of the territory was retaken.", "Over 96%"),
        ("The group controlled nearly a third of Iraqi territory.", "nearly a third"),
        ("Government forces have retaken 95 per cent of the city.", "95 per cent"),
    ],
)
def test_percent_spans(sentence: str, expected: str) -> None:
    assert expected in spans_of(sentence, "percent")


def test_96_percent_is_found_whatever_its_qualifier() -> None:
    assert spans_of("IS lost 96 percent of its land.", "percent") == ["96 percent"]
    assert spans_of("IS lost nearly 96 percent of its land.", "percent") == ["nearly 96 percent"]


@pytest.mark.parametrize("question,text,other", [
    ("How much did it lose in 1996?", "It lost 14 mln marks in 1995.", True),
    ("How much did it lose in 1996?", "It lost 14 mln marks in 1995 and 20 mln in 1996.", False),
    ("How much did it lose?", "It lost 14 mln marks in 1995.", False),
    ("How much did it lose in 1996?", "It lost 14 mln marks.", False),
    # Dated by when it was written: "this year" may be the year asked about.
    ("What will it earn in 1997?", "It will earn 8 bln dlrs this year, from 7.5 bln in 1996.", False),
    ("profit 2004", "Profit rose to 5 mln from 4 mln year-earlier, and 3 mln in 2002.", False),
    ("How much did it earn in 1996?", "Profit was 5 mln for the prior year, and sales 3 mln in 1995.", False),
    # A season or a fiscal year names both years, or the one asked.
    ("How much did it lose in 1996?", "It lost 5 mln dlrs in 1995-96.", False),
    ("How much did it lose in 1997?", "It lost 5 mln dlrs in 1996/97.", False),
    ("How much did it earn in 1996?", "FY1996 profit was 5 mln, up from 4 mln in 1995.", False),
    # Not the year of the answer: a year naming a thing, a count.
    ("When did the 1996 tax law take effect?", "It took effect on Jan. 1, 1997.", False),
    ("How many of its 1800 workers were laid off?", "It cut 300 jobs in 1995.", False),
    # Nor a year in the text: a decade, part of a larger number.
    ("How much did it earn in 1996?", "Earnings doubled in the 1990s, to 2,004 mln.", False),
])
def test_a_text_for_another_year(question: str, text: str, other: bool) -> None:
    assert another_year(question, "number", text) == other


def test_a_name_may_hold_for_another_year() -> None:
    text = "In the spring of 1975, Jo Quist became president of the network."
    assert not another_year("Who was the president of the network in 1976?", "person", text)
    assert another_year("When did the network's president take office in 1976?", "date", text)


# Wire copy (Reuters) writes amounts in abbreviations: a share in "pct", millions in "mln", billions in "bln".
WIRE = "Ruvia Steel owns 41 pct of the mill, which lost some 17 mln marks in 1995; sales fell to 4.5 bln dlrs."


def test_wire_copy_amounts_are_amounts() -> None:
    assert spans_of(WIRE, "percent") == ["41 pct"]
    assert spans_of(WIRE, "number") == ["41 pct", "some 17 mln", "4.5 bln"]
    assert fits_kind("7.3 pct", "percent")
    assert not spans_of("The Pct. Co. and 5 pctx of it", "percent")


def test_a_share_in_pct_does_not_answer_how_many() -> None:
    from rag.answering.rule_forms import analyse as rule_form
    from rag.answering.rule_forms import answer_spans_for

    def spans(question: str) -> list[str]:
        return [WIRE[start:end] for start, end in answer_spans_for(WIRE, rule_form(question))]

    assert spans("how many did it lose") == ["some 17 mln", "4.5 bln"]
    assert "41 pct" in spans("by how much did the steel firm's stake rise")


@pytest.mark.parametrize("sentence,expected", [(RAQQA, "four months"), (DEIR, "nearly three years"),
                                               ("It took 20 days to liberate Hawija.", "20 days")])
def test_duration_spans(sentence: str, expected: str) -> None:
    assert expected in spans_of(sentence, "duration")


def test_other_and_open_questions_have_no_typed_spans() -> None:
    assert typed_spans(RAQQA, "other") == []
    assert typed_spans(RAQQA, "open") == []
    assert typed_spans(RAQQA, "person") == []


# --- fold, term weights, coverage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [("Mayadeen", "Mayadin"), ("Raqqa", "Raqqah"), ("Ezzor", "Zour"),
                                 ("Qaim", "qaim"), ("Hawija", "Hawijah")])
def test_fold_maps_spelling_variants_to_one_key(a: str, b: str) -> None:
    assert fold(a) == fold(b)


def test_fold_examples_from_its_docstring() -> None:
    assert fold("Mohammed") == fold("Muhammad") == "mhmd"
    assert fold("Hannah") == fold("Hana") == "hn"
    assert fold("Bennett") == fold("Benet") == "bnt"


@pytest.mark.parametrize("a,b", [("Mosul", "Raqqa"), ("Hawija", "Mosul"), ("Qaim", "Raqqa")])
def test_fold_keeps_different_places_apart(a: str, b: str) -> None:
    assert fold(a) != fold(b)


def test_spelling_variants_share_a_term_key() -> None:
    assert term_keys("raqqah") & text_keys("Raqqa fell on Oct. 17.")
    assert term_keys("mayadin") & text_keys("the town of Mayadeen")
    assert not term_keys("mosul") & text_keys("Raqqa fell on Oct. 17.")


def test_a_name_run_together_matches_its_words_typed_apart() -> None:
    keys = text_keys("Profits at KarshWorks jumped 76%.")
    assert term_keys("karsh") & keys and term_keys("works") & keys and term_keys("karshworks") & keys
    assert missing_share(["karsh", "works"], keys) == 0.0
    assert not term_keys("works") & text_keys("Profits at Karshworks jumped.")  # one word, not two run together


SENTENCES = [
    "Hawija fell on Oct. 10.",
    "The Islamic State lost Mosul.",
    "The Islamic State lost Raqqa.",
    "The Islamic State lost Qaim.",
]


def test_a_rare_term_weighs_more_than_a_common_one() -> None:
    texts = [text_keys(sentence) for sentence in SENTENCES]
    weights = term_weights(["hawija", "islamic", "boukamal"], texts)
    assert weights["hawija"] == pytest.approx(math.log(3.5 / 1.5))  # BM25 idf: 1 of 4 sentences
    assert weights["islamic"] == pytest.approx(0.05)  # 3 of 4: negative idf, floored
    assert weights["hawija"] > weights["islamic"] > 0
    assert weights["boukamal"] == 0.0  # nobody holds it: it cannot tell sentences apart


def test_term_weights_count_a_term_once_and_match_spellings() -> None:
    texts = [text_keys(sentence) for sentence in SENTENCES]
    weights = term_weights(["raqqah", "raqqah", "mosul"], texts)
    assert list(weights) == ["raqqah", "mosul"]
    assert weights["raqqah"] == pytest.approx(weights["mosul"]) == pytest.approx(math.log(3.5 / 1.5))
    assert term_weights([], texts) == {}
    assert term_weights(["hawija"], []) == {"hawija": 0.0}


def test_term_coverage_is_the_weighted_share_of_terms_found() -> None:
    texts = [text_keys(sentence) for sentence in SENTENCES]
    weights = term_weights(["hawija", "islamic", "boukamal"], texts)
    total = weights["hawija"] + weights["islamic"]
    assert term_coverage(weights, texts[0]) == pytest.approx(weights["hawija"] / total)
    assert term_coverage(weights, texts[1]) == pytest.approx(weights["islamic"] / total)
    assert term_coverage(weights, frozenset().union(*texts)) == pytest.approx(1.0)
    assert term_coverage(weights, frozenset()) == 0.0
    for keys in texts:
        assert 0.0 <= term_coverage(weights, keys) <= 1.0


def test_term_coverage_without_any_weight_is_zero() -> None:
    assert term_coverage({}, text_keys("anything")) == 0.0
    assert term_coverage({"boukamal": 0.0}, text_keys("Boukamal")) == 0.0


def test_missing_share() -> None:
    keys = text_keys("Raqqah fell to Kurdish-led forces.")
    assert missing_share(["raqqa", "boukamal"], keys) == 0.5
    assert missing_share(["raqqa"], keys) == 0.0
    assert missing_share(["boukamal", "hawija"], keys) == 1.0
    assert missing_share([], keys) == 0.0


# --- rerank ---------------------------------------------------------------------------------------------------------


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def passage(pid: str, text: str = "One. Two.", *, dense: float | None = 0.5, lexical: float | None = None,
            score: float = 0.01) -> RetrievedPassage:
    ranks = {"dense": 1} if dense is not None else {}
    return RetrievedPassage(pid, text, {"start": 100, "end": 100 + len(text), "article_id": "a.txt"}, score,
                            dense, lexical, ranks)


def sentences(pid: str, *vectors: np.ndarray) -> list[StoredSentence]:
    return [StoredSentence(pid, 100 + 5 * i, 104 + 5 * i, vector) for i, vector in enumerate(vectors)]


QUERY = unit(1, 0, 0)


def test_rerank_puts_the_passage_with_the_closest_sentence_first() -> None:
    # "far" has the better whole-passage similarity, but "near" holds the sentence closest to the question.
    far, near = passage("far", dense=0.9), passage("near", dense=0.2)
    stored = {"far": sentences("far", unit(0.6, 0.8, 0), unit(0.5, 0, 1)),
              "near": sentences("near", unit(0, 1, 0), unit(0.8, 0.6, 0))}
    ranked = rerank([far, near], stored, QUERY)
    assert [p.id for p in ranked] == ["near", "far"]
    assert ranked[0].score == pytest.approx(0.8)
    assert ranked[1].score == pytest.approx(0.6)


def test_rerank_adds_half_the_relative_bm25_score() -> None:
    a, b = passage("a", lexical=10.0), passage("b", lexical=2.0)
    stored = {"a": sentences("a", unit(0.6, 0.8, 0)), "b": sentences("b", unit(0.8, 0.6, 0))}
    ranked = rerank([b, a], stored, QUERY)
    scores = {p.id: p.score for p in ranked}
    assert W_RERANK_LEXICAL == 0.5
    assert scores["a"] == pytest.approx(0.6 + 0.5 * 10 / 10)
    assert scores["b"] == pytest.approx(0.8 + 0.5 * 2 / 10)
    assert [p.id for p in ranked] == ["a", "b"]  # BM25 outweighs the sentence similarity here


def test_rerank_without_bm25_scores_is_sentence_similarity_alone() -> None:
    a, b = passage("a", lexical=None), passage("b", lexical=None)
    stored = {"a": sentences("a", unit(0.6, 0.8, 0)), "b": sentences("b", unit(1, 0, 0))}
    ranked = rerank([a, b], stored, QUERY)
    assert [(p.id, round(p.score, 6)) for p in ranked] == [("b", 1.0), ("a", 0.6)]


def test_rerank_attaches_sentences_and_keeps_the_rest() -> None:
    a = passage("a", lexical=3.0)
    stored = {"a": sentences("a", unit(0, 1, 0), unit(1, 1, 0))}
    [ranked] = rerank([a], stored, QUERY)
    assert ranked.sentences == stored["a"]
    assert (ranked.id, ranked.text, ranked.metadata, ranked.dense, ranked.lexical, ranked.ranks) == (
        a.id, a.text, a.metadata, a.dense, a.lexical, a.ranks)
    assert a.sentences == [] and a.score == 0.01  # the input is not changed


def test_a_passage_without_stored_sentences_falls_back_to_its_dense_score() -> None:
    with_sentences, without = passage("with", dense=0.1), passage("without", dense=0.7)
    ranked = rerank([with_sentences, without], {"with": sentences("with", unit(1, 2, 0))}, QUERY)
    assert [p.id for p in ranked] == ["without", "with"]
    assert ranked[0].score == pytest.approx(0.7) and ranked[0].sentences == []
    # Neither sentences nor a dense score: only BM25 is left.
    lexical_only = passage("lex", dense=None, lexical=4.0)
    assert rerank([lexical_only], {}, QUERY)[0].score == pytest.approx(0.5)


def test_rerank_of_nothing() -> None:
    assert rerank([], {}, QUERY) == []


# --- calibrate_threshold --------------------------------------------------------------------------------------------


def test_separable_scores_give_a_threshold_between_them() -> None:
    answerable, unanswerable = [0.8, 0.9, 1.4], [0.1, 0.2, 0.3]
    threshold = calibrate_threshold(answerable, unanswerable)
    assert max(unanswerable) < threshold < min(answerable)
    assert threshold == pytest.approx((0.3 + 0.8) / 2)


def test_ties_take_the_middle_of_the_widest_gap() -> None:
    # Thresholds 0.3 and 0.75 both reach balanced accuracy 0.75; the gap 0.1..0.5 is wider than 0.6..0.9.
    threshold = calibrate_threshold([0.5, 0.9], [0.1, 0.6])
    assert threshold == pytest.approx(0.3)
    # Now the upper gap (0.6..1.2) is the wider one.
    assert calibrate_threshold([0.5, 1.2], [0.1, 0.6]) == pytest.approx(0.9)


def test_the_threshold_maximises_balanced_accuracy() -> None:
    # One unanswerable score among the answerable ones: refusing it would cost two answerable questions.
    answerable, unanswerable = [1.0, 1.1, 1.2, 2.0], [0.2, 0.3, 1.15]
    threshold = calibrate_threshold(answerable, unanswerable)
    assert 0.3 < threshold <= 1.0


def test_only_one_kind_of_score() -> None:
    assert calibrate_threshold([0.5, 0.7], []) <= 0.5  # nothing to refuse: answer everything
    assert calibrate_threshold([], [0.5, 0.7]) > 0.7  # nothing answerable: refuse everything


def test_no_scores_at_all() -> None:
    with pytest.raises(ValueError):
        calibrate_threshold([], [])
    assert refusal_tradeoff([], []) == []


def test_the_tradeoff_runs_from_refusing_nothing_to_refusing_everything() -> None:
    points = refusal_tradeoff([0.5, 0.9], [0.1, 0.6])
    assert [(p.false_rate, p.refused) for p in points] == [(0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1)]
    assert [p.threshold for p in points] == pytest.approx([0.1 - 1e-6, 0.3, 0.55, 0.75, 0.9 + 1e-6])


def test_refused_at_a_false_rate_reads_the_ranking_not_the_threshold() -> None:
    answerable, unanswerable = [1.0, 1.1, 1.2, 2.0], [0.2, 0.3, 1.15]
    assert refused_at(answerable, unanswerable, 0.0) == pytest.approx(2 / 3)
    assert refused_at(answerable, unanswerable, 0.25) == pytest.approx(2 / 3)  # the 1.15 needs two of four refused
    assert refused_at(answerable, unanswerable, 0.5) == 1.0
    # Shifting every score (another threshold would be shipped) changes nothing.
    assert refused_at([s + 3 for s in answerable], [s + 3 for s in unanswerable], 0.0) == pytest.approx(2 / 3)


def test_span_features_say_what_the_question_already_holds_and_the_kind_asked_for() -> None:
    form = analyse("When did the Islamic State lose Raqqa?")
    keys = text_keys("When did the Islamic State lose Raqqa?")
    date = dict(zip(SPAN_FEATURES, span_features(form, keys, 4.0, 9.0, 5.0, 1.5, 0, "Oct. 17"), strict=True))
    echo = dict(zip(SPAN_FEATURES, span_features(form, keys, 6.0, 9.0, 3.0, 1.5, 2, "the Islamic State's fighters"),
                    strict=True))
    assert date["typed_match"] == 1.0 and echo["typed_match"] == 0.0
    assert date["in_question"] == 0.0 and echo["in_question"] == pytest.approx(2 / 3)
    assert (date["margin"], date["read_rank"], echo["read_rank"]) == (4.0, 0.0, 2.0)
    assert span_features(form, keys, -99.0, 0.0, 0.0, 0.0, 0, "")[SPAN_FEATURES.index("margin")] == -20.0


def test_the_untrained_selector_is_the_readers_margin() -> None:
    form = analyse("who won")
    rows = [span_features(form, frozenset(), margin, 1.0, 0.0, 0.0, rank, "x") for rank, margin in enumerate((1, 3))]
    assert [MARGIN_ONLY.score(row) for row in rows] == [1.0, 3.0]


@pytest.mark.parametrize(
    ("answer", "kind", "fits"),
    [
        ("Oct. 17", "date", True),
        ("the city", "date", False),
        ("6.6 million", "number", True),
        ("The militants", "number", False),
        ("Kurdish-led forces", "organization", True),
        ("foreign fighters", "person", False),
        ("He passed away", "person", False),
        ("a strategic victory", "other", True),
    ],
)
def test_an_answer_fits_the_kind_asked_for(answer: str, kind: AnswerKind, fits: bool) -> None:
    assert fits_kind(answer, kind) == fits


@pytest.mark.parametrize("question", ["how many foreign fighters went to isis", "How many fighters flowed into IS?",
                                      "how many fighters were there", "number of fighters who came",
                                      "what was the number of fighters that came",
                                      "how many fighters came after a number of strikes were launched"])
def test_a_count_is_of_what_the_question_counts(question: str) -> None:
    from rag.answering.rule_forms import analyse as rule_form
    from rag.answering.rule_forms import answer_spans_for

    sentence = "Strikes destroyed two fighting positions; 40,000 fighters from Europe once came."
    spans = [sentence[start:end] for start, end in answer_spans_for(sentence, rule_form(question))]
    # Stems, not five-letter prefixes: "fighting" is not "fighters".
    assert spans == ["40,000"]


@pytest.mark.parametrize("question,area", [("sq miles lost by the rebels", "35,000"),
                                           ("square kilometres the rebels lost", "90,000"),
                                           ("sq km lost by the rebels", "90,000")])  # however the unit is written
def test_an_area_asked_for_is_in_the_unit_asked(question: str, area: str) -> None:
    from rag.answering.rule_forms import analyse as rule_form
    from rag.answering.rule_forms import answer_spans_for

    sentence = "The rebels lost 90,000 square kilometres (35,000 square miles) and 6.6 million people."
    spans = [sentence[start:end] for start, end in answer_spans_for(sentence, rule_form(question))]
    assert spans == [area]


TEXTS = ["The PKK, or Kurdistan Workers Party (PKK), is a US-listed group.",
         "The winners were named; the pkk list grew.",
         "Popular Mobilization Forces backed the army. Ten winners were named; the Winners' Cup is later."]


@pytest.mark.parametrize("question,described", [
    ("who is bill roggio", True),
    ("who are the pkk", True),  # written "PKK" twice, "pkk" once
    ("who are the popular mobilisation forces", True),
    ("who are the winners", False),  # "winners" twice, "Winners'" once
    ("who are the peshmerga", False),  # not in the texts at all
    ("who is the spokesman for the army", False),
])
def test_a_question_for_what_a_name_is_reads_the_texts_for_whether_it_is_a_name(question: str,
                                                                               described: bool) -> None:
    assert describes_a_name(question, TEXTS) == described


@pytest.mark.parametrize("sentence,dates", [
    ("Unrest peaked in the late 1960s and again in the 1990s.", ["late 1960s", "1990s"]),
    ("The term spread in the 18th century and the sixteenth century.", ["18th century", "sixteenth century"]),
    # Less precise than the day a sentence beside it may give, or naming a thing: not dates of their own.
    ("The book comes out next July, a week ago, last month.", []),
    ("He plays in a 1980s police drama set in 18th-century houses.", []),
])
def test_a_decade_or_a_century_is_a_date(sentence: str, dates: list[str]) -> None:
    assert [sentence[start:end] for start, end in typed_spans(sentence, "date")] == dates


@pytest.mark.parametrize("sentence,numbers", [("In the 1990s it cost 4 dlrs.", ["4"]),
                                              ("In the 1960s, 1970s and the 19th century: 4 wars.", ["4"])])
def test_a_decade_or_a_century_is_no_amount(sentence: str, numbers: list[str]) -> None:
    assert [sentence[start:end] for start, end in typed_spans(sentence, "number")] == numbers


@pytest.mark.parametrize("answer", ["1960s", "late 1960s", "14th century"])
def test_a_decade_or_a_century_answers_when(answer: str) -> None:
    assert fits_kind(answer, "date")


def test_the_rules_know_the_noun_a_date_is_asked_by() -> None:
    from rag.answering.rule_forms import analyse as rule_form

    assert [rule_form(question).noun for question in ("in what year did it open", "on which day did it fall",
                                                      "when did it fall")] == ["year", "day", None]


@pytest.mark.parametrize("sentence,durations", [("The 25-year-old was banned for two years.", ["two years"]),
                                                ("A 50-year-old MP since 1997.", []),
                                                ("Four months after it began.", ["Four months"])])
def test_an_age_is_not_a_duration(sentence: str, durations: list[str]) -> None:
    assert [sentence[start:end] for start, end in typed_spans(sentence, "duration")] == durations


def test_a_long_question_is_typed_in_one_pass() -> None:
    # Words were once matched by a repeated group whose separator could be empty: on one long word, every way of
    # splitting it was tried (hours at the 2,000 characters a question may have).
    long_word = "who is " + "a" * 1990 + " b c d e"
    assert analyse(long_word).kind == "person" and not describes_a_name(long_word, [long_word])


@pytest.mark.parametrize("question,kind", [
    ("mosul fall date", "date"), ("album release date", "date"), ("what date did the town fall", "date"),
    ("doria siege duration", "duration"), ("harlow location province", "place"),
    ("number of troops who crossed the river", "number"), ("sq km lost by the rebels", "number"),
    # The noun after a question word asking something else, or "a number of", says nothing of what is asked.
    ("which party won the largest number of seats", "organization"), ("who killed a number of protesters", "person"),
    ("where did the number of cases rise most", "place"), ("who chose the location of the summit", "person"),
    ("who decided the duration of the ban", "person"),
])
def test_the_rules_type_a_keyword_question_as_the_reader_does(question: str, kind: str) -> None:
    from rag.answering.rule_forms import analyse as rule_form

    # Typed as keywords, with no question word (and "who" here a relative pronoun): the noun says what is asked.
    assert rule_form(question).kind == analyse(question).kind == kind


@pytest.mark.parametrize("question,kind,rules_kind", [
    ("How much did the firm pay when it bought the mill?", "number", "number"),
    ("how many people died when the dam burst", "number", "number"),
    ("who led the party when it won", "person", "person"),
    ("where was the singer studying when she started acting", "place", "place"),
    ("which team did the coach play for when he was in the final", "organization", "organization"),
    # The rules have no pattern for an age: the question is the reader's, whatever its clause asks.
    ("How old was the host when he died?", "number", "other"),
    ("when did the 5% cut happen", "date", "date"),
    ("the strike ended when", "date", "date"),
    ("What was the singer on her way to do when she was struck by the cab?", "other", "other"),
    ("What was the year when the singer went back home?", "date", "date"),
    ("what time did the polls open", "date", "date"),
    # A question word in a clause before the one asked ("the man who ..."): the kinds' order decides, as before.
    ("The man who founded the firm was born in what year?", "date", "date"),
    ("The stadium where the final was played holds how many fans?", "number", "number"),
    ("In what year did the number of refugees peak?", "date", "date"),
    ("number of people killed when the dam burst", "number", "number"),
    ("how often does the ferry run when the river floods", "number", "other"),
    ("In what century did the engine's history begin?", "date", "date"),
])
def test_the_question_word_that_opens_a_question_says_what_it_asks(question: str, kind: str, rules_kind: str) -> None:
    from rag.answering.rule_forms import analyse as rule_form

    # A later question word opens a clause ("when he died"), which says when, not what is asked.
    assert (analyse(question).kind, rule_form(question).kind) == (kind, rules_kind)


@pytest.mark.parametrize("answer,name", [("al Qaeda in Iraq", True), ("Haider al-Abadi", True), ("Ludwig van Beethoven",
                                         True), ("F-16", True), ("Ruvian-backed Shia militias", False),
                                        ("the Kurdish forces", False), ("", False),
                                        ("of the", False), ("'Iron Gate'", True), ("12", True)])
def test_a_proper_name_is_capitalised_but_for_its_particles(answer: str, name: bool) -> None:
    assert is_proper_name(answer) is name


@pytest.mark.parametrize("question,money", [
    ("how much did the firm pay for the unit", True), ("what price did the shares sell at", True),
    ("how much is the board giving the clubs", True), ("ruvian visa cost", True),
    ("at what price did coffee settle", True),
    ("by how much did the shop cut prices", False),  # a change, often a share
    ("how much territory did the group lose", False), ("how much did profits rise", False),
    ("how much of the city do they hold", False),
    ("which year did the price of oil fall", False),  # asks a date
    ("were the tickets sold at a discount to the list price", False),  # no question of an amount
    ("how much ground did the army give up", False), ("how much did the team give away", False),
    ("how much did inflation get to", False), ("which fee was cut", False),  # ground, goals, a share; which one
    ("which price index rose most", False), ("what fee structure did they adopt", False),
    ("loan early participation fee", True), ("what was the transfer fee", True),
    ("what was the price of the shares", True), ("what salary does the chief executive earn", True),
])
def test_a_question_asking_an_amount_of_money(question: str, money: bool) -> None:
    assert asks_for_money(question) is money


@pytest.mark.parametrize("answer,money", [("$85", True), ("12 mln dlrs", True), ("£1.3bn", True), ("50p", True),
                                          ("99.28 cents a pound", True), ("free", True), ("17", False), ("5%", False),
                                          ("1980", False), ("three", False), ("Rs 500 crore", True),
                                          ("EUR 5 million", True), ("5 billion won", True), ("€2.5bn", True),
                                          ("10 mln Swiss francs", True), ("half a million pounds", True),
                                          ("5m people", False), ("10m tall", False), ("the marks on the wall", False),
                                          ("Rand Paul", False), ("a free vote", False), ("free agent", False)])
def test_an_amount_of_money_names_its_currency(answer: str, money: bool) -> None:
    assert is_money(answer) is money


@pytest.mark.parametrize("short,quote,money", [
    ("two", "In two years it will pay two dlrs a warrant.", True),  # not only where the quote first writes it
    ("17", "In 2017 the firm paid $17 a share.", True),  # where it starts a word, not inside "2017"
    ("50", "Stamps rose to 50p each.", True), ("500", "It paid Rs 500 crore.", True),
    ("10", "It paid 10 mln Swiss francs for it.", True), ("85", "85 dlrs a share", True),
    ("17", "He was in his 17th year, earning $5 a day.", False), ("17", "", False),
])
def test_a_short_answer_is_read_as_the_quote_writes_it(short: str, quote: str, money: bool) -> None:
    assert answers_amount("how much did the firm pay", short, quote) is money


@pytest.mark.parametrize("asked,short,answers", [
    ("loan early participation fee", "3/8 pct", True), ("what was the transfer fee", "7 pct", True),
    ("what was the transfer fee", "17", False), ("how much did the firm pay", "3/8 pct", False),
])
def test_a_fee_may_be_a_share(asked: str, short: str, answers: bool) -> None:
    # Lenders and managers quote their fees as a share of what they lend or manage.
    assert answers_amount(asked, short, f"It charged {short} for it.") is answers
