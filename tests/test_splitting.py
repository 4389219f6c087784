"""Sentences and passages keep exact spans of the original text."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from rag.embedding import PassageEmbedder, make_passage_embedder
from rag.loading import Article, load_corpus
from rag.settings import load_settings
from rag.splitting import PassageSplitter, SplitError, locate_chunks, sentence_spans

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


# --- sentence_spans -------------------------------------------------------------------------------------------------


def test_abbreviations_do_not_end_sentences() -> None:
    text = ("On Oct. 14, the Syrian government said its troops seized the town of Mayadeen. "
            "Kurdish forces backed by the U.S. also are making a bid for the town. "
            "Gen. Ali Mayhoub called it a strategic victory.")
    assert sentences(text) == [
        "On Oct. 14, the Syrian government said its troops seized the town of Mayadeen.",
        "Kurdish forces backed by the U.S. also are making a bid for the town.",
        "Gen. Ali Mayhoub called it a strategic victory.",
    ]


def test_date_abbreviation_mid_sentence() -> None:
    text = "The town was liberated by coalition-backed Iraqi forces Aug. 30, ending the IS presence. It fell fast."
    assert sentences(text) == [
        "The town was liberated by coalition-backed Iraqi forces Aug. 30, ending the IS presence.",
        "It fell fast.",
    ]


def test_sentences_never_cross_a_paragraph_break() -> None:
    text = "Share your thoughts on this post\n\n%d bloggers like this:\nVisit Us On Twitter"
    found = sentences(text)
    assert found[0] == "Share your thoughts on this post"
    assert all("\n\n" not in sentence for sentence in found)


def test_sentence_spans_of_a_window_are_absolute_and_trimmed() -> None:
    text = "Ignored first. \n\n  Alpha went home.  Beta stayed.  \n\nIgnored last."
    start, end = text.index("Alpha") - 2, text.index("Ignored last")
    spans = sentence_spans(text, start, end)
    assert [text[s:e] for s, e in spans] == ["Alpha went home.", "Beta stayed."]
    for s, e in spans:
        assert start <= s < e <= end


def test_sentence_spans_of_the_seeds_slice_the_text() -> None:
    for article in load_corpus([SEEDS]).articles:
        for start, end in article.reporting:
            spans = sentence_spans(article.text, start, end)
            assert spans
            for s, e in spans:
                assert start <= s < e <= end
                assert article.text[s:e] == article.text[s:e].strip()
            assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans))
    ap = next(article for article in load_corpus([SEEDS]).articles if article.doc_id.startswith("000"))
    found = [ap.text[s:e] for region in ap.reporting for s, e in sentence_spans(ap.text, *region)]
    assert "Iraqi forces declared victory in Mosul on July 10." in found
    assert ("On Oct. 14, the Syrian government said its troops and allied fighters seized the town of Mayadeen, "
            "on the western bank of the Euphrates River.") in found


def test_splitting_sentences_leaves_scipy_and_sklearn_unimported_but_importable() -> None:
    # A fresh interpreter: NLTK's package init would import both (about 0.9 s of an ingest) for nothing Punkt uses.
    script = (
        "import sys\n"
        "from rag.splitting import sentence_spans\n"
        "assert sentence_spans('Gen. Ali left on Oct. 17. Then more.') == [(0, 25), (26, 36)]\n"
        "assert 'sklearn' not in sys.modules and 'scipy.stats' not in sys.modules, 'imported'\n"
        "import sklearn.feature_extraction, scipy.stats\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=SEEDS.parent, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


# --- locate_chunks --------------------------------------------------------------------------------------------------


def test_locate_chunks_finds_overlapping_chunks_in_order() -> None:
    text = "one two three four five six"
    assert locate_chunks(text, ["one two three", "three four five", "five six"]) == [(0, 13), (8, 23), (19, 27)]


def test_locate_chunks_with_repeated_text_moves_forward() -> None:
    text = "the town fell. the town fell. the town fell."
    spans = locate_chunks(text, ["the town fell.", "the town fell.", "the town fell."])
    assert spans == [(0, 14), (15, 29), (30, 44)]
    assert locate_chunks(text, []) == []


def test_locate_chunks_refuses_text_that_is_not_in_the_original() -> None:
    with pytest.raises(SplitError, match="not found"):
        locate_chunks("Iraqi forces declared victory", ["Iraqi  forces declared victory"])
    # Chunks must come in order: an earlier chunk after a later one is not found.
    with pytest.raises(SplitError):
        locate_chunks("alpha beta gamma", ["beta gamma", "alpha beta"])


# --- PassageSplitter with the model's tokenizer ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder() -> PassageEmbedder:
    settings = load_settings({}, environ={})
    return make_passage_embedder(settings)


def check_passages(article: Article, splitter: PassageSplitter, embedder: PassageEmbedder, chunk_size: int) -> None:
    passages = splitter.split(article)
    assert passages
    for passage in passages:
        assert article.text[passage.start : passage.end] == passage.text
        assert len(embedder.count_tokens(passage.text)) <= chunk_size
        assert any(start <= passage.start and passage.end <= end for start, end in article.reporting)
        assert passage.sentences
        for s, e in passage.sentences:
            assert passage.start <= s < e <= passage.end
    # Every word of the reporting is in some passage: nothing is lost between passages.
    for start, end in article.reporting:
        inside = sorted((p.start, p.end) for p in passages if start <= p.start and p.end <= end)
        assert inside[0][0] == start and inside[-1][1] == end
        for (_, previous_end), (next_start, _) in pairwise(inside):
            assert not article.text[previous_end:next_start].strip()


@pytest.mark.parametrize("chunk_size,overlap", [(160, 32), (64, 8)])
def test_passages_of_the_seeds_are_exact_spans_within_the_token_budget(
    embedder: PassageEmbedder, chunk_size: int, overlap: int
) -> None:
    splitter = PassageSplitter(chunk_size, overlap, embedder.count_tokens)
    for article in load_corpus([SEEDS]).articles:
        check_passages(article, splitter, embedder, chunk_size)


def test_passages_of_a_crlf_article_are_exact_spans(embedder: PassageEmbedder, tmp_path: Path) -> None:
    text = (SEEDS / "002_21e9abc1f7ceb01f.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    path = tmp_path / "crlf.txt"
    path.write_bytes(text.encode())
    [article] = load_corpus([path]).articles
    assert article.text == text
    splitter = PassageSplitter(160, 32, embedder.count_tokens)
    check_passages(article, splitter, embedder, 160)
    assert all(p.end <= text.index("Tags:") for p in splitter.split(article))


def test_passages_of_a_text_without_any_paragraph_break(embedder: PassageEmbedder) -> None:
    text = " ".join(f"Sentence number {n} says the town of Karsh fell on Oct. {n}." for n in range(1, 60))
    article = Article(key="k", doc_id="k", title="t", text=text, path="p", origin="o", reporting=((0, len(text)),))
    check_passages(article, PassageSplitter(64, 8, embedder.count_tokens), embedder, 64)
