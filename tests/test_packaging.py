"""The installed package is the whole library: every module of rag/ and the files it reads beside its code (the
trained models, the calibration, the chat page's static files), and none of the benchmarks or tests."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_every_module_and_data_file_of_rag(tmp_path: Path) -> None:
    # Built from a copy so that the build's own files (build/, *.egg-info) never land in the working tree.
    source = tmp_path / "source"
    archive = subprocess.run(["git", "ls-files", "-z", "pyproject.toml", "rag"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, archive):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--no-index", "--quiet", "--wheel-dir", str(tmp_path / "wheel")], check=True)
    wheel, = (tmp_path / "wheel").glob("*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    tracked = {name for name in archive if name.startswith("rag/") and "__pycache__" not in name}
    assert tracked - packaged == set()
    assert not any(name.startswith(("benchmarks/", "tests/")) for name in packaged)
