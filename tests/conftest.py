"""Shared fixtures: a seed index built once per run, and a network guard for this process and its children."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARD_DIR = Path(__file__).resolve().parent / "offline_guard"
SEEDS = ROOT / "seeds"

# Every Python started by the tests loads the guard too (sitecustomize on PYTHONPATH).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR), str(ROOT), os.environ.get("PYTHONPATH")]))
sys.path.insert(0, str(GUARD_DIR))
import sitecustomize  # noqa: E402,F401  (installs the guard in this process)

from rag.pipeline import Assistant  # noqa: E402
from rag.settings import Settings, load_settings  # noqa: E402


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of seeds/ built once; tests that change an index copy the corpus and build their own."""
    index = tmp_path_factory.mktemp("seed-index")
    report = Assistant(load_settings({"index_dir": str(index)}, environ={})).ingest([SEEDS])
    assert report.new == 2 and not report.problems
    return index


@pytest.fixture(scope="session")
def seed_settings(seed_index: Path) -> Settings:
    return load_settings({"index_dir": str(seed_index)}, environ={})


@pytest.fixture(scope="session")
def assistant(seed_settings: Settings) -> Assistant:
    return Assistant(seed_settings)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target, ignore=shutil.ignore_patterns("README*"))
    yield target


def run_module(module: str, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module args`` as a user would, in a fresh process."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def run_code(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args`` in a fresh process from the repository root, with the model hubs offline."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Settings:
    """Settings for an empty index of this test's own (under ``tmp_path``), ignoring any ``RAG_*`` variables."""
    return load_settings({"index_dir": str(tmp_path / "index")}, environ={})


@pytest.fixture
def no_rag_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove ``RAG_*`` variables, so command-line runs (``run_module``) see only the flags a test gives."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
