"""The extractive answerer: rank the candidate sentences, let the trained reader read the best few with their
neighbours, decide whether to answer, and compose the answer from exact spans of the articles.

Nothing is invented: a short answer is a span the reader found, every quoted sentence is a span of an article.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from rag.answering.descriptions import describe, described_subject
from rag.answering.linear import LinearModel, stored_models
from rag.answering.questions import FIGURE_KINDS, AnswerKind, QuestionForm, analyse, another_year, typed_spans
from rag.answering.reader import SpanReader, SpanScore, load_reader
from rag.answering.refusal import REFUSAL_FEATURES, RefusalSignals
from rag.answering.sentences import SENTENCE_FEATURES, CandidateSentence, candidate_sentences, neighbours
from rag.answering.spans import MARGIN_ONLY, SPAN_FEATURES, span_features
from rag.answering.terms import missing_share, text_keys
from rag.citing import in_quotes
from rag.embedding import Vectors
from rag.metrics import normalize_answer
from rag.retrieval import RetrievedPassage
from rag.spelling import in_text_spelling

READ_SENTENCES = 5
"""Top-ranked sentences the reader reads at most, each with its neighbours (the reader is the costly step)."""
READ_TOKENS = 384
"""Reader tokens per question, the question repeated in each window: the reader's cost is its tokens (make bench)."""
WINDOW_TOKENS = 72
MIN_WINDOW_TOKENS = 16
OPEN_SENTENCES = 4
RUN_ON = 2
"""Sentences after its first that an open answer takes with it, the second only when the ranker does not score it
far below the first (``OPEN_SCORE_GAP``). Set on the 34 open questions of ``evals/dev.jsonl`` and
``evals/tuning.jsonl``: answered with every key fact, 18 with the next sentence alone, 21 with the next two."""
OPEN_SCORE_GAP = 3.0
"""An open answer takes further sentences whose ranker log-odds are within this of its best one's."""
NEAR_DUPLICATE = 0.92
"""Cosine above which two sentences say the same thing (an open answer keeps one of them)."""
MAX_SOURCES = 3
AGREEMENT_DEPTH = 8
"""Best-ranked sentences searched for the same short answer in another article."""


@dataclass(frozen=True)
class Quote:
    passage: RetrievedPassage
    start: int
    end: int
    """Offsets in the article text; ``start:end`` lies inside the passage."""
    score: float

    @property
    def text(self) -> str:
        return self.passage.text[self.start - self.passage.start : self.end - self.passage.start]


@dataclass(frozen=True)
class ReadWindow:
    candidate: CandidateSentence
    start: int
    end: int
    """The article text the reader read: the candidate sentence with its neighbours."""
    span: SpanScore | None
    """The reader's best span, offsets in the article text."""
    features: tuple[float, ...] = ()
    """The span selector's signals for ``span`` (none without a span)."""
    selection: float = float("-inf")
    """The selector's log-odds that ``span`` is the answer."""


@dataclass(frozen=True)
class Reading:
    """Everything known about a question before composing: ranked sentences, what the reader found, the refusal
    signals and their verdict."""

    form: QuestionForm
    ranked: list[CandidateSentence]
    windows: list[ReadWindow]
    best: ReadWindow | None
    """The window whose span the selector chose (``rag.answering.spans``)."""
    signals: RefusalSignals
    support: float
    """The refusal model's log-odds that the articles answer the question."""
    question: str = ""
    """The question as read."""


@dataclass(frozen=True)
class Composed:
    answerable: bool
    text: str
    short_answer: str | None
    quotes: list[Quote] = field(default_factory=list)
    support: float = 0.0


# Used until ``make train-answerer`` has fitted them: the weights the hand-tuned answerer used.
DEFAULT_RANKER = LinearModel(SENTENCE_FEATURES, (1.0, 0.6, 0.45, 0.35, -0.5, 0.15, 0.0), 0.0)
DEFAULT_REFUSAL = LinearModel(REFUSAL_FEATURES, (1.0, 0.0, 0.0, 0.0, 0.0, -4.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0.0)


class Answerer:
    def __init__(self, base_model: Path, cache_dir: Path, refusal_threshold: float | None = None) -> None:
        self.base_model = base_model
        self.cache_dir = cache_dir
        self.refusal_threshold = refusal_threshold

    @cached_property
    def reader(self) -> SpanReader:
        return load_reader(self.base_model, self.cache_dir)

    @cached_property
    def ranker(self) -> LinearModel:
        record = stored_models().get("ranker")
        return LinearModel.from_json(record, SENTENCE_FEATURES) if record else DEFAULT_RANKER

    @cached_property
    def selector(self) -> LinearModel:
        record = stored_models().get("selector")
        return LinearModel.from_json(record, SPAN_FEATURES) if record else MARGIN_ONLY

    @cached_property
    def refusal(self) -> LinearModel:
        record = stored_models().get("refusal")
        return LinearModel.from_json(record, REFUSAL_FEATURES) if record else DEFAULT_REFUSAL

    @property
    def threshold(self) -> float:
        return self.refusal.threshold if self.refusal_threshold is None else self.refusal_threshold

    @cached_property
    def open_threshold(self) -> float:
        """Open questions' threshold (``rag.training.answerer.open_refusal``): their support rests on retrieval
        alone. The factoid threshold where none was set, or where the settings set one for all questions."""
        record = stored_models().get("open_refusal")
        return float(record["threshold"]) if record and self.refusal_threshold is None else self.threshold

    def threshold_for(self, form: QuestionForm) -> float:
        return self.open_threshold if form.open else self.threshold

    def read(self, question: str, question_vector: Vectors, passages: Sequence[RetrievedPassage],
             rarity: Callable[[str], float] = len) -> Reading:
        form = analyse(question)
        ranked, evidence = candidate_sentences(form, question_vector, passages, self.ranker, rarity)
        spans = self.windows(question, ranked)
        texts = window_texts(spans)
        # The reader reads the question in the articles' spelling; the other signals fold spellings themselves.
        as_read = in_text_spelling(question, "\n".join(texts), self.reader.tokenizer.is_word) if texts else question
        found = self.reader.read(as_read, texts) if texts else []
        keys = text_keys(question)
        windows = []
        for rank, ((candidate, start, end), span) in enumerate(zip(spans, found, strict=True)):
            if span is None:
                windows.append(ReadWindow(candidate, start, end, None))
                continue
            placed = SpanScore(start + span.start, start + span.end, span.score, span.null)
            features = span_features(form, keys, span.margin, span.score, span.null, candidate.score, rank,
                                     _span_text(candidate.passage, placed.start, placed.end))
            windows.append(ReadWindow(candidate, start, end, placed, features, self.selector.score(features)))
        best = max((w for w in windows if w.span), key=lambda w: w.selection, default=None)
        span = best.span if best else None
        text = _span_text(best.candidate.passage, span.start, span.end) if best and span else ""
        around = _span_text(best.candidate.passage, best.start, best.end) if best else ""
        signals = RefusalSignals.of(form, span, text, around, ranked, evidence)
        return Reading(form, ranked, windows, best, signals, self.refusal.score(signals.values), question)

    def windows(self, question: str, ranked: Sequence[CandidateSentence]) -> list[tuple[CandidateSentence, int, int]]:
        """What the reader reads: the best-ranked sentences, each with the sentence after and the one before it
        while the window stays within ``WINDOW_TOKENS``, until ``READ_TOKENS`` are spent (the reader's cost is its
        tokens, question included)."""

        def tokens(text: str) -> int:
            return len(self.reader.tokenizer.pieces(text)[0])

        question_tokens = tokens(question) + 3
        budget = READ_TOKENS
        chosen: list[tuple[CandidateSentence, int, int]] = []
        for candidate in ranked:
            if len(chosen) == READ_SENTENCES or budget < question_tokens + MIN_WINDOW_TOKENS:
                break
            if any(c.passage.id == candidate.passage.id and start <= candidate.start < end for c, start, end in chosen):
                continue
            # Passages overlap: a sentence that ends (or opens) its passage is read in the one that goes on past it.
            read = _read_in(ranked, candidate)
            parts, size = [read], tokens(read.text)
            for extra in _after_and_before(ranked, read):
                extra_size = tokens(extra.text)
                if size + extra_size <= min(WINDOW_TOKENS, budget - question_tokens):
                    parts.append(extra)
                    size += extra_size
            chosen.append((read, min(p.start for p in parts), max(p.end for p in parts)))
            budget -= question_tokens + size
        return chosen

    def answer(self, question: str, question_vector: Vectors, passages: Sequence[RetrievedPassage],
               rarity: Callable[[str], float] = len) -> Composed:
        reading = self.read(question, question_vector, passages, rarity)
        if not reading.ranked or reading.support < self.threshold_for(reading.form) or (
                reading.best is not None and for_another_year(reading, reading.best)):
            return Composed(False, "", None, [], reading.support)
        if reading.form.open:
            return compose_open(reading)
        return compose_description(question, reading) or compose_factoid(reading)


def for_another_year(reading: Reading, window: ReadWindow) -> bool:
    """Whether the passage a window's answer would come from gives it for another year than the one asked."""
    return another_year(reading.question, reading.form.kind, window.candidate.passage.text)


def window_texts(windows: Sequence[tuple[CandidateSentence, int, int]]) -> list[str]:
    """The article text of each window (``Answerer.windows``)."""
    return [candidate.passage.text[start - candidate.passage.start : end - candidate.passage.start]
            for candidate, start, end in windows]


def compose_factoid(reading: Reading) -> Composed:
    """The reader's span as the short answer, quoted in its sentence; the same answer in other articles cited too,
    and a different figure in another article shown beside it with its source."""
    best = reading.best
    if best is None or best.span is None:
        return compose_open(reading)
    sentence = _sentence_holding(reading.ranked, best.candidate.passage, best.span.start)
    quote = _quote_for(reading, sentence, best.span)
    short = answer_only(_span_text(best.candidate.passage, best.span.start, best.span.end), reading.form.kind)
    quotes = [quote]
    key = f" {normalize_answer(short)} "
    agreeing = [c for c in reading.ranked[:AGREEMENT_DEPTH] if c.article != sentence.article and key.strip()
                and key in f" {normalize_answer(c.text)} "]
    for candidate in agreeing:
        if len(quotes) < MAX_SOURCES and all(q.passage.metadata.get("article_id") != candidate.article
                                             for q in quotes):
            quotes.append(Quote(candidate.passage, candidate.start, candidate.end, candidate.score))
    differing = _differing_figure(reading, best, short)
    if differing is None:
        return Composed(True, f"{short}: {_quoted(quotes)}", short, quotes, reading.support)
    other_short, other_quote = differing
    quotes.append(other_quote)
    text = (f"{short} [1]; another article gives {other_short} [{len(quotes)}]. {_quoted(quotes)}")
    return Composed(True, text, short, quotes, reading.support)


def compose_description(question: str, reading: Reading) -> Composed | None:
    """For a question asking what something named is, the description the articles give it (``descriptions``) as
    the short answer, quoted in its sentence; ``None`` when the question asks something else or no sentence read
    describes it."""
    texts = [candidate.text for candidate in reading.ranked]
    subject = described_subject(question, texts)
    found = describe(subject, texts) if subject else None
    if found is None:
        return None
    sentence = reading.ranked[found.sentence]
    quote = Quote(sentence.passage, sentence.start, sentence.end, sentence.score)
    short = sentence.text[found.start : found.end]
    return Composed(True, f"{short}: {_quoted([quote])}", short, [quote], reading.support)


def answer_only(short: str, kind: AnswerKind) -> str:
    """The short answer without the clause the reader ran on into after a comma ("Oct. 17, four months" for "when"
    reads "Oct. 17"): what opens it before the comma is already of the kind asked for."""
    opening = next(iter(typed_spans(short, kind)), None)
    if opening is not None and opening[0] == 0 and short[opening[1] :].startswith(","):
        return short[: opening[1]]
    return short


def _differing_figure(reading: Reading, best: ReadWindow, short: str) -> tuple[str, Quote] | None:
    """A confident reading of another article with a different date or figure, for a question that asks for one."""
    if reading.form.kind not in FIGURE_KINDS or best.span is None:
        return None
    for window in reading.windows:
        span = window.span
        if (window is best or span is None or window.candidate.article == best.candidate.article or span.margin < 0
                or span.margin < best.span.margin - OPEN_SCORE_GAP or for_another_year(reading, window)):
            continue
        text = _span_text(window.candidate.passage, span.start, span.end)
        if normalize_answer(text) != normalize_answer(short) and typed_spans(text, reading.form.kind):
            sentence = _sentence_holding(reading.ranked, window.candidate.passage, span.start)
            return text, _quote_for(reading, sentence, span)
    return None


def compose_open(reading: Reading) -> Composed:
    """The few sentences that answer an open question: the one the reader points to, then the best-ranked others
    that say something new, from one or several articles, each quoted with its own source."""
    best = reading.best
    # The reader's chosen span points at the answering sentence even when it prefers "no answer" in its window:
    # an explanation is rarely a span it was trained to find, and the ranker's best sentence is a worse pointer
    # (on the open questions of ``evals/tuning.jsonl``, 17 of 24 answered with every key fact against 15).
    anchor = (_sentence_holding(reading.ranked, best.candidate.passage, best.span.start)
              if best and best.span else reading.ranked[0])
    # An explanation or an account runs on past the sentence that names the subject ("the swift victory in the
    # town was the first sign..." then what the sign was; "X was asked whether..." then the reply): the anchor's
    # next sentences come with it.
    # Passages overlap: an anchor that ends its passage runs on in the retrieved passage that goes on past it.
    running = _going_on(reading.ranked, anchor)
    following = [c for c in neighbours(reading.ranked, running, RUN_ON) if c.index > running.index
                 and (c.index == running.index + 1 or c.score >= anchor.score - OPEN_SCORE_GAP)]
    chosen = [running, *following]
    for candidate in reading.ranked:
        if len(chosen) == OPEN_SENTENCES or candidate.score < anchor.score - OPEN_SCORE_GAP:
            break
        if candidate is anchor or any(float(candidate.vector @ c.vector) >= NEAR_DUPLICATE
                                      or normalize_answer(candidate.text) == normalize_answer(c.text)
                                      for c in chosen):
            continue
        chosen.append(candidate)
    # In reading order within each article, the anchor's article first; adjacent sentences become one quote.
    order = {c.article: i for i, c in reversed(list(enumerate(chosen)))}
    chosen.sort(key=lambda c: (order[c.article], c.start))
    quotes: list[Quote] = []
    for candidate in chosen:
        last = quotes[-1] if quotes else None
        if (last is not None and last.passage.id == candidate.passage.id
                and _adjacent(reading.ranked, last, candidate)):
            quotes[-1] = Quote(last.passage, last.start, candidate.end, max(last.score, candidate.score))
        else:
            quotes.append(Quote(candidate.passage, candidate.start, candidate.end, candidate.score))
    return Composed(True, _quoted(quotes), None, quotes, reading.support)


def _going_on(ranked: Sequence[CandidateSentence], sentence: CandidateSentence) -> CandidateSentence:
    """``sentence`` as it stands in whichever retrieved passage holds the most sentences after it."""
    return max(_copies(ranked, sentence), key=lambda copy: _around(ranked, copy)[1])


def _read_in(ranked: Sequence[CandidateSentence], sentence: CandidateSentence) -> CandidateSentence:
    """``sentence`` as it stands in whichever retrieved passage holds the most sentences on its shorter side."""
    return max(_copies(ranked, sentence), key=lambda copy: min(_around(ranked, copy)))


def _copies(ranked: Sequence[CandidateSentence], sentence: CandidateSentence) -> list[CandidateSentence]:
    """``sentence`` first, then the same sentence in the other retrieved passages (passages overlap)."""
    return [sentence, *(c for c in ranked if c.article == sentence.article and c.start == sentence.start)]


def _around(ranked: Sequence[CandidateSentence], sentence: CandidateSentence) -> tuple[int, int]:
    """How many sentences of its passage come before and after ``sentence``."""
    same = [c.index for c in ranked if c.passage.id == sentence.passage.id]
    return sum(1 for i in same if i < sentence.index), sum(1 for i in same if i > sentence.index)


def _after_and_before(ranked: Sequence[CandidateSentence], candidate: CandidateSentence) -> list[CandidateSentence]:
    around = {c.index: c for c in neighbours(ranked, candidate)}
    return [around[i] for i in (candidate.index + 1, candidate.index - 1) if i in around]


def _adjacent(ranked: Sequence[CandidateSentence], quote: Quote, candidate: CandidateSentence) -> bool:
    between = [c for c in ranked if c.passage.id == candidate.passage.id and quote.end <= c.start < candidate.start]
    return not between and quote.end <= candidate.start


def _sentence_holding(ranked: Sequence[CandidateSentence], passage: RetrievedPassage,
                      offset: int) -> CandidateSentence:
    inside = [c for c in ranked if c.passage.id == passage.id and c.start <= offset < c.end]
    if inside:
        return inside[0]
    return min((c for c in ranked if c.passage.id == passage.id), key=lambda c: abs(c.start - offset))


def _quote_for(reading: Reading, sentence: CandidateSentence, span: SpanScore) -> Quote:
    """The sentence holding the span; run on to the next (or back to the previous) sentence when the span crosses
    into it, or when the sentence does not name what the question names but its neighbour does (a paragraph that
    says "the town" and names it in the next sentence)."""
    start, end = min(sentence.start, span.start), max(sentence.end, span.end)
    around = neighbours(reading.ranked, sentence)
    for other in around:
        if other.start < end and other.end > start:
            start, end = min(start, other.start), max(end, other.end)
    names = reading.form.names or reading.form.terms
    if names and missing_share(names, text_keys(sentence.text)) == 1.0:
        for other in around:
            if other is not sentence and missing_share(names, text_keys(other.text)) < 1.0:
                start, end = min(start, other.start), max(end, other.end)
                break
    passage = sentence.passage
    start, end = max(start, passage.start), min(end, passage.end)
    return Quote(passage, start, end, sentence.score)


def _span_text(passage: RetrievedPassage, start: int, end: int) -> str:
    return passage.text[start - passage.start : end - passage.start].strip(" ,;:")


def _quoted(quotes: Sequence[Quote]) -> str:
    return " ".join(f"{in_quotes(q.text)} [{n}]" for n, q in enumerate(quotes, start=1))
