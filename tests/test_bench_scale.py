"""Tests for benchmarks.scale's pure parts (the benchmark itself runs with `make bench-scale`), and a smoke run of
the seeds with the embedded store."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks.scale import (
    EMBEDDED,
    SERVER,
    Encode,
    Ingest,
    Result,
    Row,
    Warm,
    chart_lines,
    disk_bytes,
    draw_questions,
    measures,
    parse_summary,
    render,
    top_agreement,
)
from benchmarks.scale import (
    main as bench_scale_main,
)


def test_disk_bytes_counts_a_hard_linked_file_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "data").write_bytes(b"x" * 10_000)
    single = disk_bytes(tmp_path)
    assert single >= 10_000
    (tmp_path / "b").mkdir()
    os.link(tmp_path / "a" / "data", tmp_path / "b" / "data")
    assert disk_bytes(tmp_path) == single
    assert disk_bytes(tmp_path / "a", tmp_path / "b") == single
    assert disk_bytes(tmp_path / "missing") == 0


def test_parse_summary_reads_the_last_summary_line() -> None:
    stderr = ("indexing 3 article(s) into /tmp/x\nembedding passages: 9/9 (3/s)\n"
              "3 new, 1 changed, 0 unchanged, 0 removed; 9 passages embedded in 12.5s; 1 problem(s)\n")
    assert parse_summary(stderr) == (4, 9, 12.5)
    with pytest.raises(RuntimeError, match="no ingest summary"):
        parse_summary("error: something\n")


def test_questions_are_drawn_reproducibly_and_in_turn_from_each_corpus() -> None:
    titles = {"b": ["Beta one", "Beta  two", "Beta one", ""], "a": ["Alpha one", "Alpha two", "Alpha three"]}
    first = draw_questions(titles, 5)
    assert first == draw_questions(titles, 5)
    assert len(first) == 5 and len(set(first)) == 5
    assert [("Alpha" in q, "Beta" in q) for q in first[:4]] == [(True, False), (False, True)] * 2
    assert "What is reported about Beta two?" in first  # spaces collapsed, duplicates and blanks dropped
    assert len(draw_questions(titles, 50)) == 5  # no more than there are titles
    assert draw_questions(titles, 5, seed=1) != first
    with pytest.raises(RuntimeError):
        draw_questions({"a": [""]}, 3)


def test_top_agreement() -> None:
    assert top_agreement([["a", "b"], ["c"]], [["a", "b"], ["d"]]) == 0.5
    assert top_agreement([["a", "b"]], [["b", "a"]]) == 0.0  # order counts
    with pytest.raises(ValueError):
        top_agreement([], [])


def warm(p50: float, scale: float = 1.0) -> Warm:
    latencies = [p50 * scale * factor for factor in (0.5, 1.0, 1.5)]
    return Warm(latencies, {"query embedding": 3.0, "rest": sum(latencies) - 3.0}, [["a:0-9"]] * 3,
                {"open the store": 300.0 * scale, "first question": 90.0}, 0.5)


def sample_result() -> Result:
    result = Result("2026-11-24T10:00:00+00:00", "abc", "python -m benchmarks.scale", {"cpu": "EPYC", "nproc": "2"},
                    {"repeat": 3, "encode_sample": 1000, "question_sources": ["bbc-news"]},
                    ["What is reported about X?"])
    engine = "ONNX Runtime float32, 2 thread(s)"
    encode = Encode(1000, 40.0, True, engine, 80.0)
    result.rows = [
        Row("seeds", EMBEDDED, "/i/s", None, 2, 20, ingest=Ingest(20.0, 5.0, 2, 20, 800.0, 0.5),
            encode=Encode(20, 1.0, False, engine), disk_mb=1.3, cold_seconds=[3.0, 3.2, 3.1], warm=warm(20.0)),
        Row("bbc", EMBEDDED, "/i/b", None, 2225, 8900, ingest=Ingest(300.0, 290.0, 2225, 8900, 1500.0, 1.0),
            encode=encode, disk_mb=200.0, cold_seconds=[3.4, 3.5, 3.3], warm=warm(30.0)),
        Row("reuters", EMBEDDED, "/i/r", None, 19043, 30000,
            ingest=Ingest(1000.0, 990.0, 19043, 30000, 2100.0, 1.2, cpu_seconds=2000.0), encode=encode, disk_mb=700.0,
            cold_seconds=[3.9, 4.0, 3.8], warm=warm(40.0)),
        Row("reuters", SERVER, "/i/rc", "/i/rs", 19043, 30000, copied_from="/i/r", encode=encode, disk_mb=710.0,
            cold_seconds=[4.0], warm=warm(40.0, 2.0), server_final_mb=900.0),
    ]
    result.load = {"cold starts": [0.5, 0.4, 0.3, 0.6, 0.5, 0.4]}
    return result


def test_measures_are_ratios_within_the_run() -> None:
    found = {what: (measured, status) for what, measured, _, status in measures(sample_result())}
    assert found["reuters ingest, wall time (embedded)"] == ("16.7 min", "**MISSED**")
    assert found["reuters ingest, peak RSS (embedded)"] == ("2,100 MB", "**MISSED**")
    assert found["warm p50, reuters / bbc (embedded)"] == ("1.33x", "met")
    assert found["cold start, reuters / seeds (embedded)"] == ("1.26x", "**MISSED**")
    assert found["warm p50, server / embedded (reuters)"] == ("2.00x", "**MISSED**")
    # No server row for bbc or the seeds: those server ratios are left out, not guessed.
    assert not any("(server)" in what for what in found)


def test_an_adopted_index_has_no_ingest_measures() -> None:
    result = sample_result()
    reuters = result.rows[2]
    reuters.ingest, reuters.copied_from = None, "/elsewhere/reuters"
    found = {what: (measured, status) for what, measured, _, status in measures(result)}
    assert found["reuters ingest, wall time (embedded)"] == ("—", "not run")
    assert found["reuters ingest, peak RSS (embedded)"] == ("—", "not run")
    assert found["warm p50, reuters / bbc (embedded)"] == ("1.33x", "met")


def test_report_table_notes_and_chart_lines() -> None:
    result = sample_result()
    report = render(result, "scale.svg")
    assert ("| reuters | embedded | 19,043 | 30,000 | 1000 | 30.0 | 25.0 | 1.20x | 1.20x | 2,100 | 700.0 | 3.90 "
            "| 1.26x |") in report
    # The server serving a copy ingested nothing: no ingest numbers, and the report says how it was made.
    assert "| reuters | server | 19,043 | 30,000 | — | — | 25.0 | — | — | — | 710.0 | 4.00 | 1.29x |" in report
    assert "a server serving a copy of the embedded store" in report and "100% of the 3 questions" in report
    assert "![warm latency and cold start against corpus size](scale.svg)" in report
    assert "(the passage encoder ingest uses: ONNX Runtime float32, 2 thread(s))" in report
    assert "0.5 / 0.4 / 0.3 | 0.6 / 0.5 / 0.4" in report
    assert "| reuters, embedded | — | 1.20 | 990 | 10 |" in report  # ingest runs: its own time, the rest
    assert "| reuters, server | 600 | 90 |" in report  # start-up steps
    warm_lines, cold_lines = chart_lines(result)
    assert warm_lines["embedded p50"] == [(2.0, 20.0), (2225.0, 30.0), (19043.0, 40.0)]
    assert cold_lines["server"] == [(19043.0, 4.0)]
    data = json.loads(json.dumps(result.to_json()))
    assert data["rows"][2]["warm"]["p50_ms"] == 40.0 and data["rows"][2]["ingest"]["passages_per_s"] == 30.0


def test_a_row_survives_the_state_file_of_a_resumed_run() -> None:
    for row in sample_result().rows:
        assert Row.from_json(json.loads(json.dumps(asdict(row)))) == row


def test_the_report_is_written_again_from_the_raw_numbers() -> None:
    result = sample_result()
    again = Result.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result and render(again, None) == render(result, None)


def test_scale_chart_writes_an_svg(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from rag.charts import scale_chart

    warm_lines, cold_lines = chart_lines(sample_result())
    scale_chart(warm_lines, cold_lines, tmp_path / "scale.svg")
    assert b"<svg" in (tmp_path / "scale.svg").read_bytes()[:1000]


def test_smoke_run_on_the_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole bench on the two seed articles, embedded store only, with the real ingest, ask and model."""
    out = tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["benchmarks.scale", "--corpora", "seeds", "--skip-server", "--questions", "3",
                                     "--repeat", "1", "--encode-sample", "8", "--workdir", str(tmp_path / "work"),
                                     "--out", str(out)])
    assert bench_scale_main() == 0
    data = json.loads((out / "scale.json").read_text())
    [row] = data["rows"]
    assert (row["corpus"], row["mode"], row["ingest"]["articles"]) == ("seeds", "embedded", 2)
    assert row["encode"]["passages"] == 8 and row["encode"]["sampled"]
    assert len(row["warm"]["latencies_ms"]) == 3 and len(row["cold_seconds"]) == 1 and row["disk_mb"] > 0
    assert "| seeds | embedded | 2 |" in (out / "SCALE.md").read_text()
    assert (out / "scale.svg").is_file()
