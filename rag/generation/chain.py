"""The generated answer: retrieve -> prompt -> stream from the model -> check each sentence -> answer or fall back.

Events come out as the model writes: the passages once retrieved (``Retrieved``), every piece of text
(``Token``), every sentence once checked (``Checked``), and last the ``Answer`` (``Done``). Only checked sentences
may be shown: a consumer that streams shows the verified sentences as they come and never the raw text. The answer
is made of the verified sentences, each citation pointing at the sentence of the cited passage that supports it;
when the model fails (timeout, connection, HTTP error, malformed reply) or none of its sentences is verified, it is
the extractive answer, marked ``extractive-fallback`` with the reason.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.citing import Citation, cite, passage_hit
from rag.conversation import contextualize
from rag.generation.llm import ChatModel, GenerationError
from rag.generation.prompt import build_messages
from rag.generation.verification import SentenceStream, Verdict, evidence_of, verify
from rag.pipeline import Answer, SentenceCheck, Timing, check_question
from rag.retrieval import RetrievedPassage, Scope
from rag.splitting import english_sentence_tokenizer

if TYPE_CHECKING:
    from rag.pipeline import Assistant


@dataclass(frozen=True)
class Retrieved:
    """The passages are retrieved and the prompt is about to be sent (passage n is ``passages[n - 1]``)."""

    passages: list[RetrievedPassage]


@dataclass(frozen=True)
class Token:
    """A piece of the model's raw reply: not checked, never to be shown as it is."""

    text: str


@dataclass(frozen=True)
class Checked:
    """A sentence of the reply, checked: show it only if ``verdict.verified``."""

    verdict: Verdict


@dataclass(frozen=True)
class Done:
    answer: Answer
    error: str | None = None
    """Why the model failed (timeout, connection, HTTP error, malformed reply), if it did."""


GenerationEvent = Retrieved | Token | Checked | Done


def generate(assistant: Assistant, model: ChatModel, question: str, history: Sequence[tuple[str, str]] = (),
             retrieved: tuple[Any, list[RetrievedPassage]] | None = None, scope: Scope | None = None,
             previous_answer: str | None = None) -> Iterator[GenerationEvent]:
    question = check_question(question)
    asked = contextualize(question, [earlier for earlier, _ in history], assistant.retriever, previous_answer)
    if retrieved is None:
        vector = assistant.retriever.embed_question(asked)
        passages = assistant.retriever.retrieve(asked, vector, scope=scope)
    else:
        vector, passages = retrieved
    given = passages[: assistant.settings.top_k]
    evidence = [evidence_of(n, passage) for n, passage in enumerate(given, start=1)]
    english_sentence_tokenizer()  # loaded now, not while the model's time runs
    verdicts: list[Verdict] = []
    failure = None
    started = time.monotonic()
    first_token = None
    if not given:
        failure = "no passages were retrieved, so there was nothing to ask the model about"
    else:
        yield Retrieved(given)
        started = time.monotonic()
        stream = SentenceStream()
        try:
            for delta in model.stream(build_messages(asked, given, history)):
                if first_token is None:
                    first_token = time.monotonic() - started
                yield Token(delta)
                for claim in stream.feed(delta):
                    verdicts.append(verify(claim, evidence))
                    yield Checked(verdicts[-1])
            for claim in stream.close():
                verdicts.append(verify(claim, evidence))
                yield Checked(verdicts[-1])
        except GenerationError as error:
            failure = str(error)
    timing = Timing(_round(first_token), _round(time.monotonic() - started) or 0.0)
    yield Done(assemble(assistant, model.name, question, asked, vector, passages, verdicts, failure, timing),
               failure if given else None)


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def assemble(assistant: Assistant, model_name: str, question: str, asked: str, vector: Any,
             passages: list[RetrievedPassage], verdicts: Sequence[Verdict], failure: str | None,
             timing: Timing) -> Answer:
    """The answer from the verified sentences, or the extractive answer with the reason it replaced them."""
    shown = [passage_hit(passage) for passage in passages[: assistant.settings.top_k]]
    citations: list[Citation] = []
    numbered: dict[tuple[str, int, int], int] = {}
    parts, checks = [], []
    for verdict in verdicts:
        claim = verdict.claim
        if not verdict.verified or failure:
            checks.append(SentenceCheck(claim.text, "verified" if verdict.verified else "dropped", verdict.reason,
                                        list(claim.cites)))
            continue
        numbers: list[int] = []
        for support in verdict.supports:
            key = (support.passage.id, support.start, support.end)
            if key not in numbered:
                numbered[key] = len(citations) + 1
                citations.append(cite(numbered[key], support.passage, support.start, support.end, support.score))
            if numbered[key] not in numbers:
                numbers.append(numbered[key])
        parts.append(with_markers(claim.body, numbers))
        checks.append(SentenceCheck(claim.text, "verified", verdict.reason, list(claim.cites), numbers))
    if parts and not failure:
        return Answer(question, " ".join(parts), None, True, citations, shown, 0.0, asked, mode="llm",
                      model=model_name, sentences=checks, timing=timing,
                      decided_by=assistant.handed_to(asked, passages))
    extractive = assistant.answer(question, asked, vector, passages)
    return dataclasses.replace(extractive, mode="extractive-fallback", model=model_name, sentences=checks,
                               fallback_reason=failure or nothing_verified(verdicts), timing=timing)


def nothing_verified(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "the model's reply held no sentence"
    if all(verdict.reason.startswith("declines") for verdict in verdicts):
        return "the model said the passages do not answer"
    count = len(verdicts)
    return (f"{'the' if count == 1 else 'none of the'} {count if count > 1 else ''} sentence{'s' if count > 1 else ''}"
            f" the model wrote {'was' if count == 1 else 'is'}{' not' if count == 1 else ''} supported by the "
            "passages it cites").replace("  ", " ")


def with_markers(body: str, numbers: Sequence[int]) -> str:
    """``"The city fell on July 10."`` with citations 1 and 2: ``"The city fell on July 10 [1][2]."``."""
    markers = "".join(f"[{n}]" for n in numbers)
    end = re.search(r"[.!?…]+[\"'”’)]*$", body)
    if end:
        return f"{body[: end.start()].rstrip()} {markers}{body[end.start():]}"
    return f"{body} {markers}"
