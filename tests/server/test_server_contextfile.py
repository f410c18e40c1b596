"""The context-file routes: read, check in a child process, save with conflicts and
history, roll back -- against a real server on a real database folder."""

from __future__ import annotations

import json
import os
import stat
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtable.events import EventBus, encode_event
from runtable.server.app import create_app
from runtable.store import create_folder, open_db
from runtable.testing.server_thread import serve_in_thread

from .helpers import TOKEN, RunningServer

GOOD = textwrap.dedent('''
    from runtable.context import Variable

    @Variable(title="Answer")
    def answer(run):
        return 42
''')

#: Annotations pyflakes alone would report as undefined names `var`, `meta`, `self`.
ANNOTATED = textwrap.dedent('''
    from runtable.context import Variable

    @Variable(title="Base")
    def base(run):
        return 1

    @Variable(title="Twice")
    def twice(run, b: "var#base", p: "meta#proposal"):
        return 2 * b
''')


class Recorder(EventBus):
    """A real bus that also keeps what was published."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Any] = []

    def publish(self, event: Any) -> int:
        self.published.append(event)
        return super().publish(event)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    db_dir = tmp_path / "db"
    create_folder(db_dir, 1234, context_text=GOOD).close()
    bus = Recorder()
    app = create_app(db_dir, TOKEN, bus=bus, warm_up=False)
    # Long enough for a real check on a loaded machine, short enough for the loop test.
    app.state.context_check_timeout_s = 8.0
    with serve_in_thread(app) as url:
        yield RunningServer(url=url, token=TOKEN, app=app, bus=bus, db_dir=db_dir)


def call(srv: RunningServer, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, _, data = srv.request(method, path, body=body)
    return status, json.loads(data) if data else None


def current(srv: RunningServer) -> dict[str, Any]:
    status, body = call(srv, "GET", "/api/context")
    assert status == 200, body
    return body


def save(srv: RunningServer, text: str, **extra: Any) -> tuple[int, Any]:
    body = {"text": text, "base_version": current(srv)["version"], **extra}
    return call(srv, "PUT", "/api/context", body)


# -- reading -----------------------------------------------------------------------------
def test_get_gives_text_version_and_no_status_before_a_check(srv: RunningServer) -> None:
    body = current(srv)
    assert body["text"] == GOOD
    assert body["exists"] is True
    assert body["path"].endswith("context.py")
    assert body["status"] is None
    digest, mtime = body["version"].split("-")
    assert len(digest) == 16 and int(mtime) == (srv.db_dir / "context.py").stat().st_mtime_ns
    # After a check of exactly this text, its status is known.
    call(srv, "POST", "/api/context/check", {"text": GOOD})
    assert current(srv)["status"]["ok"] is True


def test_token_is_required(srv: RunningServer) -> None:
    for method, path, body in [("GET", "/api/context", None),
                               ("POST", "/api/context/check", {"text": GOOD}),
                               ("PUT", "/api/context", {"text": GOOD, "force": True}),
                               ("GET", "/api/context/history", None)]:
        status, _, _ = srv.request(method, path, body=body, token=None)
        assert status == 401, (method, path)
    assert (srv.db_dir / "context.py").read_text() == GOOD


# -- checking ----------------------------------------------------------------------------
def test_check_ok_lists_variables_and_warnings(srv: RunningServer) -> None:
    status, body = call(srv, "POST", "/api/context/check", {"text": "import os\n" + GOOD})
    assert status == 200
    assert body["ok"] is True and body["errors"] == []
    assert body["variables"] == [{"name": "answer", "title": "Answer", "data": "raw",
                                  "cluster": False, "tags": []}]
    assert [(w["line"], w["message"]) for w in body["warnings"]] == [
        (1, "'os' imported but unused")]
    # Checking saved nothing.
    assert (srv.db_dir / "context.py").read_text() == GOOD


def test_check_annotations_raise_no_false_alarm(srv: RunningServer) -> None:
    status, body = call(srv, "POST", "/api/context/check", {"text": ANNOTATED})
    assert status == 200
    assert body["ok"] is True
    assert body["warnings"] == []
    assert {v["name"] for v in body["variables"]} == {"base", "twice"}


def test_check_syntax_error_has_line_and_column(srv: RunningServer) -> None:
    text = GOOD + "\nx = (1,\n"
    status, body = call(srv, "POST", "/api/context/check", {"text": text})
    assert status == 200
    assert body["ok"] is False
    (error,) = body["errors"]
    assert error["kind"] == "SyntaxError"
    assert error["line"] == text.splitlines().index("x = (1,") + 1
    assert error["column"] == 5


def test_check_exception_has_line_and_traceback_of_the_checked_text(
        srv: RunningServer) -> None:
    text = GOOD + "\ndef helper():\n    return {}['missing']\n\nhelper()\n"
    _, body = call(srv, "POST", "/api/context/check", {"text": text})
    (error,) = body["errors"]
    assert error["message"] == "KeyError: 'missing'"
    assert error["line"] == text.splitlines().index("    return {}['missing']") + 1
    # The traceback quotes the checked text (not the file on disk) and starts at it.
    assert "return {}['missing']" in error["traceback"]
    assert "helper()" in error["traceback"]
    assert "loader.py" not in error["traceback"]


def test_check_load_problem_without_exception(srv: RunningServer) -> None:
    text = GOOD + textwrap.dedent('''
        @Variable(title="Needs")
        def needs(run, x: "var#nowhere"):
            return x
    ''')
    _, body = call(srv, "POST", "/api/context/check", {"text": text})
    assert body["ok"] is False
    assert any("nowhere" in e["message"] for e in body["errors"])


def test_check_runs_in_the_folder_configured_python(srv: RunningServer,
                                                    tmp_path: Path) -> None:
    with open_db(srv.db_dir) as db:
        db.set_setting("context_python", str(tmp_path / "no-such-python"))
    _, body = call(srv, "POST", "/api/context/check", {"text": GOOD})
    (error,) = body["errors"]
    assert "no-such-python" in error["message"]
    assert "context_python" in error["message"]


def test_check_runs_in_the_database_folder(srv: RunningServer) -> None:
    (srv.db_dir / "geometry.txt").write_text("12\n")
    text = GOOD + "\nN = int(open('geometry.txt').read())\nassert N == 12\n"
    _, body = call(srv, "POST", "/api/context/check", {"text": text})
    assert body["ok"] is True, body


def test_check_of_a_file_that_loops_stops_with_a_clear_error(srv: RunningServer) -> None:
    srv.app.state.context_check_timeout_s = 1.0
    text = GOOD + "\nwhile True:\n    pass\n"
    status, body = call(srv, "POST", "/api/context/check", {"text": text})
    assert status == 200
    (error,) = body["errors"]
    assert error["kind"] == "Timeout"
    assert "did not finish within 1 s" in error["message"]
    # The server is still answering.
    assert current(srv)["text"] == GOOD


def test_prints_and_input_at_import_do_not_break_the_check(srv: RunningServer) -> None:
    text = GOOD + "\nprint('{not json')\ntry:\n    input()\nexcept EOFError:\n    pass\n"
    _, body = call(srv, "POST", "/api/context/check", {"text": text})
    assert body["ok"] is True, body


@pytest.mark.parametrize("body", [{}, {"text": 5}, {"text": None}, [], "text"])
def test_check_bad_bodies_are_422(srv: RunningServer, body: Any) -> None:
    status, answer = call(srv, "POST", "/api/context/check", body)
    assert status == 422
    assert isinstance(answer["detail"], str) and answer["detail"]


# -- saving ------------------------------------------------------------------------------
def test_save_writes_records_history_and_publishes(srv: RunningServer) -> None:
    new = GOOD + '\n@Variable(title="More")\ndef more(run):\n    return 1\n'
    status, body = save(srv, new)
    assert status == 200, body
    assert body["changed"] is True
    assert (srv.db_dir / "context.py").read_text() == new
    assert body["version"] == current(srv)["version"]
    assert {"kind": "context_saved", "version": body["version"],
            "history_id": body["history_id"]} in [
                json.loads(encode_event(event)) for event in srv.bus.published]
    # History: the text found on disk before, then the saved one (newest first).
    _, entries = call(srv, "GET", "/api/context/history")
    assert [e["kind"] for e in entries] == ["saved", "before"]
    assert entries[0]["id"] == body["history_id"]
    assert entries[0]["first_changed_line"] == len(GOOD.splitlines()) + 1
    assert entries[0]["summary"] == "+4 -0 lines"
    assert entries[0]["size"] == len(new.encode())
    _, old = call(srv, "GET", f"/api/context/history/{entries[1]['id']}")
    assert old["text"] == GOOD
    _, saved = call(srv, "GET", f"/api/context/history/{entries[0]['id']}")
    assert saved["text"] == new


def test_save_keeps_mode_and_replaces_the_file_atomically(srv: RunningServer) -> None:
    path = srv.db_dir / "context.py"
    os.chmod(path, 0o640)
    inode = path.stat().st_ino
    status, _ = save(srv, GOOD + "\nX = 1\n")
    assert status == 200
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    # Renamed into place (a new inode), and no temporary file left behind.
    assert st.st_ino != inode
    assert sorted(p.name for p in srv.db_dir.iterdir() if p.name.startswith(".context")) == []


def test_save_through_a_symlink_replaces_its_target(srv: RunningServer,
                                                    tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.py"
    real.write_text(GOOD)
    link = srv.db_dir / "context.py"
    link.unlink()
    link.symlink_to(real)
    status, _ = save(srv, GOOD + "\nY = 2\n")
    assert status == 200
    assert link.is_symlink()
    assert real.read_text().endswith("Y = 2\n")


def test_save_with_errors_is_refused_and_changes_nothing(srv: RunningServer) -> None:
    status, body = save(srv, GOOD + "\n1/0\n")
    assert status == 422
    assert "Not saved" in body["detail"]
    assert body["errors"][0]["message"] == "ZeroDivisionError: division by zero"
    assert (srv.db_dir / "context.py").read_text() == GOOD
    assert call(srv, "GET", "/api/context/history")[1] == []


def test_save_with_only_warnings_proceeds(srv: RunningServer) -> None:
    status, body = save(srv, "import os\n" + GOOD)
    assert status == 200
    assert body["check"]["warnings"][0]["message"] == "'os' imported but unused"


def test_save_of_unchanged_text_keeps_no_history(srv: RunningServer) -> None:
    status, body = save(srv, GOOD)
    assert status == 200 and body["changed"] is False
    assert call(srv, "GET", "/api/context/history")[1] == []


def test_conflict_when_the_file_changed_on_disk(srv: RunningServer) -> None:
    base = current(srv)["version"]
    outside = GOOD + "\n# edited in vim\n"
    (srv.db_dir / "context.py").write_text(outside)
    mine = GOOD + "\nZ = 3\n"
    status, body = call(srv, "PUT", "/api/context", {"text": mine, "base_version": base})
    assert status == 409
    assert body["text"] == outside
    assert body["version"] == current(srv)["version"]
    assert (srv.db_dir / "context.py").read_text() == outside
    # Overwrite: force...
    status, forced = call(srv, "PUT", "/api/context", {"text": mine, "base_version": base,
                                                       "force": True})
    assert status == 200
    assert (srv.db_dir / "context.py").read_text() == mine
    # ... and the outside edit is kept in the history all the same.
    _, entries = call(srv, "GET", "/api/context/history")
    texts = [call(srv, "GET", f"/api/context/history/{e['id']}")[1]["text"] for e in entries]
    assert texts == [mine, outside]
    # ... or saving against the version the 409 gave.
    again = mine + "W = 4\n"
    status, _ = call(srv, "PUT", "/api/context", {"text": again,
                                                  "base_version": forced["version"]})
    assert status == 200


def test_touched_but_unchanged_file_is_no_conflict(srv: RunningServer) -> None:
    base = current(srv)["version"]
    path = srv.db_dir / "context.py"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    status, _ = call(srv, "PUT", "/api/context", {"text": GOOD + "\nA = 1\n",
                                                  "base_version": base})
    assert status == 200


def test_concurrent_saves_from_one_version_one_wins(srv: RunningServer) -> None:
    base = current(srv)["version"]
    results: list[int] = []

    def put(n: int) -> None:
        status, _ = call(srv, "PUT", "/api/context",
                         {"text": GOOD + f"\nN = {n}\n", "base_version": base})
        results.append(status)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409]


def test_rollback_is_saving_an_old_text(srv: RunningServer) -> None:
    assert save(srv, GOOD + "\nV = 1\n")[0] == 200
    assert save(srv, GOOD + "\nV = 2\n")[0] == 200
    _, entries = call(srv, "GET", "/api/context/history")
    oldest = entries[-1]
    assert oldest["kind"] == "before"
    _, old = call(srv, "GET", f"/api/context/history/{oldest['id']}")
    status, _ = save(srv, old["text"])
    assert status == 200
    assert (srv.db_dir / "context.py").read_text() == GOOD
    _, after = call(srv, "GET", "/api/context/history")
    assert len(after) == len(entries) + 1 and after[0]["kind"] == "saved"


def test_save_creates_a_missing_context_file(srv: RunningServer) -> None:
    (srv.db_dir / "context.py").unlink()
    body = current(srv)
    assert body["exists"] is False and body["text"] == ""
    status, _ = call(srv, "PUT", "/api/context", {"text": GOOD,
                                                  "base_version": body["version"]})
    assert status == 200
    assert (srv.db_dir / "context.py").read_text() == GOOD


@pytest.mark.parametrize("body", [
    {"text": GOOD},  # no base_version, no force
    {"text": 1, "base_version": "x"},
    {"base_version": "x"},
    {"text": GOOD, "force": "yes"},
    {"text": GOOD, "base_version": 7},
])
def test_save_bad_bodies_are_422(srv: RunningServer, body: dict[str, Any]) -> None:
    status, answer = call(srv, "PUT", "/api/context", body)
    assert status == 422
    assert isinstance(answer["detail"], str) and answer["detail"]
    assert (srv.db_dir / "context.py").read_text() == GOOD


def test_unknown_or_hostile_history_ids_are_404(srv: RunningServer) -> None:
    for entry in ["20990101T000000.000000Z", "..%2F..%2Fruns.sqlite", "context"]:
        status, body = call(srv, "GET", f"/api/context/history/{entry}")
        assert status == 404, entry
    # A well-formed id that names nothing says so.
    _, body = call(srv, "GET", "/api/context/history/20990101T000000.000000Z")
    assert "No context-file history entry" in body["detail"]


def test_non_utf8_file_gives_a_clear_error(srv: RunningServer) -> None:
    (srv.db_dir / "context.py").write_bytes(b"# caf\xe9\n")
    status, body = call(srv, "GET", "/api/context")
    assert status == 500
    assert "not UTF-8" in body["detail"]
