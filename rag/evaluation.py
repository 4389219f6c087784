"""Grade retrieval, answers, citations and refusals on a question set; the metric definitions live here.

A question set is JSONL, one object a line: ``{"id", "question", "answers": [...], "evidence": [exact quotes],
"answerable": true}`` (``answerable`` defaults to true); ``gold_docs`` (article ids) may replace ``evidence``.
Optional: ``"kind": "open"`` with ``"key_facts": [[phrasing, ...], ...]`` instead of ``answers`` (graded by the facts
the answer must hold), ``"history": [earlier questions]`` (a follow-up: the last of them is asked and answered
first, as in a conversation, since a pronoun may stand for its answer), and for an unanswerable question
``"unanswerable_kind"``: ``off-topic``, ``near-topic`` or ``trap``.

- ``retrieval.recall@k``: share of answerable questions with a relevant passage in the top k. A passage is relevant
  if it contains an evidence quote (after whitespace and quote normalisation), or, for questions that give
  ``gold_docs``, if it belongs to one of those articles.
- ``retrieval.article_recall@k``: share of answerable questions with a relevant passage's article among the first k
  distinct articles of the ranking (several passages of one article count once).
- ``retrieval.mrr``: mean over answerable questions of 1 / rank of the first relevant passage in the top 20 (0 if
  none).
- ``retrieval.rrf_baseline.recall@k``: the same recall for the same candidates in plain reciprocal-rank-fusion order
  (what the sentence re-ranking in ``rag/retrieval.py`` improves on), measured in the same run.
- ``answer.accuracy``: share of answerable questions answered (not refused) with an answer text that contains an
  acceptable answer (SQuAD normalisation: case, punctuation, articles, whitespace; whole tokens).
  For an open question (``key_facts``), right means answered with every key fact in the answer text (any of its
  phrasings, same normalisation).
- ``answer.key_fact_recall``: over open questions answered or not, the share of their key facts the answer holds.
- ``answer.exact_match`` / ``answer.f1``: SQuAD exact match / token F1 of the short answer (the cited sentence when
  there is no short answer; 0 when refused) against the best acceptable answer.
- ``citation.precision``: share of the citations of answered answerable questions whose quote contains, lies in, or
  overlaps at least half of an evidence quote (for ``gold_docs`` questions: cites one of those articles).
- ``refusal.accuracy``: share of unanswerable questions refused; ``refusal.false_rate``: share of answerable ones
  refused; ``refusal.by_kind.KIND``: refusal accuracy on the unanswerable questions of each kind;
  ``refusal.refused_at_false_rate.R``: the share of unanswerable questions the best support threshold refuses while
  refusing at most R of the answerable ones (extractive answers only): the refusal score's ranking, whatever
  threshold was shipped.
- ``reader.f1`` / ``reader.exact_match`` (SQuAD only): the reader alone, given the gold paragraph.

With a language model (``rag.eval --llm ...``) the same metrics grade the answers shown (generated, or extractive
where the model's answer fell back), and ``generation`` adds:

- ``generation.llm_answers`` / ``generation.fallback``: share of questions answered with the model's checked
  sentences / with the extractive answer instead; ``generation.model_errors``: questions where the model failed
  (timeout, connection, HTTP error, malformed reply).
- ``generation.sentences``: sentences the model wrote; ``generation.dropped``: share of them dropped by verification
  (never shown); ``generation.shown_unverified``: sentences shown that are not a verified sentence (must be 0).
- ``generation.first_token_s`` / ``generation.total_s``: seconds from sending the prompt to the first piece of text /
  to the checked answer, per answer (mean, median, max).
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
import json
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.conversation import contextualize
from rag.metrics import (
    best_exact_match,
    best_f1,
    citation_supports,
    contains_answer,
    mean,
    quote_in_passage,
    recall_at_k,
    reciprocal_rank,
)
from rag.pipeline import Answer, Assistant
from rag.retrieval import RetrievedPassage, reciprocal_rank_fusion
from rag.settings import Settings

MRR_DEPTH = 20
RECALL_DEPTHS = (1, 2, 3, 5, 10, 20)
ARTICLE_DEPTHS = (1, 3, 5)
TRADEOFF_FALSE_RATES = (0.05, 0.10)
"""Shares of answerable questions refused at which ``refusal.refused_at_false_rate`` reports the unanswerable ones
refused (``refused_at``)."""


class QuestionSetError(ValueError):
    """A question file that does not follow the schema; the message names the file and line."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    gold_docs: tuple[str, ...] = ()
    answerable: bool = True
    key_facts: tuple[tuple[str, ...], ...] = ()
    """For an open question: facts the answer must hold, each as its acceptable phrasings."""
    history: tuple[str, ...] = ()
    """Earlier questions of the conversation, for a follow-up."""
    unanswerable_kind: str | None = None


@dataclass
class Graded:
    question: Question
    answer: Answer
    relevance: list[bool]
    """For each retrieved passage, in rank order, whether it is relevant."""
    retrieved: list[RetrievedPassage]
    correct: bool
    f1: float
    exact: bool
    key_fact_recall: float | None = None
    citations_supported: list[bool] = field(default_factory=list)
    baseline_relevance: list[bool] = field(default_factory=list)
    """``relevance`` in plain reciprocal-rank-fusion order (see ``fusion_relevance``)."""
    model_error: str | None = None
    """With a language model: why it failed on this question, if it did."""

    @property
    def refused(self) -> bool:
        return not self.answer.answerable


def load_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            answerable = bool(record.get("answerable", True))
            for name in ("answers", "evidence", "gold_docs", "key_facts", "history"):
                if not isinstance(record.get(name, []), list):
                    raise TypeError(f"'{name}' must be a list")
            key_facts = tuple(tuple(str(p) for p in ([fact] if isinstance(fact, str) else fact))
                              for fact in record.get("key_facts", []))
            question = Question(
                id=str(record.get("id", number)),
                question=str(record["question"]),
                answers=tuple(str(answer) for answer in record.get("answers", [])),
                evidence=tuple(str(quote) for quote in record.get("evidence", [])),
                gold_docs=tuple(str(doc) for doc in record.get("gold_docs", [])),
                answerable=answerable,
                key_facts=key_facts,
                history=tuple(str(q) for q in record.get("history", [])),
                unanswerable_kind=record.get("unanswerable_kind"),
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
            raise QuestionSetError(f"{path}:{number}: not a question record ({error})") from None
        if answerable and not (question.answers or question.key_facts):
            raise QuestionSetError(f"{path}:{number}: an answerable question needs 'answers' or 'key_facts'")
        if answerable and not (question.evidence or question.gold_docs):
            raise QuestionSetError(f"{path}:{number}: an answerable question needs 'evidence' or 'gold_docs'")
        questions.append(question)
    if not questions:
        raise QuestionSetError(f"{path}: no questions")
    return questions


def is_relevant(passage: RetrievedPassage, question: Question) -> bool:
    if question.gold_docs:
        return str(passage.metadata["article_id"]) in question.gold_docs
    return any(quote_in_passage(passage.text, quote) for quote in question.evidence)


def grade(question: Question, answer: Answer, retrieved: list[RetrievedPassage]) -> Graded:
    relevance = [is_relevant(passage, question) for passage in retrieved]
    answered = answer.answerable
    recall = None
    if question.key_facts:
        found = [answered and contains_answer(answer.answer, list(fact)) for fact in question.key_facts]
        recall = mean([float(f) for f in found])
        correct = answered and question.answerable and all(found)
    else:
        correct = answered and question.answerable and contains_answer(answer.answer, question.answers)
    predicted = answer.short_answer or (answer.citations[0].quote if answer.citations else "")
    if answer.mode == "llm":  # what the model said, not the sentence it was checked against
        predicted = re.sub(r"\s*\[\d+\]", "", answer.answer)
    f1 = best_f1(predicted, question.answers) if answered and question.answers else 0.0
    exact = bool(answered and question.answers and best_exact_match(predicted, question.answers))
    supported = []
    if question.answerable and answered:
        for citation in answer.citations:
            if question.gold_docs:
                supported.append(citation.doc_id in question.gold_docs)
            else:
                supported.append(citation_supports(citation.quote, question.evidence))
    # Sentence vectors are not needed once answered; 10,570 SQuAD questions would hold gigabytes of them.
    light = [dataclasses.replace(passage, sentences=[]) for passage in retrieved]
    return Graded(question, answer, relevance, light, correct, f1, exact, recall, supported)


def run(assistant: Assistant, questions: Sequence[Question],
        progress: Callable[[int], None] = lambda done: None, generated: bool = False) -> list[Graded]:
    """Ask every question once (retrieving once) and grade it; ``generated``: answer with ``assistant.llm``."""
    graded = []
    for done, question in enumerate(questions, start=1):
        previous_answer = (assistant.ask(question.history[-1], question.history[:-1]).short_answer
                           if question.history else None)
        asked = contextualize(question.question, question.history, assistant.retriever, previous_answer)
        vector = assistant.retriever.embed_question(asked)
        # Every candidate, not just the top 20: the plain-fusion baseline re-orders them (``fusion_relevance``).
        retrieved = assistant.retriever.retrieve(asked, vector, limit=assistant.settings.candidates)
        error = None
        if generated:
            from rag.generation.chain import Done

            history = [(earlier, "") for earlier in question.history]  # the earlier answers are not part of a set
            last = [event for event in assistant.generate(question.question, history, retrieved=(vector, retrieved),
                                                          previous_answer=previous_answer)
                    if isinstance(event, Done)][-1]
            answer, error = last.answer, last.error
        else:
            answer = assistant.answer(question.question, asked, vector, retrieved)
        result = grade(question, answer, retrieved)
        result.model_error = error
        result.baseline_relevance = fusion_relevance(result.retrieved, result.relevance, assistant.settings.rrf_k)
        graded.append(result)
        progress(done)
    return graded


def summarize(graded: Sequence[Graded]) -> dict[str, Any]:
    answerable = [g for g in graded if g.question.answerable]
    unanswerable = [g for g in graded if not g.question.answerable]
    citations = [supported for g in answerable for supported in g.citations_supported]
    open_questions = [g for g in answerable if g.key_fact_recall is not None]
    retrieval: dict[str, Any] = {
        f"recall@{k}": mean([recall_at_k(g.relevance, k) for g in answerable]) for k in RECALL_DEPTHS
    }
    for k in ARTICLE_DEPTHS:
        retrieval[f"article_recall@{k}"] = mean([recall_at_k(article_relevance(g), k) for g in answerable])
    retrieval["mrr"] = mean([reciprocal_rank(g.relevance, MRR_DEPTH) for g in answerable])
    retrieval["rrf_baseline"] = {
        f"recall@{k}": mean([recall_at_k(g.baseline_relevance, k) for g in answerable]) for k in (1, 5)
    }
    return {
        "n": len(graded),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "retrieval": retrieval,
        "answer": {
            "accuracy": mean([float(g.correct) for g in answerable]),
            "exact_match": mean([float(g.exact) for g in answerable]),
            "f1": mean([g.f1 for g in answerable]),
            "key_fact_recall": mean([g.key_fact_recall or 0.0 for g in open_questions]) if open_questions else None,
        },
        "citation": {"precision": mean([float(s) for s in citations]), "count": len(citations)},
        "refusal": {
            # None, not 0, when the set has no unanswerable questions (SQuAD): nothing was measured.
            "accuracy": mean([float(g.refused) for g in unanswerable]) if unanswerable else None,
            "false_rate": mean([float(g.refused) for g in answerable]),
            "by_kind": {kind: mean([float(g.refused) for g in unanswerable if g.question.unanswerable_kind == kind])
                        for kind in sorted({g.question.unanswerable_kind or "" for g in unanswerable} - {""})},
            **({"refused_at_false_rate": {
                f"{rate:.2f}": refused_at([g.answer.support for g in answerable],
                                          [g.answer.support for g in unanswerable], rate)
                for rate in TRADEOFF_FALSE_RATES}} if ranks_refusals(graded) else {}),
        },
        **({"generation": generation_metrics(graded)} if any(g.answer.mode != "extractive" for g in graded) else {}),
    }


def ranks_refusals(graded: Sequence[Graded]) -> bool:
    """Whether the set holds both kinds of question and every answer's support is what decided it (an extractive
    answer; a model decides for itself), in the units of one answerer (``hybrid`` hands questions to two)."""
    return (any(g.question.answerable for g in graded) and any(not g.question.answerable for g in graded)
            and all(g.answer.mode == "extractive" for g in graded)
            and len({g.answer.decided_by for g in graded}) == 1)


def article_relevance(graded: Graded) -> list[bool]:
    """Relevance over the distinct articles of the ranking, in order of their first passage."""
    seen: dict[str, bool] = {}
    for passage, relevant in zip(graded.retrieved, graded.relevance, strict=True):
        article = str(passage.metadata.get("article_id", passage.id))
        seen[article] = seen.get(article, False) or relevant
    return list(seen.values())


def generation_metrics(graded: Sequence[Graded]) -> dict[str, Any]:
    """What a language model added (see the module docstring)."""
    sentences = [sentence for g in graded for sentence in g.answer.sentences]
    dropped = [sentence for sentence in sentences if sentence.verdict == "dropped"]
    timings = [g.answer.timing for g in graded if g.answer.timing is not None]
    first = [t.first_token for t in timings if t.first_token is not None]
    return {
        "llm_answers": mean([float(g.answer.mode == "llm") for g in graded]),
        "fallback": mean([float(g.answer.mode == "extractive-fallback") for g in graded]),
        "model_errors": sum(1 for g in graded if g.model_error),
        "sentences": len(sentences),
        "dropped": len(dropped) / len(sentences) if sentences else None,
        "shown_unverified": sum(shown_unverified(g.answer) for g in graded),
        "first_token_s": _spread(first),
        "total_s": _spread([t.total for t in timings]),
    }


def shown_unverified(answer: Answer) -> int:
    """Sentences of a generated answer's text that are not one of its verified sentences (0 unless broken)."""
    if answer.mode != "llm":
        return 0
    from rag.generation.verification import parse_claim, split_reply

    verified = {parse_claim(s.text).body for s in answer.sentences if s.verdict == "verified"}
    return sum(1 for claim in split_reply(answer.answer) if claim.body not in verified)


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "max": None}
    return {"mean": round(statistics.fmean(values), 3), "p50": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def fusion_relevance(retrieved: Sequence[RetrievedPassage], relevance: Sequence[bool], k: int) -> list[bool]:
    """Relevance in the order plain reciprocal-rank fusion of the two retrievers gives the same candidates: the
    baseline the sentence re-ranking is measured against, in the same run."""
    fused = reciprocal_rank_fusion([_by_rank(retrieved, "dense"), _by_rank(retrieved, "lexical")], k)
    relevant = {p.id for p, rel in zip(retrieved, relevance, strict=True) if rel}
    return [item in relevant for item, _ in fused]


def _by_rank(passages: Sequence[RetrievedPassage], retriever: str) -> list[str]:
    ranked = sorted((p.ranks[retriever], p.id) for p in passages if retriever in p.ranks)
    return [passage_id for _, passage_id in ranked]


def question_type(question: str) -> str:
    """The question's wh-form, for the per-type breakdown: ``how many``, ``when``, ``who``..."""
    text = question.lower()
    for form in ("how many", "how much", "how long", "what year", "what percentage"):
        if form in text:
            return form
    match = re.search(r"\b(what|which|when|who|whom|whose|where|why|how)\b", text)
    return match.group(1) if match else "other"


def breakdown(graded: Sequence[Graded]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[Graded]] = defaultdict(list)
    for g in graded:
        if g.question.answerable:
            groups[question_type(g.question.question)].append(g)
    return {
        kind: {
            "n": len(items),
            "recall@5": mean([recall_at_k(g.relevance, 5) for g in items]),
            "accuracy": mean([float(g.correct) for g in items]),
            "exact_match": mean([float(g.exact) for g in items]),
            "f1": mean([g.f1 for g in items]),
        }
        for kind, items in sorted(groups.items(), key=lambda pair: -len(pair[1]))
    }


def failures(graded: Sequence[Graded]) -> list[Graded]:
    """Questions answered wrongly, refused wrongly, or whose evidence was not retrieved in the top 5."""
    return [
        g for g in graded
        if (g.question.answerable and (not g.correct or not recall_at_k(g.relevance, 5)))
        or (not g.question.answerable and not g.refused)
    ]


@dataclass(frozen=True)
class RefusalPoint:
    threshold: float
    """Questions whose support is below it are refused."""
    false_rate: float
    """Share of the answerable questions refused (0 when there are none)."""
    refused: float
    """Share of the unanswerable questions refused (0 when there are none)."""


def refusal_tradeoff(supports_answerable: Sequence[float],
                     supports_unanswerable: Sequence[float]) -> list[RefusalPoint]:
    """What every refusal threshold does, from refusing nothing to refusing everything: one point below the lowest
    support, one between each two neighbouring supports, one above the highest."""
    scores = sorted(set(supports_answerable) | set(supports_unanswerable))
    if not scores:
        return []
    thresholds = [scores[0] - 1e-6, *((a + b) / 2 for a, b in itertools.pairwise(scores)), scores[-1] + 1e-6]
    answerable, unanswerable = sorted(supports_answerable), sorted(supports_unanswerable)

    def share_below(supports: list[float], threshold: float) -> float:
        # Sorted supports: a bisection per threshold, not a pass over every question (sets of thousands).
        return bisect.bisect_left(supports, threshold) / len(supports) if supports else 0.0

    return [RefusalPoint(t, share_below(answerable, t), share_below(unanswerable, t)) for t in thresholds]


def refused_at(supports_answerable: Sequence[float], supports_unanswerable: Sequence[float],
               max_false_refusal: float) -> float:
    """The largest share of unanswerable questions any threshold refuses while refusing at most
    ``max_false_refusal`` of the answerable ones: how well the support ranks the two kinds, wherever the shipped
    threshold sits (two refusal models compare on it even when their thresholds fell differently)."""
    return max(point.refused for point in refusal_tradeoff(supports_answerable, supports_unanswerable)
               if point.false_rate <= max_false_refusal)


def calibrate_threshold(supports_answerable: Sequence[float], supports_unanswerable: Sequence[float],
                        max_false_refusal: float = 1.0) -> float:
    """The refusal threshold that best separates the two score distributions.

    Maximises balanced accuracy (mean of the share of unanswerable questions refused and of answerable ones not
    refused) among the thresholds that refuse at most ``max_false_refusal`` of the answerable ones; among equally
    good thresholds, takes the middle of the widest gap between neighbouring scores.
    """
    scores = sorted(set(supports_answerable) | set(supports_unanswerable))
    if not scores:
        raise ValueError("no scores to calibrate on")

    def balanced(point: RefusalPoint) -> float:
        kept = 1.0 - point.false_rate if supports_answerable else 1.0
        return (kept + (point.refused if supports_unanswerable else 1.0)) / 2

    allowed = [point for point in refusal_tradeoff(supports_answerable, supports_unanswerable)
               if point.false_rate <= max_false_refusal]
    best = max(balanced(point) for point in allowed)
    tied = [point.threshold for point in allowed if balanced(point) == best]

    def gap(threshold: float) -> float:
        below = max((s for s in scores if s < threshold), default=threshold)
        above = min((s for s in scores if s >= threshold), default=threshold)
        return above - below

    return max(tied, key=gap)


def question_set_corpus(questions: Path, workdir: Path) -> list[Path] | None:
    """The corpus a question set names in ``NAME-corpus.json`` beside it, if any: its paths, and the records of
    the JSONL files it lists by id, written to one JSONL file under ``workdir`` (content-named)."""
    spec_path = questions.with_name(f"{questions.stem}-corpus.json")
    if not spec_path.is_file():
        return None
    spec = json.loads(spec_path.read_text())
    base = spec_path.parent.parent
    corpus = [base / path for path in spec.get("paths", [])]
    for source in spec.get("jsonl", []):
        wanted = set(source["ids"])
        path = base / source["file"]
        lines = [line for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and json.loads(line).get("id") in wanted]
        found = {json.loads(line)["id"] for line in lines}
        if wanted - found:
            raise ValueError(f"{path}: {len(wanted - found)} record(s) named by {spec_path} are missing")
        body = "\n".join(lines) + "\n"
        workdir.mkdir(parents=True, exist_ok=True)
        sample = workdir / f"{path.stem}-{hashlib.sha256(body.encode()).hexdigest()[:12]}.jsonl"
        if not sample.exists():
            sample.write_text(body, encoding="utf-8")
        corpus.append(sample)
    return corpus


def corpus_index_dir(settings: Settings, corpus: list[Path]) -> Path:
    """An index per corpus content: the same files always map to the same (incrementally updated) index."""
    digest = hashlib.sha256()
    for root in sorted(corpus):
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            if path.is_file():
                digest.update(str(path.relative_to(root.parent)).encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return settings.index_dir / "corpora" / digest.hexdigest()[:12]
