"""The ``runtable`` command.

Each subcommand's work lives in the part it belongs to; this module only parses
arguments and imports that part when the subcommand runs, so ``runtable --help`` stays
fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo.run import run_demo

    return run_demo(args.dir, n_runs=args.runs, keep=args.keep)


def _cmd_check(args: argparse.Namespace) -> int:
    from .context.check import check_file

    return check_file(args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runtable",
        description="A live, self-filling table of an experiment's runs.",
    )
    parser.add_argument("--version", action="version", version=f"runtable {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="make mock runs, process them with a sample context file and show the table",
        description="Create a mock proposal with a few realistic runs and a sample context "
        "file, process every run, and print the resulting table.",
    )
    demo.add_argument("dir", nargs="?", type=Path, default=Path("demo"),
                      help="folder for the mock proposal and database (default: ./demo)")
    demo.add_argument("--runs", type=int, default=6, help="how many runs to make (default 6)")
    demo.add_argument("--keep", action="store_true",
                      help="keep an existing demo folder instead of starting afresh")
    demo.set_defaults(func=_cmd_demo)

    check = sub.add_parser(
        "check",
        help="load and validate a context file without touching any database",
        description="Compile a context file and report every problem with its line, "
        "pyflakes warnings, and the variables it defines.",
    )
    check.add_argument("file", nargs="?", type=Path, default=Path("context.py"))
    check.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``runtable`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
