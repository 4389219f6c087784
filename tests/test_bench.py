"""Tests for the pure helpers of benchmarks.speed (the benchmarks themselves run with `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.speed import (
    ColdStart,
    Ingest,
    IngestRun,
    Record,
    Stopwatch,
    WarmLatency,
    busy_note,
    cpu_model,
    current_commit,
    markdown_table,
    memory_total_gib,
    metric,
    missed_goals,
    overhead,
    package_import_times,
    parse_importtime,
    peak_rss_kib,
    percentile,
    ratio,
    read_history,
    render_report,
    status,
    top_level_imports,
    write_sample,
)

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 | site
import time:        50 |         50 |     numpy.core
import time:       200 |        250 |   numpy
import time:        30 |        300 | rag.pipeline
some other stderr line
import time:       400 |        900 |   llama_index.core
import time:       500 |        500 |     llama_index.core.schema
import time:        10 |        910 | llama_index.vector_stores.chroma
"""


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 90) == 7.0


def test_percentile_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_and_overhead() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert overhead(11.5, 10.0) == pytest.approx(0.15)
    with pytest.raises(ValueError):
        ratio(1.0, 0.0)


def test_status_against_goal() -> None:
    assert status(2.0, 2.0) == "met"
    assert "MISSED" in status(2.1, 2.0)
    assert status(None, 2.0) == "not run"


def test_markdown_table_aligns_and_escapes() -> None:
    table = markdown_table(["name", "a", "b"], [["x|y", 1, 2.5]], left=2)
    assert table.splitlines() == ["| name | a | b |", "| --- | --- | ---: |", "| x\\|y | 1 | 2.5 |"]


def test_parse_importtime_levels_and_rankings() -> None:
    lines = parse_importtime(IMPORTTIME)
    assert [(line.name, line.level) for line in lines][:3] == [("site", 0), ("numpy.core", 2), ("numpy", 1)]
    assert top_level_imports(lines, 2) == [("llama_index.vector_stores.chroma", 0.91), ("rag.pipeline", 0.3)]
    # Self times summed per package never double-count nested imports.
    assert package_import_times(lines, 3) == [("llama_index", 0.91), ("numpy", 0.25), ("site", 0.1)]


def test_busy_note_only_when_half_the_cores_were_taken() -> None:
    assert busy_note([0.3, 0.9], 2) is None
    assert busy_note([], 2) is None
    note = busy_note([0.3, 3.45], 2)
    assert note is not None and "3.5 on 2 cores" in note


def test_cpu_and_memory_from_proc_text() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert memory_total_gib("MemTotal:       2097152 kB\n") == pytest.approx(2.0)
    assert memory_total_gib("") is None


def test_a_spawned_process_reports_its_own_peak_not_its_parents() -> None:
    # Linux hands a child spawned from a big process that process's peak as its ru_maxrss; VmHWM is its own.
    ballast = bytearray(256 * 1024 * 1024)
    ballast[::4096] = b"\1" * len(ballast[::4096])
    own = subprocess.run([sys.executable, "-c", "from benchmarks.speed import peak_rss_kib; print(peak_rss_kib())"],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, check=True)
    assert 0 < int(own.stdout) < 128 * 1024
    assert (peak_rss_kib() or 0) > 256 * 1024
    assert peak_rss_kib(2**22 + 1) is None  # above Linux's largest pid: no such process
    del ballast


def test_metric_reads_nested_numbers_only() -> None:
    record = {"cold_start": {"ratio": 1.5}, "warm": None}
    assert metric(record, ("cold_start", "ratio")) == 1.5
    assert metric(record, ("warm", "p50_ms")) is None
    assert metric(record, ("ingest", "overhead")) is None


def test_stopwatch_counts_nested_calls_of_one_label_once() -> None:
    watch = Stopwatch()

    class Counter:
        def step(self, depth: int) -> int:
            return depth if depth == 0 else self.step(depth - 1)

    Counter.step = watch.wrap("step", Counter.step)  # type: ignore[method-assign]
    assert Counter().step(3) == 0
    assert set(watch.totals) == {"step"}
    assert watch.totals["step"] >= 0


def test_stopwatch_patches_an_instance_method() -> None:
    watch = Stopwatch()
    items = [3, 1, 2]

    class Box:
        def total(self) -> int:
            return sum(items)

    box = Box()
    watch.patch(box, "total", "sum")
    assert box.total() == 6
    assert "sum" in watch.totals


def test_write_sample_takes_the_first_non_blank_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 1}\n\n{"id": 2}\n{"id": 3}')
    assert write_sample(source, 2, tmp_path / "out.jsonl") == 2
    assert (tmp_path / "out.jsonl").read_text() == '{"id": 1}\n{"id": 2}\n'
    assert write_sample(source, 10, tmp_path / "all.jsonl") == 3


def test_current_commit_names_the_head_and_a_changed_tree(tmp_path: Path) -> None:
    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=bench", "-c", "user.email=bench@localhost",
                               *arguments], capture_output=True, text=True, check=True).stdout.strip()

    git("init", "-q")
    (tmp_path / "file.txt").write_text("one\n")
    git("add", "file.txt")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "--short=12", "HEAD")
    assert current_commit(tmp_path) == head and len(head) == 12
    (tmp_path / "file.txt").write_text("two\n")
    assert current_commit(tmp_path) == f"{head} with uncommitted changes"
    assert current_commit(tmp_path / "nowhere") == "unknown"


def test_read_history_skips_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps({"date": "d1"}) + "\n" + '{"date": "d2", "cold')
    assert read_history(path) == [{"date": "d1"}]
    assert read_history(tmp_path / "missing.jsonl") == []


def sample_record() -> Record:
    cold = ColdStart(5, [2.0, 2.2, 2.1], [1.0, 1.1, 1.0], 330.0, 220.0, 2.1, 1200.0,
                     [("chromadb", 400.0)], [("llama_index", 300.0)], False, [1.8, 1.9, 1.8], [1.0, 1.0, 0.9])
    warm = WarmLatency(3, 15.0, 19.0, 22.0, 16.0, {"query embedding": 20.0, "vector search": 10.0, "rest": 18.0},
                       0.375, "When did Mosul fall?")
    run_ = IngestRun(10.0, 100, 800.0, {"embed": 9.0}, 4.0)
    ingest = Ingest(20, 100, [run_], [IngestRun(9.0, 100, 790.0, {"model forward": 9.0}, 3.0)], 10.0, 9.0,
                    overhead(10.0, 9.0), 0, 2)
    return Record("2026-01-01T00:00:00+00:00", "abc", "python -m benchmarks.speed", {"nproc": "2"}, cold, warm, ingest,
                  load=[0.2, 3.4])


def test_report_names_every_benchmark_and_missed_goals() -> None:
    record = sample_record()
    report = render_report(record, [{"date": "d0", "commit": "x", "cold_start": {"ratio": 1.9}}])
    for heading in ("## 1. Cold start", "## 2. Warm latency", "## 3. Ingest", "## History"):
        assert heading in report
    assert "2.10x" in report and "+11.1%" in report and "37.5%" in report
    assert "1.80x" in report  # the CPU-time ratio
    assert "machine was busy" in report and "0.20 / 3.40" in report
    assert missed_goals(record) == ["cold start"]


def test_report_of_skipped_benchmarks() -> None:
    record = Record("2026-01-01T00:00:00+00:00", "abc", "python -m benchmarks.speed --skip-ingest", {})
    report = render_report(record, [])
    # cold start, warm p50 and p95 for each answerer, ingest
    assert report.count("not run") == 6
    assert "## 3. Ingest" not in report
    assert missed_goals(record) == []


def test_draw_trend_writes_a_png_with_gaps_for_skipped_runs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.speed import draw_trend

    history = [{"cold_start": {"ratio": 2.2}, "warm": {"p50_ms": 15.0}}, {"ingest": {"overhead": 0.1}}, {}]
    draw_trend(history, tmp_path / "trend.png")
    assert (tmp_path / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    draw_trend([{"warm": {"p50_ms": 15.0}}], tmp_path / "only-warm.png")  # metrics never measured: no points
    assert (tmp_path / "only-warm.png").is_file()


def test_the_library_bench_builds_its_index(tmp_path: Path) -> None:
    from benchmarks.library import build
    from tests.conftest import SEEDS

    assistant, articles = build(tmp_path / "index", [SEEDS], None)
    assert articles == 2 and assistant.store.count() > 2 and assistant.store.article_count() == 2
