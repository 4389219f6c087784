"""The evaluation harness: the question-set schema, grading and the metric summary checked by hand, the question
types, SQuAD as a corpus, and ``python -m rag.eval`` end to end (JSON, thresholds, errors, reports, other corpora)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, run_module

from rag.citing import Citation
from rag.eval import missed_limits, parse_limits
from rag.evaluation import (
    Question,
    QuestionSetError,
    breakdown,
    corpus_index_dir,
    grade,
    is_relevant,
    load_questions,
    question_set_corpus,
    question_type,
    ranks_refusals,
    summarize,
)
from rag.pipeline import READER_SURE, Answer, Assistant
from rag.retrieval import RetrievedPassage
from rag.settings import load_settings
from rag.squad import squad_corpus

pytestmark = pytest.mark.usefixtures("no_rag_env")

AP = "000_ddbd021a6e61dfd0.txt"
LWJ = "002_21e9abc1f7ceb01f.txt"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_lines(path: Path, *lines: str | dict[str, Any]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
                    encoding="utf-8")
    return path


def eval_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m rag.eval`` without any ``RAG_*`` variable of the caller's (usable from module-scoped fixtures,
    which run before the function-scoped ``no_rag_env``)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("RAG_")]:
            patch.delenv(name)
        return run_module("rag.eval", *args, cwd=cwd, env=env)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("questions:")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- load_questions -------------------------------------------------------------------------------------------------


def test_load_questions_reads_the_schema(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "q.jsonl",
        {"id": "q1", "question": "When did Mosul fall?", "answers": ["July 10"],
         "evidence": ["Iraqi forces declared victory in Mosul on July 10."], "answerable": True},
        "",
        {"id": "q2", "question": "Who leads the Tiger Forces?", "answers": [], "evidence": [], "answerable": False},
        {"question": "When did Raqqa fall?", "answers": ["Oct. 17", "October 17"], "gold_docs": [AP]},
        "   ",
    )
    q1, q2, q3 = load_questions(path)
    assert q1 == Question("q1", "When did Mosul fall?", ("July 10",),
                          ("Iraqi forces declared victory in Mosul on July 10.",), (), True)
    assert q2.answerable is False and q2.answers == () and q2.evidence == ()
    # answerable defaults to true; gold_docs stand in for evidence; the id defaults to the line number.
    assert q3.answerable is True
    assert q3.gold_docs == (AP,) and q3.evidence == ()
    assert q3.answers == ("Oct. 17", "October 17")
    assert q3.id == "4"


def test_an_unanswerable_question_needs_no_answers_or_evidence(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.jsonl", {"id": "u", "question": "Who leads the Tiger Forces?",
                                              "answerable": False})
    [question] = load_questions(path)
    assert question.answerable is False and question.answers == () and question.evidence == ()


def test_the_seed_question_set_loads() -> None:
    questions = load_questions(ROOT / "evals" / "seeds.jsonl")
    assert len(questions) == 67
    assert sum(q.answerable for q in questions) == 53
    assert len({q.id for q in questions}) == 67


GOOD = {"id": "ok", "question": "When did Mosul fall?", "answers": ["July 10"], "evidence": ["July 10"]}


@pytest.mark.parametrize(
    "bad,message",
    [
        ('{"id": "x", "question": "When did Mosul fall?", "answers": ["July 10"]', "not a question record"),
        ("not json at all", "not a question record"),
        ('["a", "list"]', "not a question record"),
        ('"a string"', "not a question record"),
        ({"id": "x", "answers": ["July 10"], "evidence": ["July 10"]}, "not a question record"),
        ({"id": "x", "question": "When did Mosul fall?", "evidence": ["July 10"]}, "needs 'answers'"),
        ({"id": "x", "question": "When did Mosul fall?", "answers": [], "evidence": ["July 10"]}, "needs 'answers'"),
        ({"id": "x", "question": "When did Mosul fall?", "answers": ["July 10"]}, "needs 'evidence' or 'gold_docs'"),
        ({"id": "x", "question": "When did Mosul fall?", "answers": ["July 10"], "evidence": [], "gold_docs": []},
         "needs 'evidence' or 'gold_docs'"),
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, bad: str | dict[str, Any], message: str) -> None:
    path = write_lines(tmp_path / "q.jsonl", GOOD, "", bad, GOOD)
    with pytest.raises(QuestionSetError) as raised:
        load_questions(path)
    assert str(raised.value).startswith(f"{path}:3: ")
    assert message in str(raised.value)


def test_an_empty_question_file(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.jsonl", "", "  ")
    with pytest.raises(QuestionSetError, match="no questions"):
        load_questions(path)


@pytest.mark.parametrize(
    "field,value",
    [("answers", "July 10"), ("evidence", "Iraqi forces declared victory in Mosul on July 10."), ("gold_docs", AP)],
)
def test_a_list_field_given_as_a_string_is_rejected(tmp_path: Path, field: str, value: str) -> None:
    """BUG: ``load_questions`` runs ``tuple(str(x) for x in record.get(field, []))`` without checking that the field
    is a list, so a string is split into its characters: ``"evidence": "Iraqi forces ..."`` becomes the quotes
    "I", "r", "a"... and nearly every passage counts as relevant (recall 1.0); ``"gold_docs": "000_....txt"``
    becomes one-character article ids that never match (recall 0.0); ``"answers": "July 10"`` accepts "1" or "0"
    as an answer. A malformed record is graded silently instead of being reported by file and line."""
    record: dict[str, Any] = {"id": "x", "question": "When did Mosul fall?", "answers": ["July 10"],
                              "evidence": ["Iraqi forces declared victory in Mosul on July 10."], field: value}
    path = write_lines(tmp_path / "q.jsonl", record)
    with pytest.raises(QuestionSetError, match=re.escape(f"{path}:1")):
        load_questions(path)


# --- grade and summarize --------------------------------------------------------------------------------------------

MOSUL = "Iraqi forces declared victory in Mosul on July 10."


def hit(text: str, article: str = AP) -> RetrievedPassage:
    return RetrievedPassage(f"{article}:{text[:12]}", text, {"article_id": article, "title": "t", "start": 0,
                                                           "end": len(text)}, 0.5)


def cited(quote: str, article: str = AP, n: int = 1) -> Citation:
    return Citation(n, article, "t", article, 0, len(quote), quote, 1.0)


def answered(question: str, short: str | None, *citations: Citation) -> Answer:
    quote = citations[0].quote if citations else ""
    text = f"{short}: “{quote}” [1]" if short else f"“{quote}” [1]"
    return Answer(question, text, short, True, list(citations), [], 1.5, question)


def refused(question: str) -> Answer:
    return Answer(question, f"The articles don't say. Nothing in the indexed articles answers “{question}”.", None,
                  False, [], [], 0.2, question)


@pytest.fixture
def graded() -> list[Any]:
    # q1: right answer, evidence at rank 2 (with other whitespace and quotes than the evidence), a supporting citation.
    q1 = Question("q1", "When did Iraqi forces declare victory in Mosul?", ("July 10",), (MOSUL,))
    g1 = grade(q1, answered(q1.question, "July 10", cited(MOSUL)),
               [hit("Raqqa fell on Oct. 17."), hit("Months of fighting.  Iraqi forces declared victory\nin Mosul on "
                                                   "July 10. The city lay in ruins.")])
    # q2 (gold_docs): wrong short answer, the gold article at rank 3, one citation of each article.
    q2 = Question("q2", "When did Raqqa fall?", ("Oct. 17", "October 17"), gold_docs=(LWJ,))
    g2 = grade(q2, answered(q2.question, "Oct. 14", cited("Mayadeen fell on Oct. 14."),
                            cited("Raqqah fell on Oct. 17.", LWJ, 2)),
               [hit("Mayadeen fell on Oct. 14."), hit("Raqqa fell on Oct. 17."), hit("Raqqah fell on Oct. 17.", LWJ)])
    # q3: refused although the evidence was retrieved first.
    q3 = Question("q3", "How long did it take to liberate Hawija?", ("20 days",), ("It took 20 days to liberate",))
    g3 = grade(q3, refused(q3.question), [hit("It took 20 days to liberate Hawija.")])
    # q4: unanswerable and refused; q5: unanswerable and answered anyway.
    q4 = Question("q4", "Who leads the Tiger Forces?", answerable=False)
    g4 = grade(q4, refused(q4.question), [hit("Tiger Forces fought near Deir el-Zour.")])
    q5 = Question("q5", "What is the population of Raqqa?", answerable=False)
    g5 = grade(q5, answered(q5.question, "40,000", cited("40,000 fighters flowed into IS territory.")),
               [hit("40,000 fighters flowed into IS territory.")])
    return [g1, g2, g3, g4, g5]


def test_grade_each_question(graded: list[Any]) -> None:
    g1, g2, g3, g4, g5 = graded
    assert g1.relevance == [False, True]
    assert (g1.correct, g1.exact, g1.f1, g1.citations_supported) == (True, True, 1.0, [True])
    assert g2.relevance == [False, False, True]
    # "Oct. 14" against "Oct. 17": one token of two in common -> F1 0.5.
    assert (g2.correct, g2.exact, g2.citations_supported) == (False, False, [False, True])
    assert g2.f1 == pytest.approx(0.5)
    assert g3.relevance == [True] and g3.refused
    assert (g3.correct, g3.exact, g3.f1, g3.citations_supported) == (False, False, 0.0, [])
    assert g4.refused and g4.relevance == [False]
    assert not g5.refused and g5.citations_supported == [] and not g5.correct


def test_summarize_by_hand(graded: list[Any]) -> None:
    metrics = summarize(graded)
    assert (metrics["n"], metrics["answerable"], metrics["unanswerable"]) == (5, 3, 2)
    retrieval = metrics["retrieval"]
    # First relevant ranks of the answerable questions: 2, 3, 1.
    assert retrieval["recall@1"] == pytest.approx(1 / 3)
    assert retrieval["recall@2"] == pytest.approx(2 / 3)
    assert retrieval["recall@3"] == pytest.approx(1.0)
    assert retrieval["recall@5"] == pytest.approx(1.0)
    assert retrieval["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1) / 3)
    # Only q1 of the three answerable questions is right; F1 1, 0.5 and 0 (refused).
    assert metrics["answer"]["accuracy"] == pytest.approx(1 / 3)
    assert metrics["answer"]["exact_match"] == pytest.approx(1 / 3)
    assert metrics["answer"]["f1"] == pytest.approx(0.5)
    # Citations of answered answerable questions: q1's supports, q2's first does not, its second does.
    assert metrics["citation"] == {"precision": pytest.approx(2 / 3), "count": 3}
    # q4 refused, q5 not; q3 is the one answerable question refused.
    assert metrics["refusal"]["accuracy"] == pytest.approx(1 / 2)
    assert metrics["refusal"]["false_rate"] == pytest.approx(1 / 3)
    # q3 and q4 share the lowest support: no threshold refuses q4 without q3 (a third of the answerable ones).
    assert metrics["refusal"]["refused_at_false_rate"] == {"0.05": 0.0, "0.10": 0.0}


def test_no_refusal_tradeoff_over_supports_of_two_answerers(graded: list[Any]) -> None:
    # The rules' scores and the reader's log-odds do not rank together: a threshold means nothing across them.
    mixed = [dataclasses.replace(g, answer=dataclasses.replace(g.answer, decided_by="reader")) if i % 2 else g
             for i, g in enumerate(graded)]
    assert ranks_refusals(graded) and not ranks_refusals(mixed)
    assert "refused_at_false_rate" not in summarize(mixed)["refusal"]


def test_breakdown_groups_answerable_questions_by_type(graded: list[Any]) -> None:
    table = breakdown(graded)
    assert set(table) == {"when", "how long"}
    assert table["when"]["n"] == 2 and table["when"]["accuracy"] == pytest.approx(0.5)
    assert table["how long"]["n"] == 1 and table["how long"]["recall@5"] == 1.0


def test_open_questions_are_graded_by_their_key_facts() -> None:
    question = Question("o1", "why did fighters come", key_facts=(("caliphate",), ("Europe", "European")))
    both = answered(question.question, None, cited("Fighters came to the caliphate from Europe."))
    one = answered(question.question, None, cited("Fighters came to the caliphate."))
    passages = [hit("Fighters came to the caliphate from Europe.")]
    g_both, g_one = grade(question, both, passages), grade(question, one, passages)
    assert (g_both.correct, g_both.key_fact_recall) == (True, 1.0)
    assert (g_one.correct, g_one.key_fact_recall) == (False, 0.5)
    assert grade(question, refused(question.question), passages).key_fact_recall == 0.0
    assert summarize([g_both, g_one])["answer"]["key_fact_recall"] == pytest.approx(0.75)


def test_article_recall_counts_an_article_once_and_refusal_by_kind() -> None:
    q = Question("q", "When did Raqqa fall?", ("Oct. 17",), ("Raqqa fell on Oct. 17.",))
    # Three passages of one article before the relevant one of another: passage rank 4, article rank 2.
    passages = [hit("One.", AP), hit("Two.", AP), hit("Three.", AP), hit("Raqqa fell on Oct. 17.", LWJ)]
    g = grade(q, answered(q.question, "Oct. 17", cited("Raqqa fell on Oct. 17.", LWJ)), passages)
    trap = Question("t", "When was Raqqa retaken?", answerable=False, unanswerable_kind="trap")
    off = Question("f", "Who won the cup?", answerable=False, unanswerable_kind="off-topic")
    metrics = summarize([g, grade(trap, refused(trap.question), passages),
                         grade(off, answered(off.question, "x", cited("One.")), passages)])
    assert metrics["retrieval"]["recall@3"] == 0.0 and metrics["retrieval"]["article_recall@3"] == 1.0
    assert metrics["retrieval"]["article_recall@1"] == 0.0
    assert metrics["refusal"]["by_kind"] == {"off-topic": 0.0, "trap": 1.0}


def test_a_question_set_names_its_corpus_beside_it(tmp_path: Path) -> None:
    records = tmp_path / "shared" / "news.jsonl"
    records.parent.mkdir()
    records.write_text("".join(json.dumps({"id": f"n{i}", "title": f"T{i}", "text": f"Text {i}."}) + "\n"
                               for i in range(4)), encoding="utf-8")
    sets = tmp_path / "repo" / "evals"
    sets.mkdir(parents=True)
    (sets / "mine.jsonl").write_text("", encoding="utf-8")
    (sets / "mine-corpus.json").write_text(json.dumps(
        {"paths": ["seeds"], "jsonl": [{"file": "../shared/news.jsonl", "ids": ["n1", "n3"]}]}))
    corpus = question_set_corpus(sets / "mine.jsonl", tmp_path / "work")
    assert corpus is not None and corpus[0] == tmp_path / "repo" / "seeds"
    assert [json.loads(line)["id"] for line in corpus[1].read_text().splitlines()] == ["n1", "n3"]
    assert question_set_corpus(sets / "other.jsonl", tmp_path / "work") is None
    (sets / "mine-corpus.json").write_text(json.dumps({"jsonl": [{"file": "../shared/news.jsonl", "ids": ["n9"]}]}))
    with pytest.raises(ValueError, match="1 record"):
        question_set_corpus(sets / "mine.jsonl", tmp_path / "work")


def test_summarize_nothing() -> None:
    metrics = summarize([])
    assert metrics["n"] == 0
    assert metrics["answer"]["accuracy"] == 0.0 and metrics["citation"]["count"] == 0


def test_citation_support_against_evidence_quotes() -> None:
    question = Question("q", "When did Iraqi forces declare victory in Mosul?", ("July 10",), (MOSUL,))
    citations = [
        cited("Iraqi forces declared victory in Mosul", n=1),  # part of the evidence
        cited(f"Months of fighting. {MOSUL} The city lay in ruins.", n=2),  # holds the whole evidence
        cited("Iraqi forces declared victory in Mosul on July 10, ending the battle.", n=3),  # overlaps most of it
        cited("Raqqa fell to Kurdish-led forces on Oct. 17.", n=4),  # another sentence
    ]
    result = grade(question, answered(question.question, "July 10", *citations), [hit(MOSUL)])
    assert result.citations_supported == [True, True, True, False]


def test_citation_support_with_gold_docs_is_by_article() -> None:
    question = Question("q", "When did Raqqa fall?", ("Oct. 17",), gold_docs=(AP, "other.txt"))
    citations = [cited("anything at all", AP, 1), cited("anything at all", LWJ, 2), cited("x", "other.txt", 3)]
    result = grade(question, answered(question.question, "Oct. 17", *citations), [])
    assert result.citations_supported == [True, False, True]
    assert result.relevance == []


def test_without_a_short_answer_the_cited_sentence_is_graded() -> None:
    question = Question("q", "When did Iraqi forces declare victory in Mosul?", ("July 10",), (MOSUL,))
    result = grade(question, answered(question.question, None, cited(MOSUL)), [hit(MOSUL)])
    assert result.correct  # the quoted sentence holds "July 10"
    assert not result.exact
    # "iraqi forces declared victory in mosul on july 10": 2 of 9 tokens are the answer's 2.
    assert result.f1 == pytest.approx(2 * (2 / 9) * 1 / (2 / 9 + 1))


def test_relevance_by_evidence_tolerates_typography_but_not_other_words() -> None:
    question = Question("q", "?", ("x",), ("the group’s de-facto capital — Raqqa",))
    assert is_relevant(hit("Raqqa,  the group's de-facto capital - Raqqa, fell."), question)
    assert not is_relevant(hit("the group's capital - Raqqa"), question)
    by_doc = Question("q", "?", ("x",), gold_docs=(AP,))
    assert is_relevant(hit("anything", AP), by_doc)
    assert not is_relevant(hit("the group’s de-facto capital — Raqqa", LWJ), by_doc)


# --- question_type --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question,kind",
    [
        ("How many people have been liberated?", "how many"),
        ("HOW MANY days did it take?", "how many"),
        ("How much of its territory has IS lost?", "how much"),
        ("How long did the battle last?", "how long"),
        ("What year did IS take Mosul?", "what year"),
        ("What percentage of Deir el-Zour was regained?", "what percentage"),
        ("When did Mosul fall?", "when"),
        ("Who is the spokesman for the Syrian army?", "who"),
        ("Whose military announced the capture?", "whose"),
        ("In which province is Hawija?", "which"),
        ("Where is Qaim?", "where"),
        ("Why did the militants pull back?", "why"),
        ("What did the Syrian army spokesman call the capture?", "what"),
        ("Name the Syrian army spokesman.", "other"),
    ],
)
def test_question_type(question: str, kind: str) -> None:
    assert question_type(question) == kind


# --- command-line helpers -------------------------------------------------------------------------------------------


def test_missed_limits_checks_each_bound_against_its_own_value() -> None:
    limits = {("min", "answer.accuracy"): 0.38, ("max", "refusal.false_rate"): 0.27}
    assert missed_limits(limits, {"answer.accuracy": 0.381, "refusal.false_rate": 0.262}) == []
    assert missed_limits(limits, {"answer.accuracy": 0.2, "refusal.false_rate": 0.3}) == [
        "below threshold: answer.accuracy 0.200 < 0.38", "above threshold: refusal.false_rate 0.300 > 0.27"]


def test_parse_limits_accepts_both_spellings_and_both_bounds() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    assert parse_limits(["--min-answer.accuracy", "0.9", "--min-retrieval.recall@5=0.8",
                         "--max-refusal.false_rate", "0.1"], parser) == {
        ("min", "answer.accuracy"): 0.9, ("min", "retrieval.recall@5"): 0.8, ("max", "refusal.false_rate"): 0.1}
    assert parse_limits([], parser) == {}


def test_corpus_index_dir_is_keyed_by_content(tmp_path: Path, corpus_copy: Path) -> None:
    settings = load_settings({"index_dir": str(tmp_path / "idx")}, environ={})
    first = corpus_index_dir(settings, [corpus_copy])
    assert first.parent == tmp_path / "idx" / "corpora"
    assert re.fullmatch(r"[0-9a-f]{12}", first.name)
    assert corpus_index_dir(settings, [corpus_copy]) == first
    (corpus_copy / AP).write_text((corpus_copy / AP).read_text(encoding="utf-8") + "\nOne more line.\n",
                                  encoding="utf-8")
    assert corpus_index_dir(settings, [corpus_copy]) != first


# --- SQuAD ----------------------------------------------------------------------------------------------------------

TINY_SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Super_Bowl_50",
            "paragraphs": [
                {
                    "context": "Super Bowl 50 was an American football game to determine the champion of the National "
                               "Football League (NFL) for the 2015 season. The American Football Conference (AFC) "
                               "champion Denver Broncos defeated the National Football Conference (NFC) champion "
                               "Carolina Panthers 24–10 to earn their third Super Bowl title.",
                    "qas": [
                        {"id": "sb-1", "question": "Which NFL team won Super Bowl 50?",
                         "answers": [{"answer_start": 177, "text": "Denver Broncos"},
                                     {"answer_start": 177, "text": "Denver Broncos"},
                                     {"answer_start": 171, "text": "champion Denver Broncos"}]},
                        {"id": "sb-2", "question": "Which team did the Denver Broncos defeat?",
                         "answers": [{"answer_start": 249, "text": "Carolina Panthers"}]},
                    ],
                },
                {
                    "context": "The game was played on February 7, 2016, at Levi's Stadium in the San Francisco Bay "
                               "Area at Santa Clara, California.",
                    "qas": [
                        {"id": "sb-3", "question": "Where was Super Bowl 50 played?",
                         "answers": [{"answer_start": 45, "text": "Levi's Stadium"},
                                     {"answer_start": 86, "text": "Santa Clara, California"}]},
                    ],
                },
            ],
        },
        {
            "title": "Warsaw",
            "paragraphs": [
                {
                    "context": "Warsaw is the capital and largest city of Poland. It stands on the Vistula River in "
                               "east-central Poland, roughly 260 kilometres from the Baltic Sea.",
                    "qas": [
                        {"id": "wa-1", "question": "On which river does Warsaw stand?",
                         "answers": [{"answer_start": 67, "text": "Vistula River"},
                                     {"answer_start": 67, "text": "Vistula"}]},
                    ],
                },
            ],
        },
    ],
}


@pytest.fixture
def tiny_squad(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-squad.json"
    path.write_text(json.dumps(TINY_SQUAD, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_corpus_records_and_questions(tiny_squad: Path, tmp_path: Path) -> None:
    corpus, questions = squad_corpus(tiny_squad, tmp_path / "work")
    assert corpus.parent == tmp_path / "work" and re.fullmatch(r"squad-[0-9a-f]{12}\.jsonl", corpus.name)
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["title"]) for r in records] == [
        ("Super_Bowl_50-0", "Super Bowl 50"), ("Super_Bowl_50-1", "Super Bowl 50"), ("Warsaw-0", "Warsaw")]
    contexts = [p["context"] for a in TINY_SQUAD["data"] for p in a["paragraphs"]]
    assert [r["text"] for r in records] == contexts
    assert [(q.id, q.gold_docs) for q in questions] == [
        ("sb-1", ("Super_Bowl_50-0",)), ("sb-2", ("Super_Bowl_50-0",)), ("sb-3", ("Super_Bowl_50-1",)),
        ("wa-1", ("Warsaw-0",))]
    first = questions[0]
    assert first.question == "Which NFL team won Super Bowl 50?"
    assert first.answers == ("Denver Broncos", "champion Denver Broncos")  # duplicates dropped, order kept
    assert all(q.answerable and q.evidence == () for q in questions)
    # The same file maps to the same corpus file.
    assert squad_corpus(tiny_squad, tmp_path / "work")[0] == corpus


def test_squad_corpus_rejects_a_file_that_is_not_squad(tmp_path: Path) -> None:
    path = tmp_path / "not-squad.json"
    path.write_text('{"version": "1.1"}', encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape("not a SQuAD v1.1 file")):
        squad_corpus(path, tmp_path / "work")
    with pytest.raises(ValueError, match=re.escape("not a SQuAD v1.1 file")):
        squad_corpus(tmp_path / "missing.json", tmp_path / "work")


def test_cli_on_a_tiny_squad_file(tiny_squad: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    # Both halves of the split: every question is asked.
    done = eval_cli("--squad", str(tiny_squad), "--split", "all", "--index", str(index), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    metrics = json.loads(done.stdout)
    assert (metrics["n"], metrics["answerable"], metrics["unanswerable"]) == (4, 4, 0)
    # Three paragraphs: every question's gold paragraph is among the first five, so gold_docs matched record ids.
    assert metrics["retrieval"]["recall@5"] == 1.0
    assert list((index / "squad").glob("squad-*.jsonl"))
    assert "3 new" in done.stderr
    assert not (tmp_path / ".rag").exists()
    # The reader alone on each gold paragraph.
    assert metrics["reader"]["count"] == 4 and 0.0 <= metrics["reader"]["f1"] <= 1.0


def test_cli_asking_a_half_of_a_squad_file_the_split_does_not_know_is_one_line(tmp_path: Path) -> None:
    unknown = {"version": "1.1", "data": [{**TINY_SQUAD["data"][0], "title": "Not_In_The_Split"}]}
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps(unknown), encoding="utf-8")
    done = eval_cli("--squad", str(path), "--index", str(tmp_path / "index"), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "articles in neither half" in done.stderr


# --- the command line on the seed index -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_metrics(seed_index: Path) -> dict[str, Any]:
    done = eval_cli("--index", str(seed_index), "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    metrics: dict[str, Any] = json.loads(done.stdout)
    return metrics


def test_cli_json_has_every_metric_in_range(seed_metrics: dict[str, Any]) -> None:
    assert seed_metrics["n"] == 67
    assert (seed_metrics["answerable"], seed_metrics["unanswerable"]) == (53, 14)
    groups = {
        "retrieval": {"recall@1", "recall@5", "mrr"},
        "answer": {"accuracy", "f1", "exact_match"},
        "citation": {"precision"},
        "refusal": {"accuracy", "false_rate"},
    }
    for group, names in groups.items():
        assert names <= set(seed_metrics[group]), group
        for name in names:
            value = seed_metrics[group][name]
            assert isinstance(value, float) and 0.0 <= value <= 1.0, (group, name, value)
    retrieval = seed_metrics["retrieval"]
    assert retrieval["recall@1"] <= retrieval["recall@2"] <= retrieval["recall@5"] <= retrieval["recall@20"]
    assert retrieval["recall@1"] <= retrieval["mrr"] <= retrieval["recall@20"]
    assert sum(row["n"] for row in seed_metrics["by_type"].values()) == 53
    # The default hands most seed questions to the rules and a few to the reader: each one's threshold, in its units.
    thresholds = seed_metrics["refusal_threshold"]
    assert set(thresholds) == {"rules", "reader"} and all(isinstance(value, float) for value in thresholds.values())
    # The reader's open questions have a threshold of their own.
    assert isinstance(seed_metrics["open_refusal_threshold"], float)
    # And how many each decided, with the support at which the reader takes a typed question from the rules.
    assert set(seed_metrics["decided_by"]) == {"rules", "reader"} and sum(seed_metrics["decided_by"].values()) == 67
    assert seed_metrics["reader_sure"] == READER_SURE


def test_cli_one_answerer_gives_one_threshold_and_the_refusal_tradeoff(seed_index: Path) -> None:
    done = eval_cli("--index", str(seed_index), "--json", "--answerer", "rules")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert isinstance(metrics["refusal_threshold"], float)
    at = metrics["refusal"]["refused_at_false_rate"]
    assert set(at) == {"0.05", "0.10"} and 0.0 <= at["0.05"] <= at["0.10"] <= 1.0


def test_cli_threshold_below_the_value_exits_1(seed_index: Path) -> None:
    done = eval_cli("--index", str(seed_index), "--limit", "2", "--json", "--min-answer.accuracy", "1.01")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    below = [line for line in done.stderr.splitlines() if "below threshold" in line]
    assert len(below) == 1 and "answer.accuracy" in below[0] and "1.01" in below[0]
    assert json.loads(done.stdout)["n"] == 2  # the metrics are still printed


def test_cli_threshold_met_exits_0(seed_index: Path) -> None:
    done = eval_cli("--index", str(seed_index), "--limit", "2", "--json", "--min-answer.accuracy=0.0",
                    "--min-retrieval.recall@5", "0")
    assert done.returncode == 0, done.stderr
    assert "below threshold" not in done.stderr


@pytest.mark.parametrize("metric", ["answer.bogus", "retrieval"])
def test_cli_threshold_on_something_that_is_not_a_metric(seed_index: Path, metric: str) -> None:
    """``answer.bogus`` names nothing; ``retrieval`` names a group of metrics, not a metric.

    BUG (the ``retrieval`` case): ``rag.eval.lookup`` walks the dotted name and returns ``float(value)``; for a group
    the value is a dict, ``float()`` raises TypeError, and ``rag.cli.run`` catches only OSError, ValueError and
    RuntimeError: the run ends in a traceback with exit code 1 instead of ``error: no metric named 'retrieval'``
    and exit code 2."""
    done = eval_cli("--index", str(seed_index), "--limit", "1", "--json", f"--min-{metric}", "0.5")
    assert done.returncode == 2, done.stderr
    assert metric in one_line_error(done)


def test_cli_missing_question_file(tmp_path: Path, seed_index: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    done = eval_cli("--questions", str(missing), "--index", str(seed_index))
    assert done.returncode == 2
    assert str(missing) in one_line_error(done)
    assert done.stdout == ""


def test_cli_malformed_question_file(tmp_path: Path, seed_index: Path) -> None:
    path = write_lines(tmp_path / "q.jsonl", GOOD, {"id": "x", "question": "When did Mosul fall?"})
    done = eval_cli("--questions", str(path), "--index", str(seed_index))
    assert done.returncode == 2
    assert f"{path}:2" in one_line_error(done)


CUSTOM = [
    {"id": "c1", "question": "When did Iraqi forces declare victory in Mosul?", "answers": ["July 10"],
     "gold_docs": [AP]},
    {"id": "c2", "question": "Who wrote the Long War Journal analysis “Islamic State suffers defeats in Iraq and "
                             "Syria”?", "answers": ["Bill Roggio", "Roggio"], "gold_docs": [LWJ]},
]


@pytest.fixture(scope="module")
def custom_run(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path,
                                                                                    subprocess.CompletedProcess[str]]:
    """The two questions above, asked by article id, with a Markdown report: one run for the tests below."""
    directory = tmp_path_factory.mktemp("custom-eval")
    questions = write_lines(directory / "questions.jsonl", *CUSTOM)
    done = eval_cli("--questions", str(questions), "--index", str(seed_index), "--json",
                    "--report", str(directory / "report.md"), cwd=directory)
    return directory, done


def test_cli_custom_question_file_with_gold_docs(custom_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = custom_run
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    metrics = json.loads(done.stdout)
    assert (metrics["n"], metrics["answerable"], metrics["unanswerable"]) == (2, 2, 0)
    # Each question's article holds the best passage; the answers come from and cite those articles.
    assert metrics["retrieval"]["recall@1"] == 1.0 and metrics["retrieval"]["mrr"] == 1.0
    assert metrics["answer"]["accuracy"] == 1.0
    assert metrics["citation"]["precision"] == 1.0 and metrics["citation"]["count"] == 2
    assert set(metrics["by_type"]) == {"when", "who"}


def test_cli_report_writes_markdown_and_a_png_beside_it(
        custom_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    directory, done = custom_run
    assert done.returncode == 0, done.stderr
    report, chart = directory / "report.md", directory / "report.png"
    assert chart.read_bytes()[:8] == PNG_MAGIC
    assert chart.stat().st_size > 1000
    markdown = report.read_text(encoding="utf-8")
    assert markdown.startswith("# Evaluation report: report\n")
    assert "Command: `python -m rag.eval --questions " in markdown
    assert "2 questions." in markdown
    for row in ("| retrieval.recall@1 | 1.000 |", "| retrieval.mrr | 1.000 |", "| answer.accuracy | 1.000 |",
                "| citation.precision | 1.000 |", "| refusal.false_rate | 0.000 |"):
        assert row in markdown
    assert "| citation.count |" not in markdown
    assert "![recall@k](report.png)" in markdown
    assert "## By question type" in markdown and "| when | 1 | 1.000 |" in markdown
    assert f"report written to {report}" in done.stderr
    # Every question answerable: no refusal trade-off to draw.
    assert "## Refusal trade-off" not in markdown and not (directory / "report-refusal.png").exists()


def test_cli_report_draws_the_refusal_tradeoff_when_some_questions_are_unanswerable(
        seed_index: Path, tmp_path: Path) -> None:
    unanswerable = {"id": "u1", "question": "What is the recipe for banana bread?", "answers": [],
                    "answerable": False}
    questions = write_lines(tmp_path / "questions.jsonl", *CUSTOM, unanswerable)
    done = eval_cli("--questions", str(questions), "--index", str(seed_index), "--json", "--answerer", "rules",
                    "--report", str(tmp_path / "report.md"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # The two answerable questions are answered and the off-topic one refused: some threshold does both.
    assert json.loads(done.stdout)["refusal"]["refused_at_false_rate"] == {"0.05": 1.0, "0.10": 1.0}
    chart = tmp_path / "report-refusal.png"
    assert chart.read_bytes()[:8] == PNG_MAGIC and chart.stat().st_size > 1000
    assert "![refusal trade-off](report-refusal.png)" in (tmp_path / "report.md").read_text(encoding="utf-8")


# --- --corpus -------------------------------------------------------------------------------------------------------


def test_cli_corpus_refuses_an_index_holding_other_articles(tmp_path: Path, corpus_copy: Path) -> None:
    """Grading a corpus in an index that holds other articles would let them answer too."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "doria.txt").write_text("Doria mill closes\n\nThe Doria steel mill closed on Friday after 80 years.\n",
                                     encoding="utf-8")
    index = tmp_path / "idx"
    Assistant(load_settings({"index_dir": str(index)}, environ={})).ingest([other])
    questions = write_lines(tmp_path / "questions.jsonl", *CUSTOM)
    done = eval_cli("--corpus", "corpus", "--questions", str(questions), "--index", str(index), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {index} holds 1 article(s) besides this corpus: they would answer too; give --index an empty "
        "directory, or leave it out (each corpus gets an index of its own)")
    # The same corpus again in the same index: nothing else there, graded.
    own = ("--corpus", "corpus", "--questions", str(questions), "--index", str(tmp_path / "own"))
    assert eval_cli(*own, cwd=tmp_path).returncode == 0
    again = eval_cli(*own, cwd=tmp_path)
    assert again.returncode == 0 and "0 new, 0 changed, 2 unchanged" in again.stderr


def test_cli_corpus_gets_an_index_of_its_own(tmp_path: Path, corpus_copy: Path) -> None:
    """``--corpus`` without ``--index``: the index goes under ``<index dir>/corpora/<content hash>``; the index dir
    here comes from ``RAG_INDEX_DIR`` so that nothing is written under the repository's ``.rag``."""
    questions, index_root = write_lines(tmp_path / "questions.jsonl", *CUSTOM), tmp_path / "idx"
    env = {"RAG_INDEX_DIR": str(index_root)}
    args = ("--corpus", "corpus", "--questions", str(questions), "--json")
    done = eval_cli(*args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "2 new" in done.stderr
    metrics = json.loads(done.stdout)
    assert metrics["n"] == 2 and metrics["retrieval"]["recall@5"] == 1.0  # doc ids of the copy match gold_docs

    expected = corpus_index_dir(load_settings({"index_dir": str(index_root)}, environ={}), [tmp_path / "corpus"])
    assert [path.name for path in (index_root / "corpora").iterdir()] == [expected.name]
    assert (expected / "chroma").is_dir()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["corpus", "idx", "questions.jsonl"]
    assert not (ROOT / ".rag" / "corpora" / expected.name).exists()

    # Same content, same index: nothing is embedded again.
    again = eval_cli(*args, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 changed, 2 unchanged" in again.stderr
    assert [path.name for path in (index_root / "corpora").iterdir()] == [expected.name]
