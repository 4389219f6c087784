"""``python -m rag.ingest [PATH ...] [--index DIR]``: index articles (default ``seeds/``) incrementally.

Exit code 0 when every input was ingested, 1 when some file or line was skipped (each named on stderr).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.cli import add_index_flags, log, run, settings_from
from rag.pipeline import Assistant


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.ingest", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, help="directories or .txt/.md/.html/.jsonl files")
    add_index_flags(parser)
    args = parser.parse_args()
    assistant = Assistant(settings_from(args))
    report = assistant.ingest(args.paths or None)
    log(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    run(main)
