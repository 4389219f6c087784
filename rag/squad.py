"""SQuAD v1.1 as a corpus (every paragraph an article) and a question set graded by gold paragraph."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rag.evaluation import Question


def squad_corpus(squad_file: Path, workdir: Path) -> tuple[Path, list[Question]]:
    """Write the paragraphs as JSONL records (id ``ARTICLE-INDEX``, title the article's) and list the questions."""
    try:
        data = json.loads(squad_file.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{squad_file}: not a SQuAD v1.1 file ({error})") from None
    records, questions = [], []
    for article in data:
        title = article["title"].replace("_", " ")
        for index, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{article['title']}-{index}"
            records.append(json.dumps({"id": doc_id, "title": title, "text": paragraph["context"]},
                                      ensure_ascii=False))
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(answer["text"] for answer in qa["answers"]))
                questions.append(Question(qa["id"], qa["question"], answers, (), (doc_id,), True))
    body = "\n".join(records) + "\n"
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / f"squad-{hashlib.sha256(body.encode()).hexdigest()[:12]}.jsonl"
    if not corpus.exists():
        corpus.write_text(body, encoding="utf-8")
    return corpus, questions
