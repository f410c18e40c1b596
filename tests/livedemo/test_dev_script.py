"""``./dev demo`` says what it is doing while it sets up (a first run takes minutes).

The script runs on a copy of itself in a folder laid out like a fresh clone, with
stand-ins for ``python3``, ``uv``, ``npm``, ``chromium`` and the installed
``runtable`` that only record that they ran: the real environment and the built GUI,
which other tests use meanwhile, are never touched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each stand-in appends its name and arguments to $CALLS, then does the least the
# script expects of the real tool.
_PYTHON3 = """#!/bin/sh
echo "python3 $*" >> "$CALLS"
# python3 -m venv DIR
mkdir -p "$3/bin"
cp "$FAKES/venv-python" "$3/bin/python"
"""
_VENV_PYTHON = """#!/bin/sh
echo "python $*" >> "$CALLS"
# python -m pip install ... uv
dir=$(dirname "$0")
cp "$FAKES/uv" "$dir/uv"
cp "$FAKES/runtable" "$dir/runtable"
"""
_UV = """#!/bin/sh
echo "uv $*" >> "$CALLS"
"""
_NPM = """#!/bin/sh
echo "npm $*" >> "$CALLS"
case "$1" in
    ci) mkdir -p node_modules && touch node_modules/.package-lock.json ;;
    run) mkdir -p ../src/runtable/server/static && touch ../src/runtable/server/static/index.html ;;
esac
"""
_RUNTABLE = """#!/bin/sh
echo "runtable $*" >> "$CALLS"
"""
_CHROMIUM = "#!/bin/sh\n"


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder laid out like a fresh clone, and the environment to run ./dev in it."""
    repo = tmp_path / "repo"
    (repo / "frontend" / "src").mkdir(parents=True)
    shutil.copy2(ROOT / "dev", repo / "dev")
    for name in ("index.html", "vite.config.ts", "tsconfig.json", "package-lock.json"):
        (repo / "frontend" / name).write_text("")
    (repo / "frontend" / "src" / "main.ts").write_text("")
    fakes = tmp_path / "fakes"
    bin_dir = fakes / "bin"
    bin_dir.mkdir(parents=True)
    _script(bin_dir / "python3", _PYTHON3)
    _script(bin_dir / "npm", _NPM)
    _script(bin_dir / "chromium", _CHROMIUM)
    _script(fakes / "venv-python", _VENV_PYTHON)
    _script(fakes / "uv", _UV)
    _script(fakes / "runtable", _RUNTABLE)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "CALLS": str(tmp_path / "calls.txt"), "FAKES": str(fakes)}
    return repo, env


def _dev(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", str(repo / "dev"), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def _said(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.removeprefix("./dev: ") for line in done.stderr.splitlines()
            if line.startswith("./dev: ")]


def test_dev_demo_says_each_setup_step_of_a_fresh_clone_then_how_to_reach_runtable(
        clone: tuple[Path, dict[str, str]]) -> None:
    repo, env = clone
    done = _dev(repo, env, "demo", "--every", "5")
    said = _said(done)
    assert [line.split(" (")[0].split(" …")[0] for line in said] == [
        "creating the Python environment in .venv",
        "installing uv",
        "checking the Python packages in .venv",
        "installing the web GUI's packages",
        "building the web GUI",
        "starting the demo",
    ]
    assert "runtable is .venv/bin/runtable" in said[-1]
    assert "source .venv/bin/activate" in said[-1]
    # Each message comes before the step it announces, and the demo gets its arguments.
    calls = Path(env["CALLS"]).read_text().splitlines()
    assert calls[0].startswith("python3 -m venv")
    assert calls[-1] == "runtable demo --every 5"


def test_dev_demo_again_says_only_what_it_still_does(
        clone: tuple[Path, dict[str, str]]) -> None:
    repo, env = clone
    _dev(repo, env, "setup")
    # The built GUI is newer than its sources: not built again, and not announced.
    built = repo / "src" / "runtable" / "server" / "static" / "index.html"
    later = built.stat().st_mtime + 10
    os.utime(built, (later, later))
    os.utime(repo / "frontend" / "node_modules" / ".package-lock.json", (later, later))
    Path(env["CALLS"]).unlink()
    said = _said(_dev(repo, env, "demo"))
    assert [line.split(" ")[0] for line in said] == ["checking", "starting"]
    calls = Path(env["CALLS"]).read_text().splitlines()
    assert not [c for c in calls if c.startswith("npm")]
