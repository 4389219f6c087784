"""The windows the answerer reads for each train-half SQuAD question in the open setting: the data of the reader's
run with shared normalisation (``python -m rag.training.reader --answerer-windows``).

Each question is retrieved over all 2,067 paragraphs, its sentences ranked by the stored ranker and its windows
chosen by ``Answerer.windows``, exactly as at question time; half of the questions are asked as people type them.
The questions the span selector and the refusal model are fitted on (``FIT_QUESTIONS`` drawn with ``FIT_SEED``) are
left out, so those models see readings of windows the reader never trained on.

With ``unanswerable`` > 0, that share of the questions is also read twice more without an answer, every window
targeting "no answer": as near-topic (the passages holding the answer removed, so the windows are the best text
that does not answer it) and as a trap (a name swapped for another name of the article that the paragraph never
mentions, ``rag.training.traps``). The reader learns to abstain where the answerer's refusal is decided.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.answering.answerer import Answerer, window_texts
from rag.answering.questions import analyse
from rag.answering.sentences import candidate_sentences
from rag.pipeline import ANSWER_POOL
from rag.settings import Settings
from rag.squad import articles_of, load_squad
from rag.training.answerer import (
    FIT_QUESTIONS,
    FIT_SEED,
    TYPED_SHARE,
    holds_text,
    squad_assistant,
    train_questions,
    typed,
)
from rag.training.traps import article_names, swap_name


@dataclass(frozen=True)
class QuestionWindows:
    question: str
    answers: tuple[str, ...]
    texts: list[str]
    """The article text of each window the answerer reads, best-ranked first."""


def answerer_windows(squad_file: Path, settings: Settings, seed: int, log: Callable[[str], None],
                     unanswerable: float = 0.0) -> list[QuestionWindows]:
    fitted_on = {item.id for item in train_questions(squad_file, FIT_QUESTIONS, FIT_SEED)}
    squad = squad_assistant(settings, squad_file, log)
    answerer = Answerer(settings.model_path, settings.cache_dir)
    rng = random.Random(seed)
    # A generator of its own: without unanswerable readings, the questions and their typing are as before.
    negatives = random.Random(seed + 1)

    def read(question: str, answers: tuple[str, ...], removed: tuple[str, ...] = ()) -> QuestionWindows:
        """The windows the answerer reads for ``question``, every passage holding one of ``removed`` left out."""
        vector = squad.retriever.embed_question(question)
        passages = [p for p in squad.retriever.retrieve(question, vector)[:ANSWER_POOL]
                    if not holds_text(p.text, removed)]
        ranked, _ = candidate_sentences(analyse(question), vector, passages, answerer.ranker, squad.retriever.rarity)
        return QuestionWindows(question, answers, window_texts(answerer.windows(question, ranked)))

    found: list[QuestionWindows] = []
    questions = 0
    for article in articles_of(load_squad(squad_file), "train"):
        names = article_names(article) if unanswerable else []
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                typing = rng.random() < TYPED_SHARE
                question = typed(qa["question"]) if typing else qa["question"]
                if qa["id"] in fitted_on:
                    continue
                answers = tuple(sorted({answer["text"] for answer in qa["answers"]}))
                found.append(read(question, answers))
                questions += 1
                if unanswerable and negatives.random() < unanswerable:
                    found.append(read(question, (), removed=answers))
                    swapped = swap_name(qa["question"], paragraph["context"], names, negatives)
                    if swapped:
                        trap = typed(swapped[0]) if typing else swapped[0]
                        reading = read(trap, ())
                        # A swapped-in name that the text pairs with the same answer may well be answerable.
                        if not any(swapped[1].lower() in text.lower() and holds_text(text, answers)
                                   for text in reading.texts):
                            found.append(reading)
                if questions % 500 == 0:
                    log(f"windows of {questions} questions ({len(found)} readings)")
    return found
