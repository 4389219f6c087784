"""Question sets in the style of evals/open.jsonl: open questions graded by key facts, follow-ups with their
history, and a corpus named in NAME-corpus.json beside the set."""

from __future__ import annotations

import json
from pathlib import Path

from rag.evaluation import Question, grade, load_questions, question_set_corpus
from rag.pipeline import Answer


def test_key_facts_history_and_kinds_load(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    records = [
        {"id": "o1", "question": "why deir ez zor", "kind": "open", "key_facts": [["crossroads"], ["oil", "crude"]],
         "answers": [], "evidence": ["a crossroads ... oil"], "answerable": True},
        {"id": "o2", "question": "and hawija?", "history": ["mosul fall date"], "answers": ["Oct. 10"],
         "evidence": ["on Oct. 10"]},
        {"id": "o3", "question": "who won", "answers": [], "evidence": [], "answerable": False,
         "unanswerable_kind": "off-topic", "key_facts": []},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    first, second, third = load_questions(path)
    assert first.key_facts == (("crossroads",), ("oil", "crude")) and second.history == ("mosul fall date",)
    assert third.unanswerable_kind == "off-topic" and not third.answerable


def test_an_open_answer_is_right_when_it_holds_every_key_fact() -> None:
    question = Question("o1", "why", key_facts=(("crossroads",), ("oil", "crude")), evidence=("x",))
    holds = Answer("why", "It sits on a crossroads and ships crude [1].", None, True, [])
    lacks = Answer("why", "It sits on a crossroads [1].", None, True, [])
    assert grade(question, holds, []).correct and not grade(question, lacks, []).correct


def test_the_corpus_beside_a_set(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps({"id": i, "text": f"text {i}"}) for i in "abc"))
    (tmp_path / "evals" / "set-corpus.json").write_text(json.dumps(
        {"paths": ["seeds"], "jsonl": [{"file": "data.jsonl", "ids": ["a", "c"]}]}))
    corpus = question_set_corpus(tmp_path / "evals" / "set.jsonl", tmp_path / "work")
    assert corpus is not None and corpus[0] == tmp_path / "seeds"
    assert [json.loads(line)["id"] for line in corpus[1].read_text().splitlines()] == ["a", "c"]
    assert question_set_corpus(tmp_path / "evals" / "other.jsonl", tmp_path / "work") is None
