"""`runtable config`: list, get, set with validation, delete, unknown keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtable.cli import main
from runtable.store import SETTINGS, create_folder, open_db

from .cli_helpers import run_cli


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    create_folder(tmp_path / "db", 1234).close()
    return tmp_path / "db"


def config(folder: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["config", *args, "--in", str(folder)])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_setting(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = config(folder, capsys)
    assert code == 0
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert list(lines) == list(SETTINGS)
    assert lines["proposal"] == "1234"
    assert lines["slurm_time"] == "02:00:00  # default"
    assert lines["slurm_partition"] == "  # not set"
    assert lines["job_time_limit_s"] == "  # not set"
    assert lines["data_format_version"] == "4"


def test_set_get_delete(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert config(folder, capsys, "noncluster_mem", "4000m") == (0, "noncluster_mem=4000M\n", "")
    assert config(folder, capsys, "noncluster_mem") == (0, "4000M\n", "")
    # '-' works for '_', as in most command lines.
    assert config(folder, capsys, "job-time-limit-s", "90")[:2] == (0, "job_time_limit_s=90.0\n")
    with open_db(folder, readonly=True) as db:
        assert db.get_setting("job_time_limit_s") == 90.0
        assert db.get_setting("noncluster_mem") == "4000M"

    code, out, _ = config(folder, capsys, "noncluster_mem", "--delete")
    default = SETTINGS["noncluster_mem"].default  # this machine's (at most 25G)
    assert (code, out) == (0, f"Deleted noncluster_mem; its default {default} applies\n")
    code, out, _ = config(folder, capsys, "job_time_limit_s", "-d")
    assert (code, out) == (0, "Deleted job_time_limit_s\n")
    code, out, err = config(folder, capsys, "job_time_limit_s")
    assert (code, out, err) == (1, "", "job_time_limit_s is not set\n")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("concurrent_jobs", "many", "concurrent_jobs: 'many' is not a positive integer"),
    ("concurrent_jobs", "0", "concurrent_jobs: '0' is not a positive integer"),
    ("noncluster_mem", "lots", "'lots' is not a memory size like '25G' or '4000M'"),
    ("slurm_time", "2h", "'2h' is not a Slurm time limit like '02:00:00' or '1-12'"),
    ("job_time_limit_s", "0", "job_time_limit_s: '0' is not a number > 0"),
    ("job_time_limit_s", "soon", "job_time_limit_s: 'soon' is not a number"),
    ("executor", "cloud", "'cloud' is not one of 'local', 'slurm'"),
    ("data_format_version", "5", "is managed by runtable and cannot be set"),
])
def test_invalid_values_are_rejected(folder: Path, capsys: pytest.CaptureFixture[str],
                                     key: str, value: str, message: str) -> None:
    with open_db(folder, readonly=True) as db:
        before = db.settings()
    code, out, err = config(folder, capsys, key, value)
    assert code == 2
    assert out == ""
    assert err.startswith("Error: ") and message in err
    with open_db(folder, readonly=True) as db:
        assert db.settings() == before


def test_nothing_changes_on_invalid_value(folder: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    config(folder, capsys, "concurrent_jobs", "3")
    assert config(folder, capsys, "concurrent_jobs", "-1")[0] == 2
    assert config(folder, capsys, "concurrent_jobs") == (0, "3\n", "")


def test_unknown_key_lists_the_known_ones(folder: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = config(folder, capsys, "slurm_queue", "upex")
    assert code == 2 and out == ""
    assert "unknown setting 'slurm_queue'" in err
    for key in SETTINGS:
        assert key in err


def test_protected_keys_cannot_be_deleted(folder: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = config(folder, capsys, "proposal", "--delete")
    assert code == 2 and "'proposal' cannot be deleted" in err
    code, _, err = config(folder, capsys, "slurm_time", "1:00:00", "--delete")
    assert code == 1 and "either a VALUE or --delete" in err
    code, _, err = config(folder, capsys, "--delete")
    assert code == 1 and "--delete needs a KEY" in err


def test_config_as_a_command(folder: Path) -> None:
    result = run_cli("config", "slurm_partition", "upex", "--in", folder)
    assert (result.returncode, result.stdout) == (0, "slurm_partition=upex\n")
    result = run_cli("config", "slurm_partition", cwd=folder)
    assert (result.returncode, result.stdout) == (0, "upex\n")
    result = run_cli("config", "--in", folder.parent)
    assert result.returncode == 1
    assert "is not a database folder (no runs.sqlite)" in result.stderr


def test_timezone_setting_takes_iana_names_and_refuses_others(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = config(folder, capsys, "timezone", "CEST+2")
    assert code == 2
    assert "is not a time zone name; use an IANA name such as 'Europe/Berlin'" in err
    assert config(folder, capsys, "timezone", "America/Chicago")[0] == 0
    assert "America/Chicago" in config(folder, capsys, "timezone")[1]


def test_default_job_limits_fit_this_machine(folder: Path) -> None:
    import os

    from runtable.jobs.limits import Limits

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    result = run_cli("config", "--in", folder)
    assert result.returncode == 0, result.stderr
    lines = {line.split("=", 1)[0]: line for line in result.stdout.splitlines()}
    assert "# default on this machine: half of the machine's memory, at most 25G" in \
        lines["noncluster_mem"]
    assert "# default on this machine: the CPUs of the machine, at most 4" in \
        lines["noncluster_cpus"]
    with open_db(folder, readonly=True) as db:
        limits = Limits.from_settings(db.settings())
    assert limits.mem_bytes <= memory / 2
    assert limits.cpus <= len(os.sched_getaffinity(0))
