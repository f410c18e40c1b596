"""``python -m runtable.execute PROPOSAL RUN --in DB_DIR ...``: execute one run.

Prints the :class:`~runtable.execute.runner.RunOutcome` as one JSON line on stdout;
everything else (the context's own output, C libraries writing to fd 1) goes to
stderr and the run's log. Exit status 0 when the run was processed (even if some
variables failed), 1 when it could not be.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..selection import DATA_NAMES, Selection


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runtable.execute",
        description="Execute a context file for one run and write its result fragment.",
    )
    parser.add_argument("proposal", type=int)
    parser.add_argument("run", type=int)
    parser.add_argument("--in", dest="db_dir", type=Path, default=Path.cwd(),
                        help="database folder (default: the current directory)")
    parser.add_argument("--data", choices=DATA_NAMES, default="raw",
                        help="which data triggered this job (default: raw)")
    parser.add_argument("--var", dest="variables", action="append", default=[],
                        metavar="NAME", help="only this variable (and its dependencies)")
    parser.add_argument("--match", action="append", default=[], metavar="TITLE",
                        help="only variables whose title contains TITLE")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--cluster-job", dest="cluster", action="store_const", const=True,
                         help="only cluster=True variables (and their dependencies)")
    cluster.add_argument("--no-cluster", dest="cluster", action="store_const", const=False,
                         help="only variables not marked cluster=True")
    parser.add_argument("--context", type=Path, default=None,
                        help="context file (default: DB_DIR/context.py)")
    return parser.parse_args(argv)


def selection_of(args: argparse.Namespace) -> Selection:
    """The selection that :func:`parse_args`'s answer names."""
    return Selection(args.data, tuple(args.variables), tuple(args.match), args.cluster)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Keep the real stdout for the result line; point fd 1 at stderr so stray output
    # from user code (including C extensions) can't corrupt it.
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)

    from .runner import execute_run

    outcome = execute_run(
        args.db_dir, args.proposal, args.run,
        selection=selection_of(args),
        context_file=args.context,
    )
    result.write(outcome.to_json() + "\n")
    result.flush()
    return 0 if outcome.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
