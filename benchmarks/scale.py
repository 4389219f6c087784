"""``python -m benchmarks.scale`` (``make bench-scale``): how ingest, start-up and answering scale with the corpus,
with the passages in the embedded Chroma store and on a Chroma server.

For each corpus (the two seed articles, BBC News with 2,225 articles, Reuters-21578 with 19,043) and each store:

1. ingest: ``python -m rag.ingest FILE --index DIR`` in a fresh process into a fresh index, timed, with its peak RSS,
   against a bare encode of a fixed random sample of the same corpus's passages (the model's ``encode`` alone, in its
   own process, model loaded before the clock starts): passages per second each, and their ratio;
2. the index's size on disk (the client's directory plus, for a server, the server's data directory);
3. cold start: ``python -m rag.ask QUESTION --index DIR`` in a fresh process, one untimed run first (warm page cache)
   and then the median of ``--repeat`` runs; every index's runs alternate, so a busy moment hits all of them alike,
   and the seed index's median is the baseline of the ratio;
4. warm latency: one process asks the same fixed questions of every index (drawn from the titles of the JSONL
   corpora with a fixed seed, so that only the corpus differs between rows), after one untimed question.

A server row runs ``chroma run`` on a free loopback port and passes ``--chroma-url``; the corpora named by
``--server-from-copy`` are not ingested a second time: their server serves a copy of the embedded index's Chroma
directory (the client keeps a copy of the rest), and whether the two answer alike is checked (same top passages).

Writes ``evals/SCALE.md``, the raw numbers as ``evals/scale.json`` and the chart ``evals/scale.svg``; progress goes
to stderr. ``RAG_*`` variables are ignored, so runs stay comparable. Not part of ``make test`` or ``make bench``: the
full run takes about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.speed import (
    BM25_PART,
    DENSE_PART,
    EMBED_PART,
    ROOT,
    SEEDS,
    SENTENCES_PART,
    BenchError,
    ChildRun,
    checked,
    child_env,
    current_commit,
    machine_info,
    markdown_table,
    peak_rss_kib,
    percentile,
    python,
    ratio,
    run_child,
    watch_retrieval,
)
from rag.cli import log, run
from rag.settings import Settings, load_settings

DATA = ROOT.parent / "shared" / "data"
CORPORA = {"seeds": SEEDS, "bbc": DATA / "bbc-news.jsonl", "reuters": DATA / "reuters21578.jsonl"}
DEFAULT_OUT = ROOT / "evals"
SEED = 0
EMBEDDED, SERVER = "embedded", "server"
HEARTBEAT_SECONDS = 60.0
# Imported before the warm process times its start-up steps: what is left is the work that may grow with the index.
STARTUP_LIBRARIES = ("chromadb", "llama_index.core", "llama_index.vector_stores.chroma", "llama_index.retrievers.bm25",
                     "rag.pipeline", "rag.bert_numpy")
# In the work directory: the rows built so far (what --resume reuses).
STATE_FILE = "state.json"

# The measures of the scale issue.
GOAL_INGEST_SECONDS = 15 * 60
GOAL_PEAK_MB = 2000.0
GOAL_WARM_GROWTH = 1.5
"""Warm p50 on the largest corpus over warm p50 on BBC (2,225 articles)."""
GOAL_COLD_GROWTH = 1.2
"""Cold start on the largest corpus over cold start on the seeds."""
GOAL_SERVER_WARM = 1.5
"""Server warm p50 over embedded warm p50, same corpus."""

SUMMARY = re.compile(r"(\d+) new, (\d+) changed, (\d+) unchanged, (\d+) removed; (\d+) passages embedded in "
                     r"([\d.]+)s")


# --- pure helpers ------------------------------------------------------------------------------------------------


def mb(kib: float) -> float:
    """KiB (as ``ru_maxrss`` and ``/proc`` give them) in MB (10^6 bytes, as the goal is stated)."""
    return kib * 1024 / 1e6


def disk_bytes(*roots: Path) -> int:
    """Bytes allocated on disk under ``roots``, each file once however many hard links it has (lexical index
    versions share their files)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                status = os.lstat(os.path.join(directory, name))
                if (status.st_dev, status.st_ino) not in seen:
                    seen.add((status.st_dev, status.st_ino))
                    total += status.st_blocks * 512
    return total


def parse_summary(stderr: str) -> tuple[int, int, float]:
    """(articles added, passages embedded, seconds inside the ingest) from ``rag.ingest``'s last summary line."""
    found = SUMMARY.findall(stderr)
    if not found:
        raise BenchError(f"no ingest summary in: {stderr.strip().splitlines()[-1:]}")
    new, changed, _, _, passages, seconds = found[-1]
    return int(new) + int(changed), int(passages), float(seconds)


def draw_questions(titles: Mapping[str, Sequence[str]], count: int, seed: int = SEED) -> list[str]:
    """``count`` questions about titles drawn from each corpus in turn (a fixed share of each), reproducibly."""
    chooser = random.Random(seed)
    pools = {}
    for name, pool in sorted(titles.items()):
        unique = list(dict.fromkeys(" ".join(title.split()) for title in pool if title.strip()))
        if unique:
            pools[name] = chooser.sample(unique, len(unique))
    if not pools:
        raise BenchError("no titles to draw questions from")
    questions: list[str] = []
    while len(questions) < count and any(pools.values()):
        for pool in pools.values():
            if pool and len(questions) < count:
                questions.append(f"What is reported about {pool.pop()}?")
    return questions


def top_agreement(first: Sequence[Sequence[str]], second: Sequence[Sequence[str]]) -> float:
    """Share of questions whose top passages (ids, in order) are the same in both runs."""
    if len(first) != len(second) or not first:
        raise ValueError("agreement needs two equally long, non-empty lists of rankings")
    return sum(list(a) == list(b) for a, b in zip(first, second, strict=True)) / len(first)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- results -----------------------------------------------------------------------------------------------------


@dataclass
class Ingest:
    seconds: float
    """Wall time of the whole ``rag.ingest`` process (imports and model load included)."""
    inner_seconds: float
    """The ingest's own time, as its summary line reports it (load, split, embed, store, BM25)."""
    articles: int
    passages: int
    peak_mb: float
    load: float
    """1-minute load average when it ended."""
    server_peak_mb: float | None = None
    ended: str = ""
    """When it ended (UTC): a resumed run reuses the indexes, and these numbers, of an earlier one."""
    cpu_seconds: float = 0.0
    """User + system CPU time of the process and its children: other work on the machine inflates it much less
    than wall time."""

    @property
    def rate(self) -> float:
        return self.passages / self.seconds


@dataclass
class Encode:
    passages: int
    seconds: float
    sampled: bool
    """Whether a sample was encoded (the corpus has more passages than ``--encode-sample``)."""
    engine: str
    """The passage encoder ingest uses (``PassageEmbedder.engine``), which the encode ran too."""
    cpu_seconds: float = 0.0
    """CPU time of the encode (all threads of its process)."""

    @property
    def rate(self) -> float:
        return self.passages / self.seconds


@dataclass
class Warm:
    latencies_ms: list[float]
    parts_ms: dict[str, float]
    top: list[list[str]]
    """The passages shown for each question (article and span), for comparing stores."""
    startup_ms: dict[str, float]
    """In the same process, libraries imported first: each step of start-up, and the untimed first question."""
    load: float

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies_ms, 95)


@dataclass
class Row:
    corpus: str
    mode: str
    index_dir: str
    server_dir: str | None = None
    articles: int = 0
    passages: int = 0
    ingest: Ingest | None = None
    copied_from: str | None = None
    """For a server serving a copy of the embedded store: the index copied (nothing was ingested)."""
    encode: Encode | None = None
    disk_mb: float = 0.0
    cold_seconds: list[float] = field(default_factory=list)
    cold_peak_mb: float = 0.0
    warm: Warm | None = None
    server_final_mb: float | None = None
    """The server's peak RSS over the whole run (VmHWM when it was stopped)."""

    @property
    def name(self) -> str:
        return f"{self.corpus}, {self.mode}"

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Row:
        """A row as ``asdict`` wrote it into the work directory's state (built, not yet measured)."""
        nested = {"ingest": Ingest, "encode": Encode, "warm": Warm}
        return cls(**{name: nested[name](**value) if name in nested and value is not None else value
                      for name, value in raw.items()})

    @property
    def cold(self) -> float | None:
        return median(self.cold_seconds) if self.cold_seconds else None


@dataclass
class Result:
    date: str
    commit: str
    command: str
    machine: dict[str, str]
    settings: dict[str, Any]
    questions: list[str]
    rows: list[Row] = field(default_factory=list)
    load: dict[str, list[float]] = field(default_factory=dict)
    """Load averages (1 / 5 / 15 min) at the start and end of each phase."""
    notes: list[str] = field(default_factory=list)

    def row(self, corpus: str, mode: str) -> Row | None:
        return next((row for row in self.rows if row.corpus == corpus and row.mode == mode), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for row, raw in zip(self.rows, data["rows"], strict=True):
            raw["cold_median_s"] = row.cold
            if row.warm:
                raw["warm"] |= {"p50_ms": row.warm.p50, "p95_ms": row.warm.p95}
            if row.ingest:
                raw["ingest"]["passages_per_s"] = row.ingest.rate
            if row.encode:
                raw["encode"]["passages_per_s"] = row.encode.rate
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        """A result as ``to_json`` wrote it (the derived numbers it added are computed again)."""
        def fields(kind: Any, raw: Mapping[str, Any]) -> dict[str, Any]:
            return {item.name: raw[item.name] for item in dataclasses.fields(kind) if item.name in raw}

        rows = [Row.from_json(fields(Row, raw) | {name: fields(kind, raw[name]) if raw.get(name) else None
                                                  for name, kind in (("ingest", Ingest), ("encode", Encode),
                                                                     ("warm", Warm))})
                for raw in data["rows"]]
        return cls(**fields(cls, data) | {"rows": rows})


# --- child processes and servers ---------------------------------------------------------------------------------


def run_logged(command: Sequence[str], label: str) -> ChildRun:
    """Run a command to completion, its stderr shown as it comes (prefixed) and kept: wall time and its peak RSS,
    forked children included (``wait4`` reports the largest of the process and the children it waited for;
    ``rag.cli.run`` does the work in a forked child)."""
    started = time.perf_counter()
    process = subprocess.Popen(list(command), cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        log(f"  [{label}] {line.rstrip()}")
    _, wait_status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    return ChildRun(seconds, usage.ru_utime + usage.ru_stime, mb(usage.ru_maxrss), process.returncode, "".join(lines))


class ChromaServer:
    """``chroma run`` on a free loopback port, serving ``path``; its log goes to ``path``'s sibling file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path.mkdir(parents=True, exist_ok=True)
        self._log = open(path.parent / f"{path.name}.server.log", "wb")  # noqa: SIM115 (closed by stop)
        chroma = Path(sys.executable).parent / "chroma"
        self.process = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port",
                                         str(self.port)], cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        # No proxy: a proxy set in the environment must not see loopback requests.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + HEARTBEAT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"chroma run exited with {self.process.returncode} (log beside {self.path})")
            try:
                with opener.open(f"{self.url}/api/v2/heartbeat", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise BenchError(f"chroma run answered no heartbeat on {self.url} within {HEARTBEAT_SECONDS:.0f} s")

    def peak_mb(self) -> float | None:
        """The server's peak RSS so far (VmHWM), while it runs."""
        kib = peak_rss_kib(self.process.pid)
        return mb(kib) if kib is not None else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# --- workers (this module run as a child) -----------------------------------------------------------------------


def worker_settings(index_dir: Path, chroma_url: str | None) -> Settings:
    flags: dict[str, object] = {"index_dir": str(index_dir)}
    if chroma_url:
        flags["chroma_url"] = chroma_url
    return load_settings(flags, environ={})


def encode_worker(corpus: Path, sample: int) -> dict[str, Any]:
    """The floor: the model's ``encode`` of ``sample`` passages of the corpus (all of them if it has fewer), drawn by
    taking whole articles in a fixed random order, split exactly as ingest splits them (the splitter is untimed)."""
    from rag.embedding import make_passage_embedder
    from rag.loading import load_corpus
    from rag.splitting import PassageSplitter

    settings = load_settings({}, environ={})
    embedder = make_passage_embedder(settings)
    splitter = PassageSplitter(settings.chunk_size, settings.chunk_overlap, embedder.count_tokens)
    articles = load_corpus([corpus], settings.max_article_bytes).articles
    texts: list[str] = []
    for number in random.Random(SEED).sample(range(len(articles)), len(articles)):
        texts += [passage.text for passage in splitter.split(articles[number])]
        if len(texts) > sample:
            break
    started, cpu = time.perf_counter(), time.process_time()
    embedder.encode(texts[:sample])
    seconds = time.perf_counter() - started
    return {"passages": len(texts[:sample]), "seconds": seconds, "sampled": len(texts) > sample,
            "engine": embedder.engine, "cpu_seconds": time.process_time() - cpu}


def warm_worker(index_dir: Path, chroma_url: str | None, questions: Sequence[str]) -> dict[str, Any]:
    """Every question asked once by one assistant, after an untimed first question; parts timed as in benchmarks.speed.
    Start-up is timed step by step first, after the libraries are imported (an import costs the same at any size)."""
    import importlib

    for name in STARTUP_LIBRARIES:
        importlib.import_module(name)
    from rag.pipeline import Assistant

    assistant = Assistant(worker_settings(index_dir, chroma_url))
    startup: dict[str, float] = {}
    for step, action in (("open the store", lambda: assistant.store),
                         ("check the index", lambda: assistant.ensure_index(log)),
                         ("retriever (query encoder, BM25)", lambda: assistant.retriever),
                         ("first question", lambda: assistant.ask(questions[0]))):
        started = time.perf_counter()
        action()
        startup[step] = (time.perf_counter() - started) * 1000
    watch = watch_retrieval(assistant)
    latencies, top = [], []
    for question in questions:
        asked = time.perf_counter()
        answer = assistant.ask(question)
        latencies.append((time.perf_counter() - asked) * 1000)
        top.append([f"{hit.doc_id}:{hit.start}-{hit.end}" for hit in answer.passages])
    parts = {label: watch.totals.get(label, 0.0) * 1000 for label in (EMBED_PART, DENSE_PART, BM25_PART,
                                                                      SENTENCES_PART)}
    parts["rest"] = sum(latencies) - sum(parts.values())
    return {"latencies_ms": latencies, "parts_ms": parts, "top": top, "startup_ms": startup}


def run_worker(arguments: Sequence[str], workdir: Path, label: str) -> tuple[dict[str, Any], ChildRun]:
    result = Path(tempfile.mkstemp(prefix="worker-", suffix=".json", dir=workdir)[1])
    child = checked(run_logged(python("-m", "benchmarks.scale", "--worker", *arguments, "--result", str(result)),
                               label), label)
    return json.loads(result.read_text()), child


# --- the run -----------------------------------------------------------------------------------------------------


def load_now() -> float:
    return round(os.getloadavg()[0], 2)


def read_titles(corpora: Sequence[Path]) -> dict[str, list[str]]:
    titles = {}
    for path in corpora:
        if path.is_file() and path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as lines:
                titles[path.stem] = [str(json.loads(line).get("title") or "") for line in lines if line.strip()]
    return titles


def ask_command(row: Row, question: str, chroma_url: str | None) -> list[str]:
    return python("-m", "rag.ask", question, "--index", row.index_dir, *(["--chroma-url", chroma_url]
                                                                          if chroma_url else []))


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, result: Result) -> None:
        self.args, self.workdir, self.result = args, workdir, result
        self.servers: dict[str, ChromaServer] = {}
        self.built: dict[tuple[str, str], Row] = {}
        state = workdir / STATE_FILE
        if args.resume and state.is_file():
            self.built = {(row.corpus, row.mode): row for row in map(Row.from_json, json.loads(state.read_text()))}
            result.notes.append(
                f"Resumed (`--resume`): the ingests of {', '.join(f'{c} {m}' for c, m in self.built)} ran in an "
                "earlier invocation on the same work directory (their end times and loads are listed under Ingest "
                "runs); cold starts and warm latency were measured for every index in this one.")

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        log(f"== {name} (load {load_now()})")
        before = [round(value, 2) for value in os.getloadavg()]
        yield
        self.result.load[name] = before + [round(value, 2) for value in os.getloadavg()]
        log(f"== {name}: done in {time.perf_counter() - started:.0f} s (load {load_now()})")

    def build(self, corpus: str, source: Path) -> None:
        """The corpus's embedded row, then its server row: each taken from the work directory's state when an
        earlier run built it (``--resume``), else built and recorded there."""
        embedded = self.built.get((corpus, EMBEDDED)) or self.build_embedded(corpus, source)
        self.result.rows.append(embedded)
        if self.args.skip_server:
            return
        server = self.built.get((corpus, SERVER))
        if server is not None:
            self.servers[corpus] = ChromaServer(Path(str(server.server_dir)))
        else:
            server = self.build_server(embedded, source)
        self.result.rows.append(server)

    def build_embedded(self, corpus: str, source: Path) -> Row:
        if corpus in self.args.adopt:
            return self.adopt(corpus, self.args.adopt[corpus])
        embedded = Row(corpus, EMBEDDED, str(self.fresh(f"{corpus}-embedded")))
        with self.phase(f"bare encode of {corpus}"):
            data, _ = run_worker(["encode", "--corpus", str(source), "--sample", str(self.args.encode_sample)],
                                 self.workdir, f"encode {corpus}")
            embedded.encode = Encode(**data)
            log(f"{corpus}: bare encode {embedded.encode.rate:.1f} passages/s over {embedded.encode.passages} "
                "passages")
        with self.phase(f"ingest of {corpus}, embedded"):
            embedded.ingest = self.ingest(embedded, source, None)
        embedded.articles, embedded.passages = embedded.ingest.articles, embedded.ingest.passages
        self.record(embedded)
        return embedded

    def build_server(self, embedded: Row, source: Path) -> Row:
        corpus = embedded.corpus
        server_dir = self.fresh(f"{corpus}-server")
        server = Row(corpus, SERVER, str(self.fresh(f"{corpus}-client")), str(server_dir), embedded.articles,
                     embedded.passages, encode=embedded.encode)
        if corpus in self.args.server_from_copy:
            with self.phase(f"server of {corpus}, from a copy of the embedded store"):
                from rag.store import CHROMA_DIR

                shutil.copytree(embedded.index_dir, server.index_dir, ignore=shutil.ignore_patterns(CHROMA_DIR))
                shutil.copytree(Path(embedded.index_dir) / CHROMA_DIR, server_dir)
                self.servers[corpus] = ChromaServer(server_dir)
                server.copied_from = embedded.index_dir
        else:
            self.servers[corpus] = ChromaServer(server_dir)
            with self.phase(f"ingest of {corpus}, server"):
                server.ingest = self.ingest(server, source, self.servers[corpus].url)
                server.ingest.server_peak_mb = self.servers[corpus].peak_mb()
        self.record(server)
        return server

    def adopt(self, corpus: str, index: Path) -> Row:
        """An embedded index another ``rag.ingest`` run built from the corpus, copied (its ingest is not timed)."""
        from rag.locking import writer_busy
        from rag.manifest import IndexManifest

        manifest = IndexManifest(index).read(load_settings({}, environ={}).fingerprint)
        if manifest is None or manifest.state != "ok" or writer_busy(index):
            raise BenchError(f"{index} is not a finished index of these settings (its ingest may still be running)")
        embedded = Row(corpus, EMBEDDED, str(self.fresh(f"{corpus}-embedded")), None, manifest.articles,
                       manifest.passages, copied_from=str(index))
        with self.phase(f"copy of {index} ({corpus}, ingested by another run)"):
            shutil.copytree(index, embedded.index_dir)
        self.result.notes.append(
            f"The embedded {corpus} index was not ingested by this run: it is a copy of {index}, which another "
            f"`rag.ingest` run built (`--adopt`); its ingest columns are empty.")
        self.record(embedded)
        return embedded

    def fresh(self, name: str) -> Path:
        path = self.workdir / name
        if path.exists():
            raise BenchError(f"{path} exists but no finished build of it is recorded in {self.workdir / STATE_FILE}: "
                             "remove it, or give an empty --workdir")
        return path

    def record(self, row: Row) -> None:
        """Keep a built row in the work directory's state, so that ``--resume`` can measure it again."""
        self.built[row.corpus, row.mode] = row
        (self.workdir / STATE_FILE).write_text(json.dumps([asdict(built) for built in self.built.values()], indent=1))

    def ingest(self, row: Row, source: Path, chroma_url: str | None) -> Ingest:
        command = python("-m", "rag.ingest", str(source), "--index", row.index_dir,
                         *(["--chroma-url", chroma_url] if chroma_url else []))
        child = checked(run_logged(command, f"ingest {row.name}"), f"ingest of {row.name}")
        articles, passages, inner = parse_summary(child.stderr)
        log(f"{row.name}: {passages} passages of {articles} articles in {child.seconds:.0f} s "
            f"({passages / child.seconds:.1f}/s), peak RSS {child.peak_mb:.0f} MB")
        return Ingest(child.seconds, inner, articles, passages, child.peak_mb, load_now(),
                      ended=datetime.now(UTC).isoformat(timespec="seconds"), cpu_seconds=child.cpu_seconds)

    def url(self, row: Row) -> str | None:
        return self.servers[row.corpus].url if row.mode == SERVER else None

    def cold_starts(self) -> None:
        question = self.result.questions[0]
        with self.phase("cold starts"):
            for row in self.result.rows:  # untimed: the page cache holds every index afterwards
                checked(run_child(ask_command(row, question, self.url(row))), f"rag.ask on {row.name}")
            for round_ in range(self.args.repeat):
                for row in self.result.rows:
                    child = checked(run_child(ask_command(row, question, self.url(row))), f"rag.ask on {row.name}")
                    row.cold_seconds.append(child.seconds)
                    row.cold_peak_mb = max(row.cold_peak_mb, mb(child.peak_mb * 1024))  # run_child's is MiB
                log(f"cold start {round_ + 1}/{self.args.repeat}: " + ", ".join(
                    f"{row.name} {row.cold_seconds[-1]:.2f}s" for row in self.result.rows))

    def warm(self) -> None:
        questions = self.workdir / "questions.json"
        questions.write_text(json.dumps(self.result.questions))
        with self.phase("warm latency"):
            for row in self.result.rows:
                url = self.url(row)
                data, _ = run_worker(["warm", "--index", row.index_dir, "--questions-file", str(questions),
                                      *(["--chroma-url", url] if url else [])], self.workdir, f"warm {row.name}")
                row.warm = Warm(data["latencies_ms"], data["parts_ms"], data["top"], data["startup_ms"], load_now())
                log(f"{row.name}: warm p50 {row.warm.p50:.1f} ms, p95 {row.warm.p95:.1f} ms")

    def stop_servers(self) -> None:
        for corpus, server in self.servers.items():
            row = self.result.row(corpus, SERVER)
            if row is not None:
                row.server_final_mb = server.peak_mb()
            server.stop()
        self.servers.clear()


def measure(args: argparse.Namespace, workdir: Path, command: str) -> Result:
    sources = [CORPORA[name] for name in args.corpora]
    missing = [str(path) for path in sources if not path.exists()]
    if missing:
        raise BenchError(f"missing corpora: {', '.join(missing)}")
    titles = read_titles([path for path in CORPORA.values() if path.exists()])
    result = Result(date=datetime.now(UTC).isoformat(timespec="seconds"), commit=current_commit(), command=command,
                    machine=machine_info(), questions=draw_questions(titles, args.questions),
                    settings={"corpora": args.corpora, "repeat": args.repeat, "encode_sample": args.encode_sample,
                              "skip_server": args.skip_server, "server_from_copy": args.server_from_copy,
                              "adopt": {corpus: str(index) for corpus, index in args.adopt.items()},
                              "question_sources": sorted(titles)})
    bench = Bench(args, workdir, result)
    try:
        for name, source in zip(args.corpora, sources, strict=True):
            bench.build(name, source)
        bench.cold_starts()
        bench.warm()
    finally:
        bench.stop_servers()
    for row in result.rows:  # once the servers have stopped (and written what they held in memory)
        row.disk_mb = disk_bytes(*(Path(path) for path in (row.index_dir, row.server_dir) if path)) / 1e6
    return result


# --- report ------------------------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def verdict(value: float | None, goal: float, below: bool = False) -> str:
    if value is None:
        return "not run"
    return "met" if (value < goal if below else value <= goal) else "**MISSED**"


def measures(result: Result) -> list[list[str]]:
    """The issue's measures: (what, measured, goal, status)."""
    rows = []
    largest = next((name for name in ("reuters", "bbc", "seeds") if result.row(name, EMBEDDED)), None)
    # The ingest goals are the 19,043 Reuters articles'; a run without them says so rather than judging a smaller one.
    big = result.row("reuters", EMBEDDED)
    if largest:
        ingest = big.ingest if big else None
        rows.append(["reuters ingest, wall time (embedded)", fmt(ingest.seconds / 60 if ingest else None, ".1f",
                                                                    " min"),
                     f"≤ {GOAL_INGEST_SECONDS / 60:.0f} min", verdict(ingest.seconds if ingest else None,
                                                                     GOAL_INGEST_SECONDS)])
        rows.append(["reuters ingest, peak RSS (embedded)", fmt(ingest.peak_mb if ingest else None, ",.0f", " MB"),
                     f"< {GOAL_PEAK_MB:,.0f} MB", verdict(ingest.peak_mb if ingest else None, GOAL_PEAK_MB,
                                                           below=True)])
    for mode in (EMBEDDED, SERVER):
        bbc, top, seeds = result.row("bbc", mode), result.row(largest or "", mode), result.row("seeds", mode)
        if largest != "bbc" and bbc and top and bbc.warm and top.warm:
            growth = ratio(top.warm.p50, bbc.warm.p50)
            rows.append([f"warm p50, {largest} / bbc ({mode})", f"{growth:.2f}x", f"≤ {GOAL_WARM_GROWTH}x",
                         verdict(growth, GOAL_WARM_GROWTH)])
        if largest != "seeds" and seeds and top and seeds.cold and top.cold:
            growth = ratio(top.cold, seeds.cold)
            rows.append([f"cold start, {largest} / seeds ({mode})", f"{growth:.2f}x", f"≤ {GOAL_COLD_GROWTH}x",
                         verdict(growth, GOAL_COLD_GROWTH)])
    for row in result.rows:
        embedded = result.row(row.corpus, EMBEDDED)
        if row.mode == SERVER and embedded and row.warm and embedded.warm:
            slower = ratio(row.warm.p50, embedded.warm.p50)
            rows.append([f"warm p50, server / embedded ({row.corpus})", f"{slower:.2f}x", f"≤ {GOAL_SERVER_WARM}x",
                         verdict(slower, GOAL_SERVER_WARM)])
    return rows


def rows_table(result: Result) -> str:
    seeds = result.row("seeds", EMBEDDED)
    baseline = seeds.cold if seeds else None
    lines = []
    for row in result.rows:
        ingest, encode, warm = row.ingest, row.encode, row.warm
        lines.append([
            row.corpus, row.mode, f"{row.articles:,}", f"{row.passages:,}",
            fmt(ingest.seconds if ingest else None, ".0f"),
            fmt(ingest.rate if ingest else None, ".1f"),
            fmt(encode.rate if encode else None, ".1f"),
            fmt(ratio(ingest.rate, encode.rate) if ingest and encode else None, ".2f", "x"),
            fmt(ratio(ingest.passages / ingest.cpu_seconds, encode.passages / encode.cpu_seconds)
                if ingest and encode and ingest.cpu_seconds and encode.cpu_seconds else None, ".2f", "x"),
            fmt(ingest.peak_mb if ingest else None, ",.0f"),
            fmt(row.disk_mb, ",.1f"),
            fmt(row.cold, ".2f"),
            fmt(ratio(row.cold, baseline) if row.cold and baseline else None, ".2f", "x"),
            fmt(warm.p50 if warm else None, ".1f"), fmt(warm.p95 if warm else None, ".1f"),
        ])
    return markdown_table(["corpus", "store", "articles", "passages", "ingest s", "ingest passages/s",
                           "bare encode passages/s", "ingest / encode", "same, per CPU second",
                           "ingest peak RSS MB", "index on disk MB", "cold start s", "cold / seeds", "warm p50 ms",
                           "warm p95 ms"], lines, left=2)


def parts_table(result: Result) -> str:
    lines = []
    for row in result.rows:
        if row.warm:
            count = len(row.warm.latencies_ms)
            lines.append([row.name, *(f"{row.warm.parts_ms.get(part, 0.0) / count:.1f}"
                                      for part in (EMBED_PART, DENSE_PART, BM25_PART, SENTENCES_PART, "rest"))])
    return markdown_table(["index", "query embedding", "vector search", "BM25", "sentence fetch", "rest"], lines)


def startup_table(result: Result) -> str:
    steps = list(dict.fromkeys(step for row in result.rows if row.warm for step in row.warm.startup_ms))
    lines = [[row.name, *(fmt(row.warm.startup_ms.get(step), ".0f") for step in steps)]
             for row in result.rows if row.warm]
    return markdown_table(["index", *(f"{step} ms" for step in steps)], lines)


def ingests_table(result: Result) -> str:
    lines = [[row.name, ingest.ended or "—", f"{ingest.load:.2f}", f"{ingest.inner_seconds:.0f}",
              f"{ingest.seconds - ingest.inner_seconds:.0f}"]
             for row in result.rows if (ingest := row.ingest) is not None]
    return markdown_table(["ingest", "ended (UTC)", "load average (1 min) at the end", "in the ingest s",
                           "rest of the process s"], lines)


def agreement_lines(result: Result) -> list[str]:
    lines = []
    for row in result.rows:
        embedded = result.row(row.corpus, EMBEDDED)
        if row.mode == SERVER and row.warm and embedded and embedded.warm:
            share = top_agreement(embedded.warm.top, row.warm.top)
            how = ("a server serving a copy of the embedded store" if row.copied_from
                   else "a separate ingest into the server")
            lines.append(f"- {row.corpus} ({how}): the same passages in the same order for {share:.0%} of the "
                         f"{len(row.warm.top)} questions")
    return lines


def server_memory_lines(result: Result) -> list[str]:
    lines = []
    for row in result.rows:
        if row.mode == SERVER:
            during = fmt(row.ingest.server_peak_mb if row.ingest else None, ",.0f")
            lines.append(f"- {row.corpus}: the Chroma server's peak RSS {during} MB during its ingest; "
                         f"{fmt(row.server_final_mb, ',.0f')} MB in the server process that answered the cold starts "
                         "and warm questions (started anew on the same data when a run is resumed)")
    return lines


def render(result: Result, chart: str | None) -> str:
    machine = result.machine
    load = markdown_table(["phase", "load average before (1/5/15 min)", "after"],
                          [[name, " / ".join(map(str, values[:3])), " / ".join(map(str, values[3:]))]
                           for name, values in result.load.items()])
    engines = sorted({row.encode.engine for row in result.rows if row.encode is not None})
    encode_note = ("The bare encode is the model's `encode` alone, in its own process with the model already "
                   f"loaded (the passage encoder ingest uses: {', '.join(engines)}), over up to "
                   f"{result.settings['encode_sample']:,} passages of the same corpus (whole "
                   f"articles in a fixed random order, seed {SEED}, split as ingest splits them); the ingest's rate "
                   "is its passages over the whole process's wall time (imports, model load, split, embed with "
                   "sentence vectors, Chroma writes, catalogue, BM25). Wall-time rates move with the other work on "
                   "the machine at the time; the same ratio in passages per CPU second (the ingest process and its "
                   "children, the encode's process) moves much less, but leaves out a server's own CPU time.")
    sections = [
        "# Scale: 2 to 20,000 articles, embedded and server stores",
        f"Written by `make bench-scale` on {result.date} (commit `{result.commit}`); regenerated on every run, do not "
        "edit. Raw numbers: `scale.json`.",
        f"Command: `{result.command}`",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} cores, {machine.get('ram', '?')} RAM, "
        f"Python {machine.get('python', '?')}, chromadb {machine.get('chromadb', '?')}; shared with other work, so "
        "the load averages of each phase are listed below and every comparison is a ratio taken in this run.",
        "## Measures",
        markdown_table(["measure", "measured", "goal", "status"], measures(result), left=4),
        "## Every index",
        rows_table(result),
        encode_note,
        *(["Ingest runs (the time in the ingest is its own summary's, model load included; the rest of the "
           "process's wall time is interpreter start-up and imports):", ingests_table(result)]
          if any(row.ingest for row in result.rows) else []),
        f"Cold start: wall time of `python -m rag.ask \"{result.questions[0]}\" --index DIR` (plus `--chroma-url URL` "
        f"for a server) in a fresh process, median of {result.settings['repeat']} runs after one untimed run; the "
        "runs of all indexes alternate. A server is already running (and has served the untimed run): a server "
        "row's cold start is the client's. Warm latency: one process per index asks "
        f"{len(result.questions)} questions once each after one untimed question; the same questions for every "
        "index, drawn from the titles of " + " and ".join(f"`{name}`" for name in result.settings["question_sources"])
        + f" (seed {SEED}), so that only the corpus differs between rows.",
        "Mean ms per question, by part (parts timed by wrapping the retriever's calls, as `make bench` does):",
        parts_table(result),
        "Start-up in the warm-latency process, step by step, after the libraries were imported (imports cost the "
        "same at any corpus size; the cold start above includes them): opening the store (Chroma's client, the "
        "passage collection and a count of it: the embedded store reads the collection's vector index into memory "
        "on this first touch, a server has it in memory already), checking the index (manifest, counts, the lexical "
        "index's version: names and sizes of its files, their checksums only for files not yet verified), making "
        "the retriever (query encoder, BM25 memory-mapped; spelling variants are grouped only when a question "
        "needs them) and answering the first question:",
        startup_table(result),
    ]
    agreement = agreement_lines(result)
    if agreement:
        sections += ["## Server against embedded", "Top passages of each question, server row against embedded row:",
                     "\n".join(agreement), "\n".join(server_memory_lines(result))]
    if chart:
        sections.append(f"![warm latency and cold start against corpus size]({chart})")
    sections += ["## Load during the run", load, *result.notes]
    return "\n\n".join(sections) + "\n"


def chart_lines(result: Result) -> tuple[dict[str, list[tuple[float, float]]], dict[str, list[tuple[float, float]]]]:
    warm: dict[str, list[tuple[float, float]]] = {}
    cold: dict[str, list[tuple[float, float]]] = {}
    for row in result.rows:
        articles = float(row.articles)
        if row.warm:
            warm.setdefault(f"{row.mode} p50", []).append((articles, row.warm.p50))
            warm.setdefault(f"{row.mode} p95", []).append((articles, row.warm.p95))
        if row.cold:
            cold.setdefault(row.mode, []).append((articles, row.cold))
    return warm, cold


# --- command line ------------------------------------------------------------------------------------------------


def adoption(text: str) -> tuple[str, Path]:
    corpus, _, directory = text.partition("=")
    if corpus not in CORPORA or not directory:
        raise argparse.ArgumentTypeError(f"expected CORPUS=DIR with CORPUS one of {', '.join(CORPORA)}")
    return corpus, Path(directory).resolve()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", choices=sorted(CORPORA), default=list(CORPORA),
                        help="corpora to index, smallest first (default: seeds bbc reuters)")
    parser.add_argument("--questions", type=int, default=30, help="warm-latency questions (default 30)")
    parser.add_argument("--repeat", type=int, default=3, help="timed cold starts per index (default 3)")
    parser.add_argument("--encode-sample", type=int, default=1000, metavar="N",
                        help="passages in the bare encode (default 1000)")
    parser.add_argument("--skip-server", action="store_true", help="embedded store only")
    parser.add_argument("--server-from-copy", nargs="*", default=["reuters"], metavar="CORPUS",
                        help="corpora whose server serves a copy of the embedded store instead of a second ingest "
                        "(default: reuters)")
    parser.add_argument("--workdir", type=Path,
                        help="where the indexes go (kept); default: a temporary directory, removed afterwards")
    parser.add_argument("--adopt", nargs="*", default=[], metavar="CORPUS=DIR", type=adoption,
                        help="measure a copy of an index another rag.ingest run built from CORPUS instead of ingesting "
                        "it (its ingest is then not timed)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the indexes an earlier run with this --workdir built (and its ingest numbers); "
                        "build the rest, then measure every index")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where SCALE.md, scale.json, scale.svg go")
    parser.add_argument("--report-from", type=Path, metavar="SCALE_JSON",
                        help="measure nothing: write the report again from the raw numbers of a run")
    parser.add_argument("--worker", choices=("encode", "warm"), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--chroma-url", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--questions-file", dest="questions_file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.adopt = dict(args.adopt)
    return args


def worker(args: argparse.Namespace) -> int:
    if args.worker == "encode":
        data = encode_worker(args.corpus, args.sample)
    else:
        data = warm_worker(args.index, args.chroma_url, json.loads(args.questions_file.read_text()))
    args.result.write_text(json.dumps(data))
    return 0


def write_report(result: Result, out: Path) -> None:
    from rag.charts import scale_chart

    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n")
    warm, cold = chart_lines(result)
    chart = None
    if warm:
        scale_chart(warm, cold, out / "scale.svg")
        chart = "scale.svg"
    (out / "SCALE.md").write_text(render(result, chart), encoding="utf-8")
    log(f"wrote {out / 'SCALE.md'}, {out / 'scale.json'}" + (f", {out / chart}" if chart else ""))


def main() -> int:
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    interpreter = Path(sys.executable)
    shown = interpreter.relative_to(ROOT) if interpreter.is_relative_to(ROOT) else interpreter
    command = shlex.join([str(shown), "-m", "benchmarks.scale", *argv])
    if args.report_from:
        write_report(Result.from_json(json.loads(args.report_from.read_text())), args.out)
        return 0
    if args.resume and not args.workdir:
        raise BenchError("--resume needs the --workdir of the run to resume")
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = measure(args, args.workdir.resolve(), command)
    else:
        with tempfile.TemporaryDirectory(prefix="rag-bench-scale-") as temporary:
            result = measure(args, Path(temporary), command)
    write_report(result, args.out)
    return 0


if __name__ == "__main__":
    run(main)
