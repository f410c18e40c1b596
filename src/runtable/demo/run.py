"""Building the demo folder, and ``runtable demo --once``: every run processed here
and now, then the table printed. (The live demo is :mod:`runtable.demo.live`.)

The demo folder looks like::

    demo/.runtable-demo            marker: this folder was made by the demo
    demo/data/SPB/202601/p001234/  mock proposal (raw/ and proc/ runs)
        usr/Shared/amore/          its database folder (context.py = sample_context.py)
    demo/amore -> data/.../amore   a shorter way to name the database folder

Only a folder holding the marker is ever deleted; anything else is refused.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..testing.mock_proposal import MockProposal

MARKER = ".runtable-demo"
PROPOSAL = 1234
MAX_RUNS = 200
#: The demo folder's ready_quiet_s: its mock runs are complete as soon as written.
DEMO_READY_QUIET_S = 1.0
#: The columns the demo prints first (by title), so that a narrow terminal shows a
#: bit of everything; `runtable table` shows the rest.
TABLE_COLUMNS = ["Sample", "Trains", "XGM/Photon flux", "XGM/Flux stability",
                 "XGM/Intensity per train", "Camera/Mean image", "Detector/Mean signal",
                 "Sample X/Position", "Timestamp"]


@dataclass(frozen=True)
class Demo:
    """A built demo: the mock proposal and its database folder (``folder`` is the
    short ``<dir>/amore`` link where symlinks work)."""

    prop: MockProposal
    folder: Path

    def runs_on_disk(self) -> list[int]:
        raw = self.prop.path / "raw"
        return sorted(int(p.name[1:]) for p in raw.glob("r[0-9]*") if p.name[1:].isdigit())


class DemoError(Exception):
    """The demo cannot be built in the folder given (the message says why)."""


def build_demo(directory: str | Path, n_runs: int, keep: bool = False,
               say: Callable[[str], None] = print) -> Demo:
    """Make (or with ``keep``, reuse) the demo folder with runs 1..``n_runs`` and a
    database folder using the sample context file."""
    from ..sources import DATABASE_SUBDIR
    from ..store import create_folder
    from ..testing import make_proposal

    directory = Path(directory)
    if not 0 <= n_runs <= MAX_RUNS:
        raise DemoError(f"--runs must be between 0 and {MAX_RUNS}")
    fresh = _prepare(directory, keep)
    prop = MockProposal(directory.absolute() / "data", PROPOSAL)
    prop.path.joinpath("raw").mkdir(parents=True, exist_ok=True)
    missing = [r for r in range(1, n_runs + 1) if not prop.raw_dir(r).is_dir()]
    if missing:
        say(f"Making {len(missing)} mock run{'s' if len(missing) != 1 else ''} "
            f"of proposal {PROPOSAL} in {directory / 'data'} …")
        make_proposal(prop.root, PROPOSAL, runs=missing)

    folder = prop.path / DATABASE_SUBDIR
    if not (folder / "runs.sqlite").exists():
        sample = Path(__file__).with_name("sample_context.py").read_text()
        with create_folder(folder, PROPOSAL, sample) as db:
            # The mock runs are complete once written: no need to wait for quiet.
            db.set_setting("ready_quiet_s", DEMO_READY_QUIET_S)
    link = directory / "amore"
    if not link.exists():
        try:
            link.symlink_to(folder.relative_to(directory.absolute()), target_is_directory=True)
        except OSError:
            link = folder  # no symlinks here: name the folder itself
    if not link.exists():
        link = folder
    say(f"{'Created' if fresh else 'Using'} the database folder {link}")
    return Demo(prop, link)


def run_demo_once(directory: str | Path = "demo", n_runs: int = 6, keep: bool = False) -> int:
    """Build the demo in ``directory``, process every run here and now (no service)
    and print the table; the exit status."""
    from rich.console import Console

    from ..reprocess import ConsoleReporter, ReprocessError, reprocess, summary_line
    from ..tableview import print_table

    console = Console(highlight=False)
    start = time.perf_counter()
    if n_runs < 1:
        print(f"Error: --runs must be between 1 and {MAX_RUNS} with --once", file=sys.stderr)
        return 1
    try:
        demo = build_demo(directory, n_runs, keep, say=console.print)
    except DemoError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    reporter = ConsoleReporter(console)
    try:
        outcomes = reprocess(demo.folder, list(range(1, n_runs + 1)), reporter=reporter)
    except ReprocessError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    finally:
        reporter.close()
    console.print(summary_line(outcomes) + f" ({time.perf_counter() - start:.1f} s)",
                  soft_wrap=True)
    console.print()
    print_table(demo.folder, console=console, with_titles=True, columns=TABLE_COLUMNS)
    console.print()
    console.print(_next_steps(demo.folder), soft_wrap=True, markup=False)
    return 0 if all(o.failure is None for o in outcomes) else 1


def _prepare(directory: Path, keep: bool) -> bool:
    """Make ``directory`` ready for a demo; True if it starts empty."""
    if directory.exists() and not directory.is_dir():
        raise DemoError(f"{directory} is a file; choose another folder: runtable demo DIR")
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MARKER).is_file():
            raise DemoError(
                f"{directory} exists and was not made by `runtable demo`, so it is left "
                "alone; choose another folder: runtable demo DIR")
        if keep:
            return False
        # A previous demo: start afresh (the marker proves it is ours to delete).
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text(
        "Made by `runtable demo`; the demo deletes and remakes this folder.\n")
    return True


def _next_steps(folder: Path) -> str:
    shown = str(folder)
    quoted = shlex.quote(shown)
    from ..cli import runtable_command

    command = runtable_command()
    context = shlex.quote(os.path.join(shown, "context.py"))
    lines = [
        "Look at the results:",
        f"  {command} table --in {quoted}                 # this table again",
        f"  {command} table --in {quoted} --titles --all-columns",
        f"  {command} export --in {quoted} -o runs.xlsx   # or .csv, .md, .parquet",
        "In Python (a notebook; docs/api.md):",
        "  from runtable import Database",
        f"  db = Database({shown!r})",
        "  db.table()                      # pandas DataFrame, one row per run",
        "  db[1, 'xgm_flux'].read()        # the full data of one cell (xarray)",
        f"Change the variables in {os.path.join(shown, 'context.py')}, check it with "
        f"`{command} check {context}`, then:",
        f"  {command} reprocess all --in {quoted}",
    ]
    if command != "runtable":
        lines.append("(`runtable` is not on your PATH here; `source .venv/bin/activate` "
                     "in runtable's folder puts it there.)")
    return "\n".join(lines)
