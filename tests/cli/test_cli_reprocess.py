"""`runtable reprocess`, run as the real command on real mock runs."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import h5py
import pytest

from runtable.selection import Selection
from runtable.store import create_folder, open_db
from runtable.testing import MockProposal

from .cli_helpers import (
    FAILING_VARS,
    PROC_VARS,
    RAW_VARS,
    RICH_CONTEXT,
    attributes,
    run_cli,
    stored_values,
)

ALL_VARS = RAW_VARS | PROC_VARS | FAILING_VARS


@pytest.fixture
def rich_folder(tmp_path: Path, data_root: MockProposal) -> Path:
    """A new database folder for the shared proposal 1234 with RICH_CONTEXT."""
    folder = tmp_path / "amore"
    create_folder(folder, data_root.proposal, RICH_CONTEXT).close()
    return folder


def reprocess(folder: Path, data_root: MockProposal, *args: str):
    return run_cli("reprocess", *args, "--in", folder, data_root=data_root.root)


def names_by_run(folder: Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for run, name in stored_values(folder):
        out.setdefault(run, set()).add(name)
    return out


def test_all_runs_land_in_sqlite_and_hdf5(rich_folder: Path, data_root: MockProposal) -> None:
    result = reprocess(rich_folder, data_root, "all")
    # A variable that fails is reported, and is no reason for a failing exit status.
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Processing 3 runs" in out
    for run in (1, 2, 3):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"r{run:04d}"))
        assert "ok" in line and "6 variables" in line, line
        assert "1 error (broken: RuntimeError: detector offline)" in line, line
    assert "3 runs processed: 3 ok (3 with variable errors), 0 failed." in out
    assert "process_logs/" in out

    values = stored_values(rich_folder)
    assert names_by_run(rich_folder) == {r: ALL_VARS for r in (1, 2, 3)}
    assert values[2, "label"] == "run 2"
    assert values[1, "n_trains"] == 64
    assert values[1, "broken"] is None
    assert json.loads(attributes(rich_folder, 1, "broken")) == {
        "error": "detector offline", "error_cls": "RuntimeError"}
    assert json.loads(attributes(rich_folder, 1, "xgm_flux"))["units"] == "uJ"
    assert isinstance(values[1, "camera"], bytes) and values[1, "camera"][:4] == b"\x89PNG"

    # The per-run HDF5 file holds the full data, consistent with the summary.
    with h5py.File(rich_folder / "extracted_data" / "p1234_r2.h5", "r") as f:
        flux = f["xgm_flux/data"][()]
        assert flux.ndim == 1 and len(flux) == 64
        assert float(f[".reduced/xgm_flux"][()]) == pytest.approx(flux.mean(), rel=1e-5)
        assert values[2, "xgm_flux"] == pytest.approx(flux.mean(), rel=1e-5)
        assert values[2, "doubled"] == pytest.approx(2 * flux.mean(), rel=1e-5)
        assert f["camera/data"].shape == (64, 64)
        assert f["label/data"][()].decode() == "run 2"
    # The variables table follows the context file; each run has its log.
    with open_db(rich_folder, readonly=True) as db:
        assert {n for n, v in db.variables().items() if not v.user_editable} >= ALL_VARS
        assert db.integrity_check() == "ok"
    logs = {p.name for p in (rich_folder / "process_logs").iterdir()}
    assert {"r1-p1234.out", "r2-p1234.out", "r3-p1234.out"} <= logs
    # No fragment is left behind: everything was merged.
    assert not list((rich_folder / "extracted_data").glob("*.ready.h5"))


def test_run_lists_and_ranges(rich_folder: Path, data_root: MockProposal) -> None:
    result = reprocess(rich_folder, data_root, "3", "1", "--var", "label")
    assert result.returncode == 0, result.stderr
    assert set(names_by_run(rich_folder)) == {1, 3}
    result = reprocess(rich_folder, data_root, "2-3,1", "--var", "n_trains")
    assert result.returncode == 0, result.stderr
    assert "3 runs processed: 3 ok, 0 failed." in result.stdout
    assert names_by_run(rich_folder) == {1: {"label", "n_trains"}, 2: {"n_trains"},
                                         3: {"label", "n_trains"}}


def test_var_computes_dependencies_and_keeps_the_rest(rich_folder: Path,
                                                      data_root: MockProposal) -> None:
    assert reprocess(rich_folder, data_root, "1", "--var", "label").returncode == 0
    result = reprocess(rich_folder, data_root, "1", "--var", "doubled")
    assert result.returncode == 0, result.stderr
    # doubled needs xgm_flux; label, computed before, stays.
    assert names_by_run(rich_folder)[1] == {"label", "doubled", "xgm_flux"}


def test_match_selects_by_title(rich_folder: Path, data_root: MockProposal) -> None:
    result = reprocess(rich_folder, data_root, "2", "--match", "FLUX", "--match", "label")
    assert result.returncode == 0, result.stderr
    assert names_by_run(rich_folder)[2] == {"xgm_flux", "flux_trend", "doubled", "label"}

    result = reprocess(rich_folder, data_root, "2", "--match", "no such title")
    assert result.returncode == 1
    assert "No variable title contains 'no such title'" in result.stderr


def test_data_raw_and_proc(rich_folder: Path, data_root: MockProposal) -> None:
    result = reprocess(rich_folder, data_root, "1", "--data", "raw")
    assert result.returncode == 0, result.stderr
    assert names_by_run(rich_folder)[1] == RAW_VARS | FAILING_VARS
    result = reprocess(rich_folder, data_root, "2", "--data", "proc")
    assert result.returncode == 0, result.stderr
    # Only what proc data brings (and what it depends on) is computed.
    assert names_by_run(rich_folder)[2] >= PROC_VARS
    assert not names_by_run(rich_folder)[2] & {"label", "camera", "n_trains"}


def test_reprocessing_replaces_values_without_doubling(rich_folder: Path,
                                                       data_root: MockProposal) -> None:
    for _ in range(2):
        result = reprocess(rich_folder, data_root, "1", "--var", "label")
        assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(rich_folder / "runs.sqlite")
    try:
        rows = conn.execute("SELECT COUNT(*) FROM run_variables WHERE run = 1 AND "
                            "name = 'label'").fetchone()[0]
    finally:
        conn.close()
    assert rows == 1


def test_missing_runs_are_named_and_nothing_runs(rich_folder: Path,
                                                 data_root: MockProposal) -> None:
    result = reprocess(rich_folder, data_root, "2,7", "9")
    assert result.returncode == 1
    assert "Runs 7, 9 of proposal 1234 do not exist" in result.stderr
    assert str(data_root.path) in result.stderr
    assert stored_values(rich_folder) == {}

    result = reprocess(rich_folder, data_root, "5")
    assert result.returncode == 1
    assert "Run 5 of proposal 1234 does not exist" in result.stderr


def test_unloadable_context_is_an_error_with_its_line(rich_folder: Path,
                                                      data_root: MockProposal) -> None:
    context = rich_folder / "context.py"
    context.write_text(RICH_CONTEXT + "\n@Variable(title='Bad')\ndef bad(run:\n    return 1\n")
    result = reprocess(rich_folder, data_root, "all")
    assert result.returncode == 1
    assert "cannot be loaded; nothing was processed" in result.stderr
    bad_line = len((RICH_CONTEXT + "\n@Variable(title='Bad')\n").splitlines()) + 1
    assert f"context.py:{bad_line}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert stored_values(rich_folder) == {}


def test_context_error_at_run_time_of_import(rich_folder: Path,
                                             data_root: MockProposal) -> None:
    (rich_folder / "context.py").write_text("import no_such_module_xyz\n" + RICH_CONTEXT)
    result = reprocess(rich_folder, data_root, "1")
    assert result.returncode == 1
    assert "no_such_module_xyz" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["abc"], "'abc' is not a run number or range like 3-7"),
    (["5-3"], "Range '5-3' goes backwards"),
    (["all", "3"], "'all' cannot be combined with run numbers"),
])
def test_bad_run_words(rich_folder: Path, data_root: MockProposal, args: list[str],
                       message: str) -> None:
    result = reprocess(rich_folder, data_root, *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_unknown_variable_lists_the_known_ones(rich_folder: Path,
                                               data_root: MockProposal) -> None:
    result = reprocess(rich_folder, data_root, "1", "--var", "nope")
    assert result.returncode == 1
    assert "nope" in result.stderr
    assert "camera, doubled, flux_trend, label, n_trains, xgm_flux" in result.stderr


def test_not_a_database_folder(tmp_path: Path, data_root: MockProposal) -> None:
    result = run_cli("reprocess", "all", data_root=data_root.root, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path} is not a database folder (no runs.sqlite)" in result.stderr
    assert "runtable init" in result.stderr


def test_run_in_the_folder_and_jobs(rich_folder: Path, data_root: MockProposal) -> None:
    # Without --in, the current directory is the database folder.
    result = run_cli("reprocess", "1-3", "-j", "1", "--var", "n_trains",
                     data_root=data_root.root, cwd=rich_folder)
    assert result.returncode == 0, result.stderr
    assert "1 at a time" in result.stdout
    assert {run: v for (run, _), v in stored_values(rich_folder).items()} == {
        1: 64, 2: 64, 3: 64}


def test_a_run_whose_data_is_broken_fails_alone(tmp_path: Path) -> None:
    from runtable.testing import make_proposal

    prop = make_proposal(tmp_path / "data", 4321, runs=[1, 2], proc=False)
    for f in prop.raw_dir(2).iterdir():
        f.write_bytes(b"not HDF5")
    folder = tmp_path / "amore"
    create_folder(folder, 4321, "from damnit_ctx import Variable\n\n"
                  "@Variable\ndef n(run):\n    return len(run.train_ids)\n").close()
    result = run_cli("reprocess", "all", "--in", folder, data_root=prop.root)
    assert result.returncode == 0, result.stderr
    assert "r0002  FAILED" in result.stdout
    assert "2 runs processed: 1 ok, 1 failed." in result.stdout
    assert stored_values(folder) == {(1, "n"): 64}


SLEEPY_CONTEXT = '''
import time
from damnit_ctx import Variable

@Variable(title="Sleepy")
def sleepy(run, n: "meta#run_number"):
    if n == 2:
        time.sleep(600)
    return n
'''


def test_job_time_limit_kills_a_slow_run(tmp_path: Path, data_root: MockProposal) -> None:
    folder = tmp_path / "amore"
    with create_folder(folder, data_root.proposal, SLEEPY_CONTEXT) as db:
        # Generous: on a loaded machine even a quick run can take seconds.
        db.set_setting("job_time_limit_s", "15")
    result = reprocess(folder, data_root, "1-3")
    assert result.returncode == 0, result.stderr
    assert "r0002  FAILED  TimeLimitExceeded" in result.stdout
    assert "3 runs processed: 2 ok, 1 failed." in result.stdout
    # Run 2's cell says why it is empty.
    assert stored_values(folder) == {(1, "sleepy"): 1, (2, "sleepy"): None, (3, "sleepy"): 3}
    assert '"error_cls": "TimeLimitExceeded"' in attributes(folder, 2, "sleepy")
    log = (folder / "process_logs" / "r2-p1234.out").read_text()
    assert "time limit" in log


def test_broken_context_python(tmp_path: Path, data_root: MockProposal) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'this python is broken' >&2\nexit 3\n")
    fake.chmod(0o755)
    folder = tmp_path / "amore"
    with create_folder(folder, data_root.proposal, RICH_CONTEXT) as db:
        db.set_setting("context_python", str(fake))
    result = reprocess(folder, data_root, "1-2")
    # The context file is loaded with that python too: nothing can be processed.
    assert result.returncode == 1, result.stderr
    assert "cannot be loaded; nothing was processed" in result.stderr
    assert "(exit 3): this python is broken" in result.stderr
    assert "Traceback" not in result.stderr
    assert stored_values(folder) == {}

    with open_db(folder) as db:
        db.set_setting("context_python", str(tmp_path / "nowhere" / "python"))
    result = reprocess(folder, data_root, "1")
    assert result.returncode == 1
    assert "context_python interpreter" in result.stderr
    assert "runtable config context_python PATH" in result.stderr


def test_leftover_fragments_are_merged_first(rich_folder: Path, data_root: MockProposal) -> None:
    from runtable.execute.runner import execute_run

    # Results of a run whose merging never happened (the process was killed).
    outcome = execute_run(rich_folder, 1234, 1, selection=Selection("raw", ("label",)))
    assert outcome.fragment is not None and outcome.fragment.exists()
    result = reprocess(rich_folder, data_root, "2", "--var", "n_trains")
    assert result.returncode == 0, result.stderr
    assert stored_values(rich_folder) == {(1, "label"): "run 1", (2, "n_trains"): 64}
    assert not outcome.fragment.exists()


def test_refused_while_another_process_writes_the_folder(rich_folder: Path,
                                                          data_root: MockProposal) -> None:
    import os

    from runtable.store import become_writer

    # This test process stands in for a service whose token reprocess cannot read.
    with become_writer(rich_folder, "runtable serve", url="http://127.0.0.1:8780"):
        result = reprocess(rich_folder, data_root, "1")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: runtable serve (process {os.getpid()} on ")
    assert "http://127.0.0.1:8780" in result.stderr
    assert "only one process may write a folder" in result.stderr
    assert stored_values(rich_folder) == {}
    assert reprocess(rich_folder, data_root, "1", "--var", "label").returncode == 0


def test_progress_bar_in_a_terminal(rich_folder: Path, data_root: MockProposal) -> None:
    import io

    from rich.console import Console

    from runtable.reprocess import ConsoleReporter, summary_line
    from runtable.reprocess import reprocess as reprocess_fn

    buf = io.StringIO()
    reporter = ConsoleReporter(Console(file=buf, force_terminal=True, width=100,
                                       color_system=None))
    try:
        outcomes = reprocess_fn(rich_folder, "all", selection=Selection("all", ("n_trains",)),
                                reporter=reporter)
    finally:
        reporter.close()
    text = buf.getvalue()
    assert "processing" in text and "/3" in text  # the bar: description and count
    assert "━" in text
    assert [o.run for o in outcomes] == [1, 2, 3]
    assert summary_line(outcomes) == "3 runs processed: 3 ok, 0 failed."


def test_skipped_variables_are_not_counted_as_errors() -> None:
    from runtable.execute.runner import RunOutcome
    from runtable.reprocess import outcome_line, summary_line

    skipped = RunOutcome(1234, 4, ok=["a", "b"], errors={
        "sample": ("Skip", "no sample in the beam (background run)")})
    failed = RunOutcome(1234, 5, ok=["a"], errors={
        "ratio": ("ZeroDivisionError", "division by zero"),
        "sample": ("Skip", "no sample in the beam")})
    clean = RunOutcome(1234, 6, ok=["a", "b", "c"])
    assert outcome_line(skipped) == (
        "r0004  ok      2 variables, 1 skipped (sample: no sample in the beam "
        "(background run))")
    assert outcome_line(failed) == (
        "r0005  ok      1 variable, 1 error (ratio: ZeroDivisionError: division by zero), "
        "1 skipped (sample: no sample in the beam)")
    assert summary_line([skipped, clean]) == (
        "2 runs processed: 2 ok, 0 failed; 1 variable skipped on purpose.")
    assert summary_line([skipped, failed, clean]) == (
        "3 runs processed: 3 ok (1 with variable errors), 0 failed; 2 variables skipped "
        "on purpose. Details in process_logs/ of the database folder.")


# A truncated per-run HDF5 file no longer blocks its run: the next result sets it
# aside (never deleted), rebuilds the run's file from the database and the new result,
# and the cells whose full data stayed in it say so.
def _failed(folder: Path, name: str) -> dict | None:
    return json.loads(attributes(folder, 1, name) or "{}").get("failed")


def test_a_truncated_run_file_is_set_aside_and_rebuilt(rich_folder, data_root):
    assert reprocess(rich_folder, data_root, "1").returncode == 0
    run_file = rich_folder / "extracted_data" / "p1234_r1.h5"
    os.truncate(run_file, run_file.stat().st_size // 2)
    damaged_bytes = run_file.read_bytes()
    before = stored_values(rich_folder)

    result = reprocess(rich_folder, data_root, "1", "--var", "label")
    assert result.returncode == 0, result.stderr
    assert "FAILED" not in result.stdout, result.stdout
    # The damaged file is kept, byte for byte, beside the new one.
    [aside] = (rich_folder / "extracted_data").glob("p1234_r1.h5.damaged-*")
    assert aside.read_bytes() == damaged_bytes
    with h5py.File(run_file, "r") as f:
        assert f["label/data"][()].decode() == "run 1"
        # Every other value of the run is rebuilt from the database, as its summary.
        assert set(f[".reduced"]) >= {"xgm_flux", "n_trains", "camera", "label"}
        assert f[".reduced/n_trains"][()] == before[(1, "n_trains")]
        assert "broken" in f[".errors"]
    assert stored_values(rich_folder) == before  # no value lost or changed
    # The problem shows on the run's cells whose full data stayed in the damaged file.
    failed = _failed(rich_folder, "xgm_flux")
    assert failed["error_cls"] == "DamagedFile" and aside.name in failed["error"]
    assert _failed(rich_folder, "label") is None

    # Processing the run again brings everything back.
    assert reprocess(rich_folder, data_root, "1").returncode == 0
    assert _failed(rich_folder, "xgm_flux") is None
    with h5py.File(run_file, "r") as f:
        assert f["xgm_flux/data"].shape == (64,)
