"""A database folder a team shares: group-writable files, setgid directories, nothing
writable by everyone; with two real Unix users of one group working in turn."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtable.execute import execute_run
from runtable.store import create_folder, open_db
from runtable.testing import make_proposal

GROUP = "rttest-team"
ALICE, BOB, EVE = "rttest-alice", "rttest-bob", "rttest-eve"  # Eve is not in the team
VENV_BIN = Path(sys.executable).parent

CONTEXT = """\
from damnit_ctx import Variable

@Variable(title="Trains")
def n_trains(run):
    return len(run.train_ids)

@Variable(title="Image")
def image(run):
    import numpy as np
    return np.arange(16.0).reshape(4, 4)
"""


def modes_in(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (permission bits, gid)} of everything under ``folder``."""
    out = {".": (stat.S_IMODE(folder.stat().st_mode), folder.stat().st_gid)}
    for path in folder.rglob("*"):
        st = path.lstat()
        out[str(path.relative_to(folder))] = (stat.S_IMODE(st.st_mode), st.st_gid)
    return out


def assert_shared(folder: Path, gid: int | None = None) -> None:
    for name, (mode, group) in modes_in(folder).items():
        assert not mode & 0o002, f"{name} is writable by everyone ({mode:o})"
        if name.endswith(".runtable-server.json"):
            continue
        assert mode & 0o020, f"{name} is not writable by its group ({mode:o})"
        if (folder / name).is_dir():
            assert mode & stat.S_ISGID, f"{name} is not setgid ({mode:o})"
        if gid is not None:
            assert group == gid, f"{name} belongs to group {group}, not {gid}"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_folder_and_everything_processing_adds_is_the_groups(
        tmp_path, data_root, umask_022):
    db = create_folder(tmp_path / "amore", 1234, CONTEXT)
    outcome = execute_run(db.path, 1234, 1)
    assert outcome.fragment is not None
    assert stat.S_IMODE(outcome.fragment.stat().st_mode) == 0o664
    db.merge_pending()
    db.close()
    assert (tmp_path / "amore" / "extracted_data" / "p1234_r1.h5").exists()
    assert_shared(tmp_path / "amore")


def test_a_folder_made_writable_by_everyone_is_repaired_when_opened(tmp_path, umask_022):
    create_folder(tmp_path / "amore", 1234).close()
    for path in (tmp_path / "amore", tmp_path / "amore" / "extracted_data"):
        os.chmod(path, 0o777)
    os.chmod(tmp_path / "amore" / "runs.sqlite", 0o666)
    open_db(tmp_path / "amore").close()
    assert_shared(tmp_path / "amore")


# -- two real users --------------------------------------------------------------------

def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def team() -> dict[str, int]:
    """The group and users (made once per machine, idempotently): {name: id}."""
    if os.geteuid() != 0:
        pytest.skip("making Unix users needs root (CI runs as root)")
    if not (shutil.which("useradd") and shutil.which("groupadd") and shutil.which("setpriv")):
        pytest.skip("useradd, groupadd or setpriv is missing")
    import grp
    import pwd

    if _run("getent", "group", GROUP).returncode != 0:
        assert _run("groupadd", GROUP).returncode == 0
    for user, groups in ((ALICE, [GROUP]), (BOB, [GROUP]), (EVE, [])):
        if _run("getent", "passwd", user).returncode != 0:
            cmd = ["useradd", "--no-create-home", "--user-group", "--shell", "/bin/sh"]
            if groups:
                cmd += ["--groups", ",".join(groups)]
            proc = _run(*cmd, user)
            assert proc.returncode == 0, proc.stderr
    ids = {user: pwd.getpwnam(user).pw_uid for user in (ALICE, BOB, EVE)}
    ids[GROUP] = grp.getgrnam(GROUP).gr_gid
    return ids


@pytest.fixture
def facility(team) -> Iterator[Path]:
    """A proposal as at the facility: raw data readable by all, ``usr/Shared`` owned by
    the proposal's group (setgid), outside root's private temporary folders."""
    base = Path(tempfile.mkdtemp(prefix="runtable-team-"))
    try:
        os.chmod(base, 0o755)
        prop = make_proposal(base / "data", 1234, runs=[1, 2], proc=False)
        shared = prop.path / "usr" / "Shared"
        shared.mkdir(parents=True)
        for path in (prop.path / "usr", shared):
            os.chown(path, 0, team[GROUP])
            os.chmod(path, 0o2775)
        for path in (base / "home-alice", base / "home-bob", base / "home-eve"):
            path.mkdir()
        for user, home in ((ALICE, "home-alice"), (BOB, "home-bob"), (EVE, "home-eve")):
            os.chown(base / home, team[user], -1)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_user(user: str, base: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``runtable ARGS`` as ``user`` with umask 022 (what a login gives most people).

    The user may *read* anything (CAP_DAC_READ_SEARCH), as if Python and runtable were
    installed for everyone rather than under root's home; writing is checked as usual.
    """
    home = base / f"home-{user.removeprefix('rttest-')}"
    env = ["env", "-i", f"HOME={home}", f"PATH={VENV_BIN}:/usr/bin:/bin",
           f"EXTRA_DATA_DATA_ROOT={base / 'data'}", "RUNTABLE_CACHE_DIR=off",
           "PYTHONDONTWRITEBYTECODE=1"]
    switch = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
              "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", "--"]
    script = 'umask 022; exec "$@"'
    return subprocess.run([*switch, *env, "sh", "-c", script, "sh",
                           str(VENV_BIN / "runtable"), *args],
                          capture_output=True, text=True, timeout=600, cwd=base)


def test_two_users_of_one_group_work_in_the_same_folder(team, facility):
    folder = facility / "data" / "SPB" / "202601" / "p001234" / "usr" / "Shared" / "amore"
    proc = as_user(ALICE, facility, "init", "1234")
    assert proc.returncode == 0, proc.stderr
    (folder / "context.py").write_text(CONTEXT)  # as root: keeps alice's mode and group
    assert stat.S_IMODE((folder / "context.py").stat().st_mode) == 0o664
    assert folder.stat().st_gid == team[GROUP]

    # Bob processes a run in the folder Alice made, then Alice in files Bob made.
    for user, run in ((BOB, "1"), (ALICE, "2"), (ALICE, "1"), (BOB, "2")):
        proc = as_user(user, facility, "reprocess", run, "--in", str(folder))
        assert proc.returncode == 0, f"{user} r{run}: {proc.stdout}\n{proc.stderr}"
    with open_db(folder, readonly=True) as db:
        assert db.get_value(1234, 1, "n_trains") == 64
        assert db.get_value(1234, 2, "n_trains") == 64
    owners = {p.stat().st_uid for p in folder.rglob("*")}
    assert {team[ALICE], team[BOB]} <= owners
    assert_shared(folder, team[GROUP])

    # Someone outside the group can read but changes nothing.
    before = modes_in(folder)
    proc = as_user(EVE, facility, "reprocess", "1", "--in", str(folder))
    assert proc.returncode != 0
    assert modes_in(folder).keys() == before.keys()
