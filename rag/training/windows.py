"""The windows the answerer reads for each train-half SQuAD question in the open setting: the data of the reader's
run with shared normalisation (``python -m rag.training.reader --answerer-windows``).

Each question is retrieved over all 2,067 paragraphs, its sentences ranked by the stored ranker and its windows
chosen by ``Answerer.windows``, exactly as at question time; half of the questions are asked as people type them.
The questions the span selector and the refusal model are fitted on (``FIT_QUESTIONS`` drawn with ``FIT_SEED``) are
left out, so those models see readings of windows the reader never trained on.
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
from rag.training.answerer import FIT_QUESTIONS, FIT_SEED, TYPED_SHARE, squad_assistant, train_questions, typed


@dataclass(frozen=True)
class QuestionWindows:
    question: str
    answers: tuple[str, ...]
    texts: list[str]
    """The article text of each window the answerer reads, best-ranked first."""


def answerer_windows(squad_file: Path, settings: Settings, seed: int,
                     log: Callable[[str], None]) -> list[QuestionWindows]:
    fitted_on = {item.id for item in train_questions(squad_file, FIT_QUESTIONS, FIT_SEED)}
    squad = squad_assistant(settings, squad_file, log)
    answerer = Answerer(settings.model_path, settings.cache_dir)
    rng = random.Random(seed)
    found: list[QuestionWindows] = []
    for article in articles_of(load_squad(squad_file), "train"):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                question = typed(qa["question"]) if rng.random() < TYPED_SHARE else qa["question"]
                if qa["id"] in fitted_on:
                    continue
                vector = squad.retriever.embed_question(question)
                passages = squad.retriever.retrieve(question, vector)[:ANSWER_POOL]
                ranked, _ = candidate_sentences(analyse(question), vector, passages, answerer.ranker,
                                                squad.retriever.rarity)
                answers = tuple(sorted({answer["text"] for answer in qa["answers"]}))
                found.append(QuestionWindows(question, answers, window_texts(answerer.windows(question, ranked))))
                if len(found) % 500 == 0:
                    log(f"windows of {len(found)} questions")
    return found
