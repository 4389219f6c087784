"""The assistant: components chosen from settings in one place, and the two things a user does, ingest and ask.

The CLIs (``rag.ask``, ``rag.ingest``, ``rag.eval``) and the chat UI are thin shells over ``Assistant``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rag.answering.answerer import Answerer, Composed
from rag.citing import Citation, PassageHit, cite, in_quotes, passage_hit
from rag.conversation import contextualize
from rag.indexing import IngestReport, ingest, ingest_locked, remove_file
from rag.integrity import IndexProblem, index_state, unusable_reason
from rag.locking import IndexBusy, writable, writer_lock
from rag.metrics import overlap_fraction
from rag.retrieval import HybridRetriever, RetrievedPassage, Scope, build_lexical_index, lexical_index_current
from rag.settings import DecidingAnswerer, Settings
from rag.store import CHROMA_DIR, PassageStore, open_store

if TYPE_CHECKING:
    from rag.answering.questions import AnswerKind
    from rag.generation.chain import GenerationEvent
    from rag.generation.llm import ChatModel

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
# Used only for a model never calibrated here (see calibration.json).
UNCALIBRATED_THRESHOLD = 1.0
MAX_QUESTION_CHARS = 2000
# Passages whose sentences compete for the answer; the rest only widen the list shown.
ANSWER_POOL = 8
READER_SURE = math.log(0.9 / 0.1)
"""The reader's support (its refusal model's log-odds that the articles answer) at which ``hybrid`` lets the reader
answer a question it hands the rules: the reader is at least 90% sure. The rules are right more often than that
only on the questions their weights were set on."""
READER_LIKELY = math.log(0.6 / 0.4)
"""The reader's support at which it answers a question handed to the rules that the rules refuse, with an answer of the
kind they typed: its refusal model gives at least 60% that the articles answer the question. Set on the questions the
rules refuse in the development sets (seeds, dev, open, tuning, holdout, quiz, unseen, typed, chat): from 0.2 to 0.5
the reader answers 9 of them right and one unanswerable; at 0 it also answers two more unanswerable, one of them a
seed trap."""


WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)
AMOUNTS = frozenset({"number", "percent"})
"""Kinds of answer always written with a figure: the reader's answer to them that holds none is not of the kind
asked for (a date or a name may be written in words ``fits_kind`` does not know: "the 1970s", "the quarterback")."""


class QuestionError(ValueError):
    """The question cannot be asked (empty, or too long)."""


AnswerMode = Literal["extractive", "llm", "extractive-fallback"]


@dataclass(frozen=True)
class SentenceCheck:
    """One sentence a language model wrote, and whether it was shown."""

    text: str
    """As the model wrote it, with its own [n] passage numbers."""
    verdict: Literal["verified", "dropped"]
    reason: str
    cites: list[int] = field(default_factory=list)
    """The passage numbers it cited (passage n is ``passages[n - 1]``)."""
    citations: list[int] = field(default_factory=list)
    """For a verified sentence, the numbers of the answer's citations that support it."""


@dataclass(frozen=True)
class Timing:
    first_token: float | None
    """Seconds from sending the prompt to the model's first piece of text (None if none came)."""
    total: float
    """Seconds from sending the prompt to the checked answer."""


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    short_answer: str | None
    answerable: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[PassageHit] = field(default_factory=list)
    support: float = 0.0
    """How well the articles support answering, in the units of the answerer that decided (``decided_by``): the
    rules' sentence score, or the refusal model's log-odds; compared with that answerer's threshold."""
    asked: str = ""
    """The question as answered: a follow-up rewritten with its context, initials written out as the passages write
    the names they stand for."""
    mode: AnswerMode = "extractive"
    """``llm``: sentences a language model wrote, each checked against the passages it cites; ``extractive``: a
    quoted sentence; ``extractive-fallback``: the quoted sentence, because the model failed or nothing it wrote
    could be verified (``fallback_reason`` says which)."""
    model: str | None = None
    """The model asked (``settings.llm``), in the two generated modes."""
    sentences: list[SentenceCheck] = field(default_factory=list)
    """Every sentence the model wrote, with its verdict: the dropped ones were never shown."""
    fallback_reason: str | None = None
    timing: Timing | None = None
    scope: Scope | None = None
    """The articles and files retrieval was kept to (None: the whole index)."""
    decided_by: DecidingAnswerer = "rules"
    """The extractive answerer whose support and threshold decided the answer (``hybrid`` hands each question to
    one): ``support`` is in its units. For a model's answer, the one its form hands it to (``handed_to``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "short_answer": self.short_answer,
            "answerable": self.answerable,
            "mode": self.mode,
            "model": self.model,
            "citations": [asdict(citation) for citation in self.citations],
            "passages": [asdict(passage) for passage in self.passages],
            "sentences": [asdict(sentence) for sentence in self.sentences],
            "fallback_reason": self.fallback_reason,
            "timing": asdict(self.timing) if self.timing else None,
            "scope": self.scope.to_json() if self.scope else None,
        }


def check_question(question: str) -> str:
    if not question or not question.strip():
        raise QuestionError("the question is empty")
    if not re.search(r"[^\W_]", question):
        raise QuestionError("the question has no words")  # "???", an emoji: nothing to look for
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return " ".join(question.split())


class Assistant:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def store(self) -> PassageStore:
        return open_store(self.settings)

    @cached_property
    def retriever(self) -> HybridRetriever:
        from rag.embedding import make_query_encoder

        return HybridRetriever(self.settings, self.store, make_query_encoder(self.settings))

    @cached_property
    def rules_threshold(self) -> float:
        """The hand-tuned answerer's refusal threshold: the setting if given, else the value calibrated for this
        index fingerprint (``rag/calibration.json``)."""
        if self.settings.refusal_threshold:
            return self.settings.refusal_threshold
        if CALIBRATION_FILE.is_file():
            entry = json.loads(CALIBRATION_FILE.read_text()).get(self.settings.fingerprint)
            if entry:
                return float(entry["threshold"])
        return UNCALIBRATED_THRESHOLD

    def threshold(self, answerer: DecidingAnswerer, asked: str = "") -> float:
        """The refusal threshold of an answerer, in its own units, for the question ``asked`` (the reader's differs
        for open questions)."""
        if answerer == "rules":
            return self.rules_threshold
        from rag.answering.questions import analyse

        return self.answerer.threshold_for(analyse(asked))

    def handed_to(self, asked: str, passages: Sequence[RetrievedPassage] = ()) -> DecidingAnswerer:
        """The answerer the question's form hands it to. ``hybrid`` hands the rules only the factoid questions whose
        kind of answer their patterns know (a date, a number, a name...), the questions their weights were set on;
        the reader takes the rest: open questions (it composes the few sentences that answer them; the rules quote
        one, and their threshold, set on factoid questions, refuses most open ones), questions the rules cannot type
        ("doria fall", "what did the spokesman call it"), for which they quote their best sentence, and questions for
        what someone named is ("who are the pkk", when the passages the answerers read write it as a name), which the
        rules answer with a name. The reader still reads a question handed to the rules, and may take it
        (``answer``, ``_reader_takes_over``)."""
        if self.settings.answerer != "hybrid":
            return self.settings.answerer
        from rag.answering.questions import analyse, describes_a_name

        if analyse(asked).open or rule_kind(asked) == "other":
            return "reader"
        described = describes_a_name(asked, [passage.text for passage in passages[:ANSWER_POOL]])
        return "reader" if described else "rules"

    @cached_property
    def answerer(self) -> Answerer:
        return Answerer(self.settings.model_path, self.settings.cache_dir, self.settings.refusal_threshold or None)

    def needs_index(self) -> bool:
        return self.store.count() == 0 or not lexical_index_current(self.settings, self.store)

    def ensure_index(self, log: Callable[[str], None]) -> IngestReport | None:
        """Make the index usable. Only a missing or empty directory is "no index yet" and gets the default corpus;
        an index that held articles and lost them raises ``IndexProblem`` naming the rebuild command. A lexical
        index behind the store or damaged (a run killed before its last step) is rebuilt, unless another process
        is writing the index: then the previous complete version answers. Returns the report of an ingest, if any.
        """
        state = index_state(self.settings)
        fresh = state.empty or (state.manifest is not None and not state.manifest.held_articles)
        # A new client of a server store that holds articles adopts them rather than adding the default corpus.
        if fresh and self.store.count() == 0:
            corpus = ", ".join(str(path) for path in self.settings.corpus)
            log(f"no index yet in {self.settings.index_dir}: indexing {corpus} first")
            report = self.ingest()
            log(report.summary())
            return report
        embedded = not self.settings.chroma_url
        if state.manifest is None and embedded and not (self.settings.index_dir / CHROMA_DIR).is_dir():
            # Not an index at all: say so before the store would create one among the directory's files.
            raise IndexProblem(unusable_reason(self.settings, None, 0) or "")
        reason = unusable_reason(self.settings, state.manifest, self.store.count())
        if reason:
            raise IndexProblem(reason)
        # An index from before manifests, or whose catalogue is in an earlier format, is adopted: an ingest of
        # nothing records its manifest and writes its catalogue from the store (once; 12 s on 21,000 articles). So
        # is a server store that another client changed (this client's catalogue and lexical index are its own).
        adopt = (state.manifest is None or not self.store.manifest.catalogue_current(self.settings.fingerprint)
                 or self.store.behind() is not None)
        if adopt or not lexical_index_current(self.settings, self.store):
            self._refresh_derived(log, adopt)
        return None

    def _refresh_derived(self, log: Callable[[str], None], adopt: bool) -> None:
        """Rebuild the lexical index (and record a manifest and catalogue for an index from before them) as the
        writer, if no other process is writing."""
        if not writable(self.settings.index_dir):
            log(f"{self.settings.index_dir} is read-only and its lexical index or article catalogue is behind: "
                "answering with them as they are")
            return
        try:
            with writer_lock(self.settings.index_dir, wait=0):
                recorded = self.store.manifest.read(self.settings.fingerprint)
                if recorded is not None and recorded.state != "ok":
                    log(f"an ingest into {self.settings.index_dir} was interrupted: answering from what it stored; "
                        "run it again to finish it")
                if adopt:
                    log(f"recording the manifest and article catalogue of {self.settings.index_dir} from the store")
                    ingest_locked([], self.settings, self.store, log)
                elif not lexical_index_current(self.settings, self.store):
                    log("the lexical index is behind the stored passages, damaged, or from an earlier version: "
                        "rebuilding it")
                    build_lexical_index(self.settings, self.store)
        except IndexBusy:
            log("another process is writing the index: answering from the lexical index as it was")
        self._forget_index()

    def follow_store(self) -> None:
        """With a server store, catch up with what other clients changed since this one last looked (one small
        request to the server per call): the catalogue, counts and lexical index are brought up to date."""
        if self.store.behind() is not None:
            self._refresh_derived(lambda message: None, adopt=True)

    def ingest(self, paths: Sequence[Path] | None = None) -> IngestReport:
        report = ingest(list(paths or self.settings.corpus), self.settings, self.store)
        self._forget_index()
        return report

    def remove_file(self, path: Path) -> IngestReport:
        """Remove the articles of one ingested file (an upload: the caller takes the file away)."""
        report = remove_file(str(path), self.settings, self.store)
        self._forget_index()
        return report

    def _forget_index(self) -> None:
        # The lexical index has a new version and the counts changed: both are read again on next use.
        self.__dict__.pop("retriever", None)
        self.__dict__.pop("_stats", None)

    def ask(self, question: str, history: Sequence[str] = (), scope: Scope | None = None,
            previous_answer: str | None = None) -> Answer:
        """The answer to ``question`` (a follow-up to the ``history`` questions, the last of which was answered
        ``previous_answer``), from the articles ``scope`` allows (all of them when it is None or empty)."""
        question = check_question(question)
        self.follow_store()
        if self.settings.answerer != "rules":
            self.answerer.reader  # noqa: B018  (its graph opens in the background while the question is retrieved)
        asked = contextualize(question, history, self.retriever, previous_answer)
        vector = self.retriever.embed_question(asked)
        passages = self.retriever.retrieve(asked, vector, scope=scope)
        answer = self.answer(question, asked, vector, passages)
        return dataclasses.replace(answer, scope=scope) if scope else answer

    def answer(self, question: str, asked: str, vector: Any, passages: list[RetrievedPassage]) -> Answer:
        """The answer the answerer ``asked`` is handed to gives, or a refusal when its short answer is not of the kind
        asked for: a figure that is no amount of money for "how much did the firm pay" ("17" from "his 17th year")
        says the articles do not give the amount."""
        from rag.answering.questions import answers_amount, asks_for_money

        answer = self._decided(question, asked, vector, passages)
        quote = answer.citations[0].quote if answer.citations else ""
        short = answer.short_answer
        if short and asks_for_money(answer.asked) and not answers_amount(answer.asked, short, quote):
            return dataclasses.replace(answer, answer=refusal(answer.asked), short_answer=None, answerable=False,
                                       citations=[])
        return answer

    def _decided(self, question: str, asked: str, vector: Any, passages: list[RetrievedPassage]) -> Answer:
        from rag.answering.questions import analyse

        shown = [passage_hit(passage) for passage in passages[: self.settings.top_k]]
        # Every signal of the answerers matches the question's words in the passages: read initials as the names
        # the passages write out.
        asked, vector = self.retriever.written_out(asked, vector, passages)
        form = analyse(asked)
        if not form.terms and not form.names:
            # Nothing to look for ("is it?"; "what about it" with no conversation before it): no passage answers it.
            return Answer(question, refusal(asked), None, False, [], shown, asked=asked)
        pool = passages[:ANSWER_POOL]
        handed_to_rules = self.handed_to(asked, passages) == "rules"
        ruled = self._rules_answer(question, asked, vector, pool, shown) if handed_to_rules else None
        if ruled is not None and self.settings.answerer == "rules":
            return ruled
        composed = self.answerer.answer(asked, vector, pool, self.retriever.rarity)
        if ruled is not None and not self._reader_takes_over(ruled, composed, asked):
            return ruled
        if not composed.answerable:
            return Answer(question, refusal(asked), None, False, [], shown, composed.support, asked,
                          decided_by="reader")
        citations = [cite(n, quote.passage, quote.start, quote.end, quote.score)
                     for n, quote in enumerate(composed.quotes, start=1)]
        return Answer(question, composed.text, composed.short_answer, True, citations, shown, composed.support, asked,
                      decided_by="reader")

    @staticmethod
    def _reader_takes_over(ruled: Answer, composed: Composed, asked: str) -> bool:
        """Whether the reader answers a question handed to the rules, with a short answer: when it is sure
        (``READER_SURE``), or, when the rules refuse it, likely right (``READER_LIKELY``) with an answer of the kind
        asked for (a proper name when the question asks for a name: "the name of the official who leads the militia" is
        not answered by "Ruvian militias"); when both find their answers in the same sentence but pick other words there
        (the trained reader picks them better); and for a question asking where, when both answer (news tells a place as
        often as it names it: "in the hills north of the town", where the rules' patterns find the nearest town's name).
        The reader decides, answering or refusing, when the rules' answer to a "who" question is a name the question
        holds (``names_the_asked``; "which party" may well be answered by "the Labour Party"). Never when the rules
        found its answer in a tighter span of the same sentence ("Oct. 17" in "Oct. 17, four months"), nor, for an
        amount, with an answer holding no figure where the rules' holds one ("higher" against "12 bln dlrs" for "how
        much"), nor from a passage about another year than the one asked."""
        from rag.answering.questions import (
            NAME_ASKED,
            another_year,
            answers_amount,
            asks_for_money,
            fits_kind,
            is_proper_name,
        )

        kind = rule_kind(asked)
        if ruled.short_answer and kind == "person" and names_the_asked(ruled.short_answer, asked):
            return True  # the reader answers, or refuses
        if not composed.answerable or composed.short_answer is None:
            return False
        if (kind in AMOUNTS and ruled.short_answer and fits_kind(ruled.short_answer, kind)
                and not fits_kind(composed.short_answer, kind)):
            return False
        if composed.quotes and another_year(asked, kind, composed.quotes[0].passage.text):
            return False
        if asks_for_money(asked):
            reads = answers_amount(asked, composed.short_answer, composed.quotes[0].text if composed.quotes else "")
            if reads != answers_amount(asked, ruled.short_answer, ruled.citations[0].quote if ruled.citations else ""):
                return reads  # the one that gives an amount of money answers "how much"
        sure = composed.support >= READER_SURE
        where = ruled.answerable and kind == "place" and WHERE.search(asked) is not None
        if not ruled.answerable:
            return sure or (composed.support >= READER_LIKELY and fits_kind(composed.short_answer, kind)
                            and (NAME_ASKED.search(asked) is None or is_proper_name(composed.short_answer)))
        if not (ruled.citations and composed.quotes):
            return sure
        cited, quoted = ruled.citations[0], composed.quotes[0]
        same_sentence = (cited.doc_id == quoted.passage.metadata["article_id"]
                         and overlap_fraction((cited.start, cited.end), (quoted.start, quoted.end)) > 0
                         and (ruled.short_answer or "") in quoted.text)
        if not same_sentence:
            return sure or where
        if narrows(ruled.short_answer, composed.short_answer):
            return False
        return sure or where or ruled.short_answer != composed.short_answer

    @cached_property
    def llm(self) -> ChatModel:
        """The language model ``settings.llm`` names (imported and loaded on first use; raises
        ``rag.generation.llm.LLMUnavailable`` with one line when it cannot be used)."""
        from rag.generation.llm import load_model

        return load_model(self.settings)

    def generate(self, question: str, history: Sequence[tuple[str, str]] = (),
                 retrieved: tuple[Any, list[RetrievedPassage]] | None = None, scope: Scope | None = None,
                 previous_answer: str | None = None) -> Iterator[GenerationEvent]:
        """A generated answer from ``self.llm``, as events: each piece of text the model writes, each of its
        sentences once checked, and last the ``Answer``, which is the extractive ``answer(...)`` when the model
        fails or none of its sentences is supported by the passages it cites. ``history`` holds the earlier
        (question, answer) turns; ``retrieved`` is (question vector, passages) when already retrieved; ``scope``
        keeps retrieval to some articles and ``previous_answer`` rewrites a follow-up, as for ``ask``."""
        from rag.generation.chain import Done, generate

        self.follow_store()
        for event in generate(self, self.llm, question, history, retrieved, scope, previous_answer):
            if isinstance(event, Done) and scope:
                event = dataclasses.replace(event, answer=dataclasses.replace(event.answer, scope=scope))
            yield event

    def _rules_answer(self, question: str, asked: str, vector: Any, pool: list[RetrievedPassage],
                      shown: list[PassageHit]) -> Answer:
        from rag.answering.questions import another_year
        from rag.answering.rule_forms import analyse
        from rag.answering.rules import choose_sentence

        form = analyse(asked)
        choice = choose_sentence(form, vector, pool)
        if (choice is None or choice.support < self.rules_threshold
                or another_year(asked, form.kind, choice.passage.text)):
            return Answer(question, refusal(asked), None, False, [], shown, choice.support if choice else 0.0, asked)
        citations = [cite(1, choice.passage, choice.start, choice.end, choice.score)]
        text = f"{in_quotes(citations[0].quote)} [1]"
        short = None
        if choice.short_answer is not None:
            start, end = choice.short_answer
            short = choice.passage.text[start - choice.passage.start : end - choice.passage.start]
            text = f"{short}: {text}"
        return Answer(question, text, short, True, citations, shown, choice.support, asked)

    @cached_property
    def _stats(self) -> dict[str, int]:
        return {"articles": self.store.article_count(), "passages": self.store.count()}

    def stats(self) -> dict[str, int]:
        """Articles (from the catalogue, without reading the store) and passages indexed; kept until the next
        ingest."""
        return dict(self._stats)


def rule_kind(asked: str) -> AnswerKind:
    """The kind of answer the rules' question forms see in ``asked`` (the kind a question handed to them has)."""
    from rag.answering.rule_forms import analyse

    return analyse(asked).kind


def names_the_asked(short: str, asked: str) -> bool:
    """Whether a name given as the answer is one the question already holds, by its last word ("Mara Quist" for "who
    did quist replace"): the patterns took the subject of the question for its answer."""
    from rag.answering.questions import STOPWORDS, tokens
    from rag.answering.terms import term_keys

    words = short.split()
    if len(words) < 2 or not words[-1][:1].isupper():
        return False
    last = [word for word in tokens(words[-1]) if word not in STOPWORDS]
    asked_keys = {key for word in tokens(asked) for key in term_keys(word)}
    return bool(last) and bool(term_keys(last[-1]) & asked_keys)


def narrows(tighter: str | None, wider: str | None) -> bool:
    """Whether ``tighter`` is a shorter answer found inside ``wider``, as whole words."""
    # Not a number's first digits either: "2" is not in "2.5 million", nor "10" in "10,000".
    return bool(tighter and wider and tighter != wider
                and re.search(rf"(?<!\w){re.escape(tighter)}(?!\w|[.,]\d)", wider))


def refusal(question: str) -> str:
    return (f"The articles don't say. Nothing in the indexed articles answers “{question}”; "
            "the closest passages are listed below.")
