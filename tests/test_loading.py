"""Loading, cleaning and HTML extraction: what becomes an article, its title, and which spans are reporting."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest

from rag.cleaning import clean, paragraph_spans
from rag.loading import extract_html, load_corpus

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
AP = SEEDS / "000_ddbd021a6e61dfd0.txt"
LWJ = SEEDS / "002_21e9abc1f7ceb01f.txt"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def covered(spans: tuple[tuple[int, int], ...], start: int, end: int) -> bool:
    """Whether any span overlaps ``[start, end)``."""
    return any(s < end and start < e for s, e in spans)


# --- cleaning on the seeds ------------------------------------------------------------------------------------------


def test_ap_seed_title_is_the_headline_not_the_banner() -> None:
    text = read(AP)
    cleaned = clean(text)
    assert cleaned.title == "Territorial losses suffered by Islamic State in Syria, Iraq"
    banner_end = text.index("\n")
    assert not covered(cleaned.reporting, 0, banner_end)
    assert cleaned.reporting[0][0] == text.index("Territorial losses")


def test_ap_seed_chrome_after_the_article_is_not_reporting() -> None:
    text = read(AP)
    cleaned = clean(text)
    chrome = text.index("Share your thoughts on this post")
    assert not covered(cleaned.reporting, chrome, len(text))
    # The article's own last line (the credit) is still reporting.
    credit = text.index("George reported from Baghdad.")
    assert covered(cleaned.reporting, credit, credit + 10)


def test_lwj_seed_comments_and_tags_are_not_reporting() -> None:
    text = read(LWJ)
    cleaned = clean(text)
    assert cleaned.title == "Islamic State suffers defeats in Iraq and Syria"
    tags = text.index("Tags:")
    assert not covered(cleaned.reporting, tags, len(text))
    for commenter in ("Richard Loewe", "Lynn Farley", "irebukeu", "the Turks are in NATO", "Boko Haram"):
        position = text.index(commenter)
        assert not covered(cleaned.reporting, position, position + len(commenter)), commenter
    byline = text.index("Bill Roggio is a Senior Fellow")
    assert covered(cleaned.reporting, byline, byline + 10)


@pytest.mark.parametrize("seed", [AP, LWJ], ids=["ap", "lwj"])
def test_reporting_spans_are_trimmed_and_ordered(seed: Path) -> None:
    text = read(seed)
    spans = clean(text).reporting
    assert spans
    assert all(start < end for start, end in spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in pairwise(spans))
    for start, end in spans:
        assert text[start:end] == text[start:end].strip()


def test_crlf_file_is_cleaned_like_the_lf_file() -> None:
    lf = read(LWJ)
    crlf = lf.replace("\n", "\r\n")
    cleaned = clean(crlf)
    assert cleaned.title == "Islamic State suffers defeats in Iraq and Syria"
    assert not covered(cleaned.reporting, crlf.index("Tags:"), len(crlf))
    assert [crlf[s:e].replace("\r\n", "\n") for s, e in cleaned.reporting] == [lf[s:e] for s, e in clean(lf).reporting]


# --- cleaning: small cases ------------------------------------------------------------------------------------------


def test_paragraph_spans_slice_trimmed_paragraphs() -> None:
    text = "  First paragraph.\nsame paragraph\n\n \t\n Second one. \n\n\n\nThird"
    spans = paragraph_spans(text)
    assert [text[s:e] for s, e in spans] == ["First paragraph.\nsame paragraph", "Second one.", "Third"]


def test_paragraph_spans_of_a_window_keep_absolute_offsets() -> None:
    text = "skip me\n\nAlpha beta.\n\nGamma delta.\n\nnot me"
    start, end = text.index("Alpha"), text.index("not me")
    spans = paragraph_spans(text, start, end)
    assert [text[s:e] for s, e in spans] == ["Alpha beta.", "Gamma delta."]
    assert paragraph_spans("\n\n  \n") == []


@pytest.mark.parametrize(
    "banner",
    ["ሐበሻ ታይምስ ሚዲያ", "الجزيرة نت", "NEWS", "Daily Times"],
    ids=["amharic", "arabic", "one-word", "two-words"],
)
def test_banner_above_the_headline_is_skipped(banner: str) -> None:
    text = f"{banner}\n\nArmy retakes the town of Karsh\n\nTroops entered Karsh on Monday, officials said.\n"
    cleaned = clean(text)
    assert cleaned.title == "Army retakes the town of Karsh"
    assert cleaned.reporting == ((text.index("Army"), len(text) - 1),)


def test_markdown_headline_loses_its_hashes() -> None:
    text = "# Army retakes the town of Karsh\n\nTroops entered Karsh on Monday, officials said.\n"
    assert clean(text).title == "Army retakes the town of Karsh"


@pytest.mark.parametrize(
    "marker",
    [
        "Tags: Syria, Iraq",
        "Share this:",
        "Share your thoughts on this post",
        "%d bloggers like this:",
        "  • Jane Doe says:",
        "12 Comments",
        "Comments",
        "Leave a Reply",
        "Related posts:",
    ],
)
def test_end_of_article_marker_cuts_everything_after_it(marker: str) -> None:
    body = "Army retakes the town of Karsh\n\nTroops entered Karsh on Monday, officials said."
    text = f"{body}\n\n{marker}\n\nThe rebels will return in June, a reader wrote.\n\nMore reporting text here.\n"
    cleaned = clean(text)
    assert cleaned.reporting == ((0, len(body)),)


@pytest.mark.parametrize("chrome", ["Advertisement", "Share", "Tweet", "Print", "Read more: the war in Syria",
                                    "Visit Us On TwitterVisit Us On Youtube", "Follow us on Twitter"])
def test_chrome_line_inside_the_body_is_dropped_alone(chrome: str) -> None:
    first = "Army retakes the town of Karsh\n\nTroops entered Karsh on Monday, officials said."
    second = "Residents returned on Tuesday."
    text = f"{first}\n\n{chrome}\n\n{second}\n"
    cleaned = clean(text)
    assert [text[s:e] for s, e in cleaned.reporting] == [first, second]


def test_a_sentence_that_merely_mentions_comments_is_reporting() -> None:
    text = ("Army retakes the town of Karsh\n\nThe governor declined to comment on the share of fighters who "
            "surrendered. Tags on the vehicles were removed.\n")
    assert clean(text).reporting == ((0, len(text) - 1),)


# --- HTML -----------------------------------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>Daily Site | Army retakes Karsh</title>
<script>var ad = "<p>Buy now in the script</p>";</script><style>p { color: red }</style></head>
<body>
<header class="site-header"><h1 class="logo">The Daily Site</h1>
<nav><a href="/">Home</a><a href="/w">World</a></nav></header>
<main><article>
<header class="entry-header"><h1>Army retakes the town of Karsh</h1></header>
<p>Government troops entered the town of Karsh on March 3 after rebel fighters withdrew, the governor said.</p>
<p>Residents&nbsp;returned &amp; reopened <b>shops</b> on Tuesday.<br>Schools stay closed.</p>
<div class="share-buttons"><a>Share on Twitter</a></div>
<ul><li>Water was restored within a week.</li></ul>
<section id="comments"><h3>3 comments</h3><p>Reader Bob: the rebels will return in June.</p></section>
</article></main>
<aside><p>Related: markets fall in the capital</p></aside>
<div class="newsletter-signup"><p>Subscribe to our newsletter</p></div>
<footer><p>Copyright 2017 The Daily Site</p></footer>
<noscript>Enable JavaScript</noscript>
</body></html>
"""


def test_extract_html_keeps_the_article_and_drops_chrome() -> None:
    title, body = extract_html(PAGE)
    assert title == "Army retakes the town of Karsh"
    assert body.split("\n\n") == [
        "Army retakes the town of Karsh",
        "Government troops entered the town of Karsh on March 3 after rebel fighters withdrew, the governor said.",
        "Residents returned & reopened shops on Tuesday. Schools stay closed.",
        "Water was restored within a week.\n",
    ]
    for dropped in ("Buy now", "color: red", "Daily Site", "Home", "Share on", "Reader Bob", "3 comments",
                    "markets fall", "Subscribe", "Copyright", "JavaScript"):
        assert dropped not in body, dropped


def test_extract_html_title_falls_back_to_the_title_element() -> None:
    page = "<html><head><title> Army  retakes Karsh </title></head><body><p>Text.</p></body></html>"
    title, body = extract_html(page)
    assert title == "Army retakes Karsh"
    assert body == "Text.\n"


def test_extract_html_uses_the_first_h1_only() -> None:
    title, _ = extract_html("<h1>Army retakes Karsh</h1><p>Text.</p><h1>Another heading</h1><p>More.</p>")
    assert title == "Army retakes Karsh"


def test_extract_html_ignores_svg_titles() -> None:
    title, body = extract_html("<title>Page title</title><p>Text <svg><title>search icon</title></svg>here.</p>")
    assert title == "Page title"
    assert body == "Text here.\n"


def test_extract_html_with_unclosed_tags() -> None:
    title, body = extract_html("<h1>Headline of the page<p>First paragraph<p>Second paragraph<footer>bye")
    assert title.startswith("Headline of the page")
    assert "First paragraph" in body and "Second paragraph" in body and "bye" not in body


# --- load_corpus ----------------------------------------------------------------------------------------------------

ARTICLE = "Army retakes the town of Karsh\n\nTroops entered Karsh on Monday, officials said.\n"


def test_load_directory_walks_subdirectories_and_skips_readme_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text(ARTICLE.replace("Karsh", "Zarqa"), encoding="utf-8")
    (tmp_path / "README.md").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / ".draft.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / ".hidden" / "c.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n")
    result = load_corpus([tmp_path])
    assert result.problems == []
    assert sorted(article.doc_id for article in result.articles) == ["a.txt", "sub/b.md"]
    for article in result.articles:
        assert article.key == article.path == str((tmp_path / article.doc_id).resolve())
        assert article.origin == str(tmp_path.resolve())
        assert article.text == (tmp_path / article.doc_id).read_text(encoding="utf-8")
        assert article.title.startswith("Army retakes the town of")
        assert not article.extracted


def test_a_file_named_twice_is_loaded_once(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "b.txt").write_text(ARTICLE.replace("Karsh", "Zarqa"), encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    result = load_corpus([tmp_path, tmp_path / "a.txt", tmp_path])
    assert result.problems == []
    assert sorted(article.doc_id for article in result.articles) == ["a.txt", "b.txt"]
    assert len({article.key for article in result.articles}) == 2


def test_loaded_seed_articles_keep_the_file_text_exactly() -> None:
    result = load_corpus([SEEDS])
    assert result.problems == []
    titles = {article.doc_id: article.title for article in result.articles}
    assert titles == {
        AP.name: "Territorial losses suffered by Islamic State in Syria, Iraq",
        LWJ.name: "Islamic State suffers defeats in Iraq and Syria",
    }
    for article in result.articles:
        with open(article.path, encoding="utf-8", newline="") as handle:
            assert handle.read() == article.text


def test_file_with_byte_order_mark_keeps_offsets_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff".encode() + ARTICLE.encode())
    [article] = load_corpus([path]).articles
    with open(path, encoding="utf-8", newline="") as handle:
        assert article.text == handle.read()
    assert article.title == "Army retakes the town of Karsh"
    for start, end in article.reporting:
        assert "\ufeff" not in article.text[start:end]


def test_content_hash_follows_the_text(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    first = load_corpus([path]).articles[0].content_hash
    assert load_corpus([path]).articles[0].content_hash == first
    path.write_text(ARTICLE.replace("Monday", "Tuesday"), encoding="utf-8")
    assert load_corpus([path]).articles[0].content_hash != first


def test_html_article_text_is_the_extracted_text(tmp_path: Path) -> None:
    page = tmp_path / "karsh.html"
    page.write_text(PAGE, encoding="utf-8")
    [article] = load_corpus([tmp_path]).articles
    assert article.extracted
    assert article.doc_id == "karsh.html"
    assert article.title == "Army retakes the town of Karsh"
    assert article.text == extract_html(PAGE)[1]
    assert "Reader Bob" not in article.text


def test_jsonl_records_become_articles_with_metadata(tmp_path: Path) -> None:
    records = [
        {"id": "r1", "title": "Dam reopens", "text": "Engineers reopened the dam on May 21.", "author": "A. Writer",
         "tags": ["dam", "Syria"], "year": 2017, "nested": {"x": 1}, "missing": None, "score": 0.5},
        {"id": 42, "text": "Karsh market reopens\n\nTraders came back on Friday, a trader said."},
    ]
    path = tmp_path / "news.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    result = load_corpus([tmp_path])
    assert result.problems == []
    first, second = result.articles
    assert (first.key, first.doc_id, first.record_id) == (f"{path.resolve()}#r1", "r1", "r1")
    assert first.title == "Dam reopens"
    assert first.text == records[0]["text"]
    assert first.metadata == {"author": "A. Writer", "tags": "dam, Syria", "year": 2017, "score": 0.5}
    assert (second.doc_id, second.record_id, second.title) == ("42", "42", "Karsh market reopens")
    assert second.path == str(path.resolve())


def test_jsonl_record_with_unicode_line_separators_is_one_record(tmp_path: Path) -> None:
    text = "First line\u2028same paragraph\x85and a NEL, from the Karsh desk."
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"id": "a", "text": text}, ensure_ascii=False) + "\n"
                    + "{broken\n", encoding="utf-8")
    result = load_corpus([path])
    assert [article.text for article in result.articles] == [text]
    assert [(problem.line, problem.message.split(" (")[0]) for problem in result.problems] == [(2, "malformed JSON")]


def test_a_malformed_json_line_is_named_with_where_it_breaks(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text('{"id": "a", "text": "a tab\there"}\n', encoding="utf-8")
    [problem] = load_corpus([path]).problems
    assert (problem.line, problem.message) == (1, "malformed JSON (Invalid control character at: column 27)")


def test_jsonl_with_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "crlf.jsonl"
    lines = [json.dumps({"id": n, "text": f"Record {n} from the Karsh desk."}) for n in (1, 2)]
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    result = load_corpus([path])
    assert result.problems == []
    assert [article.doc_id for article in result.articles] == ["1", "2"]


def test_bad_jsonl_lines_are_reported_with_their_line_and_the_rest_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        "\n".join([
            json.dumps({"id": "ok1", "text": "Good record one."}),
            "{not json",
            "[1, 2]",
            json.dumps({"text": "no id"}),
            json.dumps({"id": "no-text", "text": "  "}),
            "",
            json.dumps({"id": "ok1", "text": "a duplicate"}),
            json.dumps({"id": "ok2", "text": "Good record two."}),
        ]) + "\n",
        encoding="utf-8",
    )
    result = load_corpus([path])
    assert [article.doc_id for article in result.articles] == ["ok1", "ok2"]
    assert [problem.line for problem in result.problems] == [2, 3, 4, 5, 7]
    for problem in result.problems:
        assert problem.path == str(path)
        assert str(problem).startswith(f"{path}:{problem.line}: ")
    # A bad line does not make the file unreadable: its good records are there.
    assert result.unreadable_keys == set()


def test_each_bad_input_gets_one_problem_naming_it(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(ARTICLE, encoding="utf-8")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02\xffPK\x03\x04" * 10)
    (corpus / "latin1.txt").write_bytes("Café in Karsh reopened, the owner said.".encode("latin-1"))
    (corpus / "empty.md").write_text("", encoding="utf-8")
    (corpus / "blank.txt").write_text(" \n\n\t\n", encoding="utf-8")
    (corpus / "chrome.txt").write_text("Tags: Syria\n\nShare this:\n", encoding="utf-8")
    empty_dir = tmp_path / "nothing here"
    empty_dir.mkdir()
    missing = tmp_path / "missing.txt"
    unsupported = tmp_path / "scan.pdf"
    unsupported.write_bytes(b"%PDF-1.4")
    result = load_corpus([corpus, missing, empty_dir, unsupported])
    assert [article.doc_id for article in result.articles] == ["good.txt"]
    messages = {Path(problem.path).name: problem.message for problem in result.problems}
    assert len(result.problems) == len(messages) == 8
    assert messages["binary.txt"] == "binary file, not text"
    assert messages["latin1.txt"].startswith("not UTF-8")
    assert messages["empty.md"] == messages["blank.txt"] == "empty file"
    assert messages["chrome.txt"] == "no article text found"
    assert messages["missing.txt"] == "no such file or directory"
    assert "no .txt" in messages["nothing here"]
    assert "unsupported file type .pdf" in messages["scan.pdf"]
    assert all(problem.line is None for problem in result.problems)
    unreadable = {Path(key).name for key in result.unreadable_keys}
    assert unreadable == {"binary.txt", "latin1.txt", "empty.md", "blank.txt", "chrome.txt", "scan.pdf"}
