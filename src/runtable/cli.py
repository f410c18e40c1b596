"""The ``runtable`` command.

Each subcommand's work lives in the part it belongs to; this module only parses
arguments and imports that part when the subcommand runs, so ``runtable --help`` stays
fast.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .selection import DATA_KINDS, DATA_NAMES, Selection

if TYPE_CHECKING:
    from .server.discovery import ServerInfo

DB_FOLDER_HELP = ("database folder (default: the current directory); a proposal number "
                  "means its default folder <proposal>/usr/Shared/amore")

STARTER_CONTEXT = '''\
"""Context file: each @Variable function below is a column of the run table,
computed for every run. Check it with `runtable check context.py`, then process runs
with `runtable reprocess all`. Files written for DAMNIT (`from damnit_ctx import ...`)
work unchanged.
"""

from runtable.context import Variable


# The first argument is the run, opened with extra_data (a DataCollection).
@Variable(title="Trains")
def n_trains(run):
    """Number of trains recorded in the run."""
    return len(run.train_ids)


# More examples, to adapt to your instrument's source names:
#
# from runtable.context import Cell
#
# @Variable(title="XGM/Photon flux", units="µJ", summary="mean")
# def xgm_flux(run):
#     return run["SA1_XTD2_XGM/DOOCS/MAIN", "pulseEnergy.photonFlux"].xarray()
#
# @Variable(title="XGM/Flux stability", units="%")
# def flux_stability(run, flux: "var#xgm_flux"):  # the value of another variable
#     rsd = 100 * float(flux.std() / flux.mean())
#     return Cell(rsd, bold=rsd > 2)
'''


class CommandError(Exception):
    """A problem the user can fix: printed as ``Error: ...``, exit status 1."""


# -- helpers -----------------------------------------------------------------------------
def runtable_command() -> str:
    """``runtable`` as it can be typed here, for hints people copy: the bare name when
    it is on PATH, else the path this command was started by (e.g. ``.venv/bin/runtable``
    after ``./dev demo``), else ``python -m runtable.cli``."""
    on_path = shutil.which("runtable")
    started = Path(sys.argv[0])
    if started.name == "runtable" and started.is_file():
        if on_path is not None and Path(on_path).resolve() == started.resolve():
            return "runtable"
        return shlex.quote(os.path.relpath(started) if not started.is_absolute()
                           or started.is_relative_to(Path.cwd()) else str(started))
    if on_path is not None:
        return "runtable"
    return f"{shlex.quote(sys.executable)} -m runtable.cli"


def _err(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)


def _default_folder(proposal: int) -> Path:
    from .sources import ProposalNotFoundError, default_database_folder

    try:
        return default_database_folder(proposal)
    except ProposalNotFoundError as exc:
        raise CommandError(str(exc)) from None


def folder_arg(value: str | None) -> Path:
    """The database folder named by ``--in`` (a path or a proposal number), or the
    current directory when it holds a database; :class:`CommandError` otherwise."""
    if value is None:
        here = Path.cwd()
        if (here / "runs.sqlite").is_file():
            return here
        raise CommandError(
            f"{here} is not a database folder (no runs.sqlite). Run this command in one, "
            "or point at one with --in DIR (or --in PROPOSAL for "
            "<proposal>/usr/Shared/amore); create one with `runtable init`.")
    folder = _default_folder(int(value)) if value.isdigit() else Path(value)
    if not (folder / "runs.sqlite").is_file():
        raise CommandError(f"{folder} is not a database folder (no runs.sqlite); "
                           "create one with `runtable init`")
    return folder


def _add_listen(parser: argparse.ArgumentParser) -> None:
    """--host, --port and --token of the commands that start a web server."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8780,
                        help="port (default 8780, or the next free one; 0: any free port)")
    parser.add_argument("--token", default=None,
                        help="the token to require (default: $RUNTABLE_TOKEN, else a new "
                        "random one); prefer the variable, others can see a command line")


def _add_in(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--in", dest="folder", metavar="DIR", default=None,
                        help=DB_FOLDER_HELP)


def _add_where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-w", "--where", metavar="EXPR", default=None,
                        help="only the runs this filter keeps, e.g. "
                        "'xgm_flux > 1.5 and sample = \"YAG\"' or 'run in 10..20' "
                        "(the language of the web page's filters: docs/filters.md)")


# -- commands ----------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    if args.once:
        from .demo.run import run_demo_once

        return run_demo_once(args.dir, n_runs=6 if args.runs is None else args.runs,
                             keep=args.keep)
    from .demo.live import run_live_demo
    from .server.serve import resolve_token

    if args.every <= 0:
        raise CommandError("--every must be a positive number of seconds")
    try:
        token = resolve_token(args.token)  # (before the demo is built)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        return run_live_demo(args.dir, n_runs=3 if args.runs is None else args.runs,
                             every_s=args.every,
                             max_runs=args.max_runs, keep=args.keep, host=args.host,
                             port=args.port, token=token)
    except OSError as exc:
        raise CommandError(f"cannot serve the demo on {args.host}:{args.port}: "
                           f"{exc.strerror or exc}") from None


def _cmd_check(args: argparse.Namespace) -> int:
    from .context.check import check_file

    if args.timeout is not None and args.timeout <= 0:
        raise CommandError("--timeout must be a positive number of seconds")
    return check_file(args.file, timeout=args.timeout)


def _cmd_init(args: argparse.Namespace) -> int:
    from .store import StoreError, create_folder, open_db

    target: str = args.target
    if target.isdigit():
        proposal = int(target)
        if args.proposal is not None and args.proposal != proposal:
            raise CommandError(f"Two different proposals: {proposal} and --proposal "
                               f"{args.proposal}")
        folder = _default_folder(proposal)
    else:
        if args.proposal is None:
            raise CommandError(
                f"{target} is a folder: say which proposal it is for with --proposal N "
                "(or give a proposal number instead, for <proposal>/usr/Shared/amore)")
        proposal, folder = args.proposal, Path(target)
    if (folder / "runs.sqlite").exists():
        with open_db(folder, readonly=True) as db:
            existing = db.proposal
        print(f"{folder} already has a database (proposal {existing}); nothing changed.",
              file=sys.stderr)
        return 1

    context_text: str | None = STARTER_CONTEXT
    user_vars = []
    existing_context = folder / "context.py"
    if existing_context.exists():
        # Someone's work: never replaced. Keep it, or ask them to move it away.
        if args.context is not None or args.like is not None:
            raise CommandError(
                f"{existing_context} exists already; move it away first, or leave out "
                f"--context/--like to keep it as the new database's context file")
        context_text = None
    if args.context is not None:
        try:
            context_text = args.context.read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {args.context}: {exc.strerror}") from None
    elif args.like is not None:
        like = folder_arg(args.like)
        if (like / "context.py").is_file():
            context_text = (like / "context.py").read_text()
        with open_db(like, readonly=True) as other:
            user_vars = [v for v in other.variables().values() if v.user_editable]

    try:
        db = create_folder(folder, proposal, context_text)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"Cannot create the database folder {folder}: "
                           f"{exc.strerror or exc}") from None
    with db:
        for var in user_vars:
            assert var.type is not None  # user-editable
            db.add_user_variable(var.name, var.type, title=var.title,
                                 description=var.description)
    print(f"Created the database folder {folder} for proposal {proposal}.")
    if context_text is None:
        print(f"Kept the context file that was there already, {existing_context}.")
    if args.like is not None:
        print(f"Copied the context file and {len(user_vars)} user-editable "
              f"variable{'s' if len(user_vars) != 1 else ''} from {like}.")
    context = folder / "context.py"
    print(f"Next: edit {context}, check it with `runtable check {context}`,\n"
          f"then process runs with `runtable reprocess all --in {folder}`.")
    return 0


def _cmd_reprocess(args: argparse.Namespace) -> int:
    from .reprocess import (
        ConsoleReporter,
        ContextLoadError,
        FolderInUse,
        ReprocessError,
        ReprocessInterrupted,
        reprocess,
        summary_line,
    )
    from .runranges import parse_runs

    try:
        runs = parse_runs(args.runs, allow_all=True)
    except ValueError as exc:
        _err(str(exc))
        return 2
    if args.jobs is not None and args.jobs < 1:
        _err("--jobs must be at least 1")
        return 2
    folder = folder_arg(args.folder)
    reporter = ConsoleReporter()
    try:
        outcomes = reprocess(
            folder, runs, selection=Selection(args.data, tuple(args.var), tuple(args.match)),
            jobs=args.jobs, reporter=reporter)
    except ContextLoadError as exc:
        _err(f"the context file {folder / 'context.py'} cannot be loaded; nothing was "
             "processed:")
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except FolderInUse as exc:
        return _hand_over(folder, args, exc)
    except ReprocessError as exc:
        _err(str(exc))
        return 1
    except ReprocessInterrupted as exc:
        print(f"Interrupted. {summary_line(exc.outcomes)}", file=sys.stderr)
        return 130
    finally:
        reporter.close()
    print(summary_line(outcomes) if outcomes else "No runs to process.")
    return 0


def _hand_over(folder: Path, args: argparse.Namespace, busy: Exception) -> int:
    """``runtable reprocess`` while a service writes the folder: queue the runs there."""
    from .server.client import ClientError, post_reprocess
    from .server.discovery import read_server_file

    holder = getattr(busy, "holder", None)
    info = read_server_file(folder)
    if holder is None or not holder.url or info is None or info.url != holder.url:
        raise CommandError(str(busy))
    variables = list(dict.fromkeys(args.var)) or None
    if variables is None and args.match:
        from .jobs import inspect_context
        from .store import open_db

        with open_db(folder, readonly=True) as db:
            python = db.get_setting("context_python")
        context = inspect_context(folder, python)
        if context.problems:
            raise CommandError(f"the context file cannot be loaded:\n{context.problems}")
        variables = context.select(Selection(args.data, match=tuple(args.match)))
        if not variables:
            raise CommandError(f"No variable title contains "
                               f"{' or '.join(map(repr, args.match))}")
    try:
        answer = post_reprocess(info, ",".join(args.runs), variables, args.data)
    except ClientError as exc:
        raise CommandError(f"{holder.describe()} writes this folder, and it did not "
                           f"take the runs: {exc}") from None
    jobs = answer.get("jobs") or []
    print(f"{holder.describe()} writes this folder: handed the runs to it, "
          f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} queued. Follow them on its "
          "web page or with `runtable events`.")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from .store import SETTINGS, ValidationError, open_db

    folder = folder_arg(args.folder)
    if args.key is None:
        if args.delete:
            raise CommandError("--delete needs a KEY")
        with open_db(folder, readonly=True) as db:
            stored = db.stored_settings()
        for key, setting in SETTINGS.items():
            if key in stored:
                print(f"{key}={stored[key]}")
            elif setting.default_rule:
                print(f"{key}={setting.default}  # default on this machine: "
                      f"{setting.default_rule}")
            elif setting.default is not None:
                print(f"{key}={setting.default}  # default")
            else:
                print(f"{key}=  # not set")
        return 0
    key = args.key.replace("-", "_")
    if key not in SETTINGS:
        _err(f"unknown setting {args.key!r}. Known settings: {', '.join(SETTINGS)}")
        return 2
    try:
        if args.delete:
            if args.value is not None:
                raise CommandError("give either a VALUE or --delete, not both")
            with open_db(folder) as db:
                db.delete_setting(key)
                value = db.get_setting(key)
            print(f"Deleted {key}" + (f"; its default {value} applies" if value is not None
                                      else ""))
        elif args.value is not None:
            with open_db(folder) as db:
                value = db.set_setting(key, args.value)
            print(f"{key}={value}")
        else:
            with open_db(folder, readonly=True) as db:
                value = db.get_setting(key)
            if value is None:
                print(f"{key} is not set", file=sys.stderr)
                return 1
            print(value)
    except ValidationError as exc:
        _err(f"{key}: {exc}")
        return 2
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from .tableview import print_table

    folder = folder_arg(args.folder)
    columns = [c.strip() for spec in args.columns for c in spec.split(",") if c.strip()]
    try:
        print_table(folder, with_titles=args.titles, columns=columns or None,
                    all_columns=args.all_columns, where=args.where)
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    except ValueError as exc:  # WhereError: the filter, with where it went wrong
        raise CommandError(f"--where: {exc}") from None
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .tableview import FORMAT_SUFFIXES, export_table

    folder = folder_arg(args.folder)
    fmt = args.format or FORMAT_SUFFIXES.get(args.output.suffix.lower())
    if fmt is None:
        raise CommandError(f"cannot tell the format from the name {args.output.name!r}; "
                           f"give --format {'|'.join(sorted(set(FORMAT_SUFFIXES.values())))}")
    if not args.output.parent.is_dir():
        raise CommandError(f"cannot write {args.output}: the folder {args.output.parent} "
                           "does not exist")
    try:
        n = export_table(folder, args.output, fmt, with_titles=args.titles,
                         where=args.where)
    except ValueError as exc:  # WhereError: nothing is written
        raise CommandError(f"--where: {exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"Wrote {n} run{'s' if n != 1 else ''} to {args.output} ({fmt}).")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    from .tableview import print_history

    folder = folder_arg(args.folder)
    try:
        print_history(folder, args.run, args.name, as_json=args.json)
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from .server.serve import serve
    from .service import Service, ServiceError
    from .store import UnsupportedVersionError, open_db

    folder = folder_arg(args.dir)
    # A damaged database is an Error line before anything starts (or is written). Read
    # only: upgrading a folder the reference made happens once the port answers.
    try:
        open_db(folder, readonly=True).close()
    except UnsupportedVersionError:
        open_db(folder).close()  # an older format (upgraded now) or no database at all
    # What the service does (runs found, jobs failing, the context file not loading)
    # is what a person watching this terminal needs to see.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%H:%M:%S"))
    root = logging.getLogger("runtable")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        service = Service(folder)
        return serve(folder, host=args.host, port=args.port, token=args.token,
                     service=service)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:  # an unusable --token
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: "
                           f"{exc.strerror or exc}") from None


def _server_for(args: argparse.Namespace) -> ServerInfo:
    from .server.client import ClientError, server_from_args

    folder = None if args.url else folder_arg(args.folder)
    try:
        return server_from_args(folder, args.url, args.token)
    except ClientError as exc:
        raise CommandError(str(exc)) from None


def _cmd_notify(args: argparse.Namespace) -> int:
    from .server.client import ClientError, post_notify

    if args.run < 0:
        raise CommandError("RUN must be a non-negative run number")
    info = _server_for(args)
    try:
        post_notify(info, args.run, args.data)
    except ClientError as exc:
        raise CommandError(str(exc)) from None
    print(f"Told the service at {info.url} that run {args.run} ({args.data}) is complete.")
    return 0


def parse_value(text: str) -> Any:
    """A value typed on the command line: a number, true/false, a JSON list of numbers
    (an array), else the text itself."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return text
    if value is None or isinstance(value, dict | str):
        return text
    return value


def _cmd_set(args: argparse.Namespace) -> int:
    from .external import ExternalWriteError, write_values

    folder = folder_arg(args.folder)
    value = args.value if args.string else parse_value(args.value)
    try:
        names = write_values(folder, args.run, {args.name: value},
                             titles={args.name: args.title} if args.title else None)
    except ExternalWriteError as exc:
        raise CommandError(str(exc)) from None
    print(f"Stored {', '.join(names)} = {value!r} for run {args.run}.")
    return 0


def _cmd_read_context(args: argparse.Namespace) -> int:
    from .external import ExternalWriteError, read_context

    folder = folder_arg(args.folder)
    try:
        problems, changed = read_context(folder)
    except ExternalWriteError as exc:
        raise CommandError(str(exc)) from None
    if problems is not None:
        raise CommandError(f"the context file {folder / 'context.py'} cannot be loaded; "
                           f"the table's variables are unchanged:\n{problems}")
    from .server.discovery import read_server_file

    if read_server_file(folder) is not None:
        print("A service runs for this folder: it reads the context file itself whenever "
              "it changes, so its variables are in the table already.")
    elif changed:
        print(f"Updated {len(changed)} variable{'s' if len(changed) != 1 else ''}: "
              f"{', '.join(changed)}.")
    else:
        print("The table's variables were up to date.")
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    import json

    from .server.client import ClientError, StreamClosed, stream_events

    info = _server_for(args)
    kinds = set(args.kind)
    shown = 0
    try:
        for event in stream_events(info, include_hello=True):
            if event.get("kind") == "hello":
                print(f"Connected to the service at {info.url}; waiting for events "
                      "(Ctrl-C to stop).", file=sys.stderr, flush=True)
                continue
            if kinds and event.get("kind") not in kinds:
                continue
            print(json.dumps(event), flush=True)
            shown += 1
            if args.count is not None and shown >= args.count:
                return 0
    except StreamClosed as exc:
        raise CommandError(str(exc)) from None
    except ClientError as exc:
        raise CommandError(str(exc)) from None
    print("The service stopped.", file=sys.stderr)
    return 0


# -- parser ------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``runtable`` argument parser (also the source of docs/cli.md)."""
    parser = argparse.ArgumentParser(
        prog="runtable",
        description="A live, self-filling table of an experiment's runs.",
    )
    parser.add_argument("--version", action="version", version=f"runtable {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="serve a live demo: mock runs arrive and are processed as you watch",
        description="Create a mock proposal with a few realistic runs and a sample context "
        "file, start the service and the web server on it (printing the URL to open), and "
        "then add a new run every few seconds, its proc data following. Stop with Ctrl-C. "
        "With --once, process the runs here and now and print the table instead. Only a "
        "folder made by a previous demo is ever replaced.",
    )
    demo.add_argument("dir", nargs="?", type=Path, default=Path("demo"),
                      help="folder for the mock proposal and database (default: ./demo)")
    demo.add_argument("--runs", type=int, default=None,
                      help="runs made before starting (default 3; 6 with --once)")
    demo.add_argument("--every", type=float, default=10.0, metavar="SECONDS",
                      help="seconds between new runs (default 10)")
    demo.add_argument("--max-runs", type=int, default=30, metavar="N",
                      help="stop adding runs after run N (default 30)")
    demo.add_argument("--keep", action="store_true",
                      help="keep an existing demo folder instead of starting afresh")
    demo.add_argument("--once", action="store_true",
                      help="no server: process the runs, print the table and exit")
    _add_listen(demo)
    demo.set_defaults(func=_cmd_demo)

    init = sub.add_parser(
        "init",
        help="create a database folder with a starter context file",
        description="Create a database folder: runs.sqlite, extracted_data/, process_logs/ "
        "and context.py. Given a proposal number, the folder is <proposal>/usr/Shared/amore "
        "(the proposal is found under $EXTRA_DATA_DATA_ROOT); given a folder, say which "
        "proposal with --proposal. An existing database is never overwritten.",
    )
    init.add_argument("target", metavar="PROPOSAL_OR_DIR",
                      help="proposal number, or the folder to create")
    init.add_argument("--proposal", type=int, metavar="N",
                      help="proposal number (needed when PROPOSAL_OR_DIR is a folder)")
    start = init.add_mutually_exclusive_group()
    start.add_argument("--context", type=Path, metavar="FILE",
                       help="start from a copy of this context file")
    start.add_argument("--like", metavar="PROPOSAL_OR_DIR",
                       help="copy the context file and the user-editable variables of "
                       "another database folder")
    init.set_defaults(func=_cmd_init)

    rep = sub.add_parser(
        "reprocess",
        help="process runs again here and now, and merge the results",
        description="Execute the context file for the given runs in parallel local "
        "processes and merge each run's results as it finishes. While a service runs "
        "on the folder (its only writer), the runs are handed to it instead. Exits with "
        "status 1 only when nothing could be "
        "processed (the context file does not load, a run does not exist); errors of "
        "single variables or runs are reported and logged in process_logs/.",
    )
    rep.add_argument("runs", nargs="+", metavar="RUN",
                     help="run numbers, ranges (3-7), lists (1,4,9) or 'all' (every run on "
                     "disk)")
    _add_in(rep)
    rep.add_argument("--match", action="append", default=[], metavar="TITLE",
                     help="only variables whose title contains TITLE (case-insensitive; "
                     "repeatable)")
    rep.add_argument("--var", action="append", default=[], metavar="NAME",
                     help="only the variable NAME (repeatable; wins over --match)")
    rep.add_argument("--data", choices=DATA_NAMES, default="all",
                     help="compute the variables of this data, as if it had just arrived "
                     "(default: all)")
    rep.add_argument("-j", "--jobs", type=int, metavar="N",
                     help="runs processed at once (default: the concurrent_jobs setting, "
                     "at most one per CPU)")
    rep.set_defaults(func=_cmd_reprocess)

    cfg = sub.add_parser(
        "config",
        help="show or change the settings of a database folder",
        description="Without KEY, list every setting as key=value. With KEY, print its "
        "value; with KEY VALUE, set it (the value is checked); with KEY --delete, remove it "
        "so that its default applies. The settings are described in docs/settings.md.",
    )
    cfg.add_argument("key", nargs="?", metavar="KEY", help="a setting's name")
    cfg.add_argument("value", nargs="?", metavar="VALUE", help="its new value")
    cfg.add_argument("-d", "--delete", action="store_true", help="delete KEY")
    _add_in(cfg)
    cfg.set_defaults(func=_cmd_config)

    table = sub.add_parser(
        "table",
        help="print the run table in the terminal",
        description="Print the run table: one row per run, one column per variable. "
        "Columns that don't fit the terminal's width are left out and named below the "
        "table; choose columns with --columns, or export the whole table.",
    )
    _add_in(table)
    table.add_argument("--titles", action="store_true",
                       help="head columns with variable titles instead of names")
    table.add_argument("-c", "--columns", action="append", default=[], metavar="NAMES",
                       help="show these columns (comma-separated names or titles, "
                       "in any case; a grouped title's last part, e.g. 'Photon flux' for "
                       "'XGM/Photon flux', when only one column has it; repeatable)")
    table.add_argument("--all-columns", action="store_true",
                       help="show every column, wrapping cells as needed")
    _add_where(table)
    table.set_defaults(func=_cmd_table)

    export = sub.add_parser(
        "export",
        help="write the run table to a CSV, Excel, Markdown or Parquet file",
        description="Write the run table to a file. Images become '<thumbnail>', "
        "trendlines '<sparkline>' and other arrays '<ndarray>' (the read API's words); "
        "numeric columns stay numeric.",
    )
    _add_in(export)
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                        help="file to write")
    export.add_argument("--format", choices=("csv", "xlsx", "md", "parquet"),
                        help="file format (default: from FILE's extension)")
    export.add_argument("--titles", action="store_true",
                        help="head columns with variable titles instead of names")
    _add_where(export)
    export.set_defaults(func=_cmd_export)

    hist = sub.add_parser(
        "history",
        help="show every value a cell had, and where each came from",
        description="Print every kept version of one cell, oldest first: its value (or "
        "error), when it was written, whether the context file, a person or another "
        "program wrote it, which job and where (local process or Slurm job), which "
        "runtable, and the hash of the context file's text that computed it (kept in "
        "context_history/texts/). Says when the current value is stale: the variable's "
        "code changed in the context file since. See docs/history.md.",
    )
    hist.add_argument("run", type=int, metavar="RUN", help="run number")
    hist.add_argument("name", metavar="NAME",
                      help="variable name or title, or 'comment'")
    _add_in(hist)
    hist.add_argument("--json", action="store_true",
                      help="one JSON object per version (times in epoch seconds)")
    hist.set_defaults(func=_cmd_history)

    srv = sub.add_parser(
        "serve",
        help="run the service: process new runs as they arrive and serve the live "
        "table to browsers (prints the URL to open, with its token)",
        description="Start the service of a database folder: watch the proposal's raw/ "
        "and proc/ folders, process each run when it is complete (or on `runtable "
        "notify`), merge the results, and serve the live table. Prints the URL to "
        "open, which includes the token every request needs. It listens on 127.0.0.1 "
        "only, unless --host says otherwise. See docs/service.md and docs/server.md.",
    )
    srv.add_argument("dir", nargs="?", default=None, metavar="DIR", help=DB_FOLDER_HELP)
    _add_listen(srv)
    srv.set_defaults(func=_cmd_serve)

    ntf = sub.add_parser(
        "notify",
        help="tell the running service that a run's data is complete",
        description="Tell the service running for a database folder that a run's raw or "
        "proc data is complete, so it is processed now instead of when the watcher "
        "judges the folder quiet.",
    )
    ntf.add_argument("run", type=int, metavar="RUN", help="run number")
    ntf.add_argument("--data", choices=DATA_KINDS, default="raw",
                     help="which data is complete (default: raw)")
    _add_in(ntf)
    ntf.add_argument("--url", default=None,
                     help="the server's URL (default: the one running for the folder)")
    ntf.add_argument("--token", default=None,
                     help="its token (default: $RUNTABLE_TOKEN or the folder's server file)")
    ntf.set_defaults(func=_cmd_notify)

    evs = sub.add_parser(
        "events",
        help="print the running service's live events, one JSON line each",
        description="Connect to the service running for a database folder and print "
        "each event (a run added, values merged, a job's state...) as one JSON line, "
        "until interrupted or the service stops.",
    )
    _add_in(evs)
    evs.add_argument("--url", default=None,
                     help="the server's URL (default: the one running for the folder)")
    evs.add_argument("--token", default=None,
                     help="its token (default: $RUNTABLE_TOKEN or the folder's server file)")
    evs.add_argument("--kind", action="append", default=[], metavar="KIND",
                     help="only events of this kind (repeatable)")
    evs.add_argument("-n", "--count", type=int, default=None, metavar="N",
                     help="exit after N events")
    evs.set_defaults(func=_cmd_events)

    setv = sub.add_parser(
        "set",
        help="store a value for a run from outside the context file",
        description="Store VALUE as variable NAME of run RUN, as if a context file had "
        "returned it (same summary), with the provenance 'external'; the variable is "
        "made if needed. Through the running service when there is one, else written "
        "here. VALUE is read as a number, true/false or a JSON list (an array) when it "
        "is one, else as text.",
    )
    setv.add_argument("run", type=int, metavar="RUN", help="run number")
    setv.add_argument("name", metavar="NAME", help="variable name (a Python identifier)")
    setv.add_argument("value", metavar="VALUE", help="the value")
    setv.add_argument("--string", action="store_true",
                      help="store VALUE as text even if it looks like a number")
    setv.add_argument("--title", default=None,
                      help="title of the column when the variable is new")
    _add_in(setv)
    setv.set_defaults(func=_cmd_set)

    rctx = sub.add_parser(
        "read-context",
        help="update the table's columns from the context file without processing runs",
        description="Load the context file (in the folder's context_python) and bring "
        "the table's variables (columns, titles, descriptions, tags, order) up to date, "
        "so new columns appear before the next run is processed. A running service does "
        "this itself whenever the file changes.",
    )
    _add_in(rctx)
    rctx.set_defaults(func=_cmd_read_context)

    check = sub.add_parser(
        "check",
        help="load and validate a context file without touching any database",
        description="Compile a context file (in a separate process, stopped after a time "
        "limit) and report every problem with its line, pyflakes warnings, and the "
        "variables it defines.",
    )
    check.add_argument("file", nargs="?", type=Path, default=Path("context.py"))
    check.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="stop loading the file after this long (default 60): it is "
                       "loaded in a separate process, as the service loads it")
    check.set_defaults(func=_cmd_check)
    return parser


def _store_problem(exc: Exception) -> str | None:
    """What to tell a person about a problem of the database folder, or None when
    ``exc`` is none (a bug, which deserves its traceback)."""
    import sqlite3

    from .store import StoreError

    if isinstance(exc, StoreError):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return (f"the database runs.sqlite is damaged ({exc}); restore it from a backup. "
                "Nothing was changed.")
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``runtable`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        _err(str(exc))
        return 1
    except Exception as exc:
        # A damaged database folder: a sentence, not a traceback (nothing was changed).
        message = _store_problem(exc)
        if message is None:
            raise
        _err(message)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
