"""SQuAD v1.1 as a corpus (every paragraph an article) and a question set graded by gold paragraph, and its fixed
split by article into a train half (the reader learns from it) and a held-out half (results are reported on it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from rag.evaluation import Question

SPLIT_FILE = Path(__file__).resolve().parent.parent / "evals" / "squad-split.json"
Split = Literal["all", "train", "heldout"]


def load_squad(squad_file: Path) -> list[dict[str, Any]]:
    try:
        data: list[dict[str, Any]] = json.loads(squad_file.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{squad_file}: not a SQuAD v1.1 file ({error})") from None
    return data


def squad_split(data: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The committed split (``evals/squad-split.json``: article titles of each half); every article in one half."""
    split: dict[str, list[str]] = json.loads(SPLIT_FILE.read_text())
    unknown = {article["title"] for article in data} - set(split["train"]) - set(split["heldout"])
    if unknown:
        raise ValueError(f"{SPLIT_FILE}: articles in neither half: {', '.join(sorted(unknown)[:3])}")
    return split


def articles_of(data: list[dict[str, Any]], split: Split) -> list[dict[str, Any]]:
    if split == "all":
        return data
    titles = set(squad_split(data)[split])
    return [article for article in data if article["title"] in titles]


def paragraph_id(title: str, index: int) -> str:
    """The id of an article's ``index``-th paragraph in the corpus ``squad_corpus`` writes: ``ARTICLE-INDEX``."""
    return f"{title}-{index}"


def article_of(doc_id: str) -> str:
    """The SQuAD article a paragraph id (``paragraph_id``) belongs to."""
    return doc_id.rsplit("-", 1)[0]


def squad_corpus(squad_file: Path, workdir: Path, split: Split = "all") -> tuple[Path, list[Question]]:
    """Write every paragraph as a JSONL record (id ``ARTICLE-INDEX``, title the article's) and list the questions of
    the ``split`` half: the open setting indexes all 2,067 paragraphs whichever half is asked."""
    data = load_squad(squad_file)
    asked = {article["title"] for article in articles_of(data, split)}
    records, questions = [], []
    for article in data:
        title = article["title"].replace("_", " ")
        for index, paragraph in enumerate(article["paragraphs"]):
            doc_id = paragraph_id(article["title"], index)
            records.append(json.dumps({"id": doc_id, "title": title, "text": paragraph["context"]},
                                      ensure_ascii=False))
            for qa in paragraph["qas"] if article["title"] in asked else []:
                answers = tuple(dict.fromkeys(answer["text"] for answer in qa["answers"]))
                questions.append(Question(qa["id"], qa["question"], answers, (), (doc_id,), True))
    body = "\n".join(records) + "\n"
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / f"squad-{hashlib.sha256(body.encode()).hexdigest()[:12]}.jsonl"
    if not corpus.exists():
        corpus.write_text(body, encoding="utf-8")
    return corpus, questions


def gold_contexts(squad_file: Path) -> dict[str, str]:
    """Each question's paragraph, by question id."""
    return {qa["id"]: paragraph["context"] for article in load_squad(squad_file)
            for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
