"""Values written from outside the context file (``Database.write``, ``runtable set``)
go through the folder's one writer: the running ``runtable serve`` process, else the
writing process; and ``runtable read-context`` refreshes the columns."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

import numpy as np
import pytest

from runtable.api import Database
from runtable.external import ExternalWriteError, write_values
from runtable.store import open_db
from runtable.testing import add_raw_run

from .conftest import SETTINGS, TIMEOUT, age_runs, values, wait_for
from .test_service_cli import _env, _runtable, start_serve


def stored(folder, run, name):
    with open_db(folder, readonly=True) as db:
        row = db.conn.execute(
            "SELECT value, provenance, summary_type FROM run_variables WHERE run = ? "
            "AND name = ?", (run, name)).fetchone()
        title = db.conn.execute("SELECT title FROM variables WHERE name = ?",
                                (name,)).fetchone()
    return row, title[0] if title else None


def test_without_a_service_values_are_written_here(folder):
    with open_db(folder) as wdb:  # a run the DAQ has taken (it has a start time)
        wdb.ensure_run(1234, 1)
        wdb.conn.execute("UPDATE run_info SET start_time = 1767225600")
    db = Database(folder, cache=False)
    db.write(1, "sample_thickness", 0.25, title="Sample/Thickness")
    db.write(1, "scan", np.linspace(0, 1, 50))
    assert stored(folder, 1, "sample_thickness") == ((0.25, "external", None),
                                                       "Sample/Thickness")
    (_, provenance, kind), title = stored(folder, 1, "scan")
    assert (provenance, kind, title) == ("external", "trendline", "scan")
    assert db[1, "scan"].read().shape == (50,)
    assert db.table().set_index("run").loc[1, "sample_thickness"] == 0.25
    db.close()
    assert not list((folder / "extracted_data").glob("*.ready.h5"))


@pytest.mark.parametrize(("name", "value", "message"), [
    ("bad name", 1, "can't be a variable's name"),
    ("comment", "x", "can't be a variable's name"),
    ("thing", object(), "cannot be saved"),
])
def test_bad_values_are_refused_and_nothing_is_written(folder, name, value, message):
    with pytest.raises(ExternalWriteError, match=message):
        write_values(folder, 1, {name: value})
    assert not list((folder / "extracted_data").glob("*.h5"))
    with open_db(folder, readonly=True) as db:
        assert db.conn.execute("SELECT count(*) FROM run_variables").fetchone()[0] == 0


def test_runtable_set_parses_numbers_arrays_and_text(folder):
    for args in (["1", "gain", "3"], ["1", "label", "dark run"], ["1", "trace", "[1, 2, 4]"],
                 ["1", "code", "007", "--string"]):
        proc = subprocess.run(_runtable("set", *args, "--in", str(folder)),
                              capture_output=True, text=True, timeout=120, env=_env())
        assert proc.returncode == 0, proc.stderr
    assert values(folder, 1)["gain"] == 3
    assert values(folder, 1)["label"] == "dark run"
    assert values(folder, 1)["code"] == "007"
    assert stored(folder, 1, "trace")[0][2] == "trendline"
    proc = subprocess.run(_runtable("set", "1", "not valid", "1", "--in", str(folder)),
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 1 and "can't be a variable's name" in proc.stderr


def test_read_context_adds_columns_without_processing(folder):
    (folder / "context.py").write_text((folder / "context.py").read_text() + '''
@Variable(title="New/Column")
def brand_new(run):
    return 1
''')
    proc = subprocess.run(_runtable("read-context", "--in", str(folder)),
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "brand_new" in proc.stdout
    with open_db(folder, readonly=True) as db:
        assert db.variables()["brand_new"].title == "New/Column"
        assert db.conn.execute("SELECT count(*) FROM run_variables").fetchone()[0] == 0
    (folder / "context.py").write_text("import nothing_like_this\n")
    proc = subprocess.run(_runtable("read-context", "--in", str(folder)),
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 1
    assert "No module named 'nothing_like_this'" in proc.stderr


def test_values_written_while_the_service_runs_go_through_it(proposal, folder, tmp_path):
    with open_db(folder) as db:
        for key, value in {**SETTINGS, "ready_quiet_s": 3600}.items():
            db.set_setting(key, value)
    add_raw_run(proposal, 1)
    age_runs(proposal)
    log_path = tmp_path / "serve.log"
    serve = start_serve(folder, log_path)
    events = None
    try:
        wait_for(lambda: values(folder, 1), what="run 1 to be processed")
        events = subprocess.Popen(
            _runtable("events", "--in", str(folder), "--kind", "values_merged",
                      "--kind", "variables_changed"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        assert events.stderr is not None and events.stdout is not None
        assert events.stderr.readline().startswith("Connected to the service at ")
        seen: list[dict] = []
        reader = threading.Thread(
            target=lambda: seen.extend(json.loads(line) for line in events.stdout),
            daemon=True)
        reader.start()

        # Writes from two threads while the service also processes run 2: each goes
        # through the service's writer, none is lost.
        add_raw_run(proposal, 2)
        notify = subprocess.run(_runtable("notify", "2", "--in", str(folder)),
                                capture_output=True, text=True, timeout=60, env=_env())
        assert notify.returncode == 0, notify.stderr
        errors: list[BaseException] = []

        def writer(offset: int) -> None:
            try:
                for i in range(5):
                    write_values(folder, 1, {f"ext_{offset}_{i}": offset * 10 + i})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(k,)) for k in (1, 2)]
        for t in threads:
            t.start()
        proc = subprocess.run(_runtable("set", "1", "sample", "3.5", "--in", str(folder)),
                              capture_output=True, text=True, timeout=120, env=_env())
        for t in threads:
            t.join(TIMEOUT)
        assert not errors, errors
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: "n_trains" in values(folder, 2), what="run 2 to be processed")
        # The service merged them, and told every browser.
        wait_for(lambda: any(e["kind"] == "values_merged" and e.get("run") == 1
                             and "sample" in e.get("names", ()) for e in list(seen)),
                 what="the service's values_merged event for run 1")
        assert any(e["kind"] == "variables_changed" for e in list(seen))
    finally:
        if events is not None and events.poll() is None:
            events.kill()
            events.communicate()
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    assert serve.returncode == 0, log_path.read_text()
    got = values(folder, 1)
    assert got["sample"] == 3.5
    assert {k: got[k] for k in got if k.startswith("ext_")} == {
        f"ext_{k}_{i}": k * 10 + i for k in (1, 2) for i in range(5)}
    row, title = stored(folder, 1, "sample")
    assert row[1] == "external" and title == "sample"


def test_without_a_service_a_write_waits_for_no_other_writer(folder):
    from runtable.store import become_writer

    with become_writer(folder, "runtable reprocess"), \
            pytest.raises(ExternalWriteError, match="already writing"):
        write_values(folder, 1, {"late": 1})
    assert write_values(folder, 1, {"late": 1}) == ["late"]
    assert not list((folder / "extracted_data").glob("*.ready.h5"))
