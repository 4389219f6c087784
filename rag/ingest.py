"""``python -m rag.ingest [PATH ...] [--index DIR]``: index articles (default ``seeds/``) incrementally.
``--check`` says what is wrong with the index, one line a problem; ``--rebuild`` rebuilds it from the sources it
recorded (after damage).

Exit code 0 when every input was ingested (or the check found nothing), 1 when some file or line was skipped (each
named on stderr) or the check found a problem.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.cli import add_index_flags, fail, log, run, settings_from
from rag.integrity import check_index, rebuild_index
from rag.pipeline import Assistant


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.ingest", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, help="directories or .txt/.md/.html/.jsonl files")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="check the index; print one line per problem")
    action.add_argument("--rebuild", action="store_true",
                        help="set the store aside and ingest again every path the index recorded")
    add_index_flags(parser)
    args = parser.parse_args()
    if (args.check or args.rebuild) and args.paths:
        fail("--check and --rebuild take no paths: they use the ones the index recorded")
    settings = settings_from(args)
    if args.check:
        problems = check_index(settings)
        for problem in problems:
            print(problem)
        if not problems:
            print(f"{settings.index_dir}: no problem found")
        return 1 if problems else 0
    report = rebuild_index(settings, log) if args.rebuild else Assistant(settings).ingest(args.paths or None)
    log(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    run(main)
