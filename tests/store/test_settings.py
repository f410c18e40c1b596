from __future__ import annotations

import pytest

from runtable.store import SETTINGS, DatabaseFolder, ValidationError


def test_every_setting_is_described() -> None:
    reference_keys = {"context_python", "concurrent_jobs", "noncluster_cpus", "noncluster_mem",
                      "slurm_time", "slurm_partition", "slurm_reservation", "proposal", "db_id",
                      "data_format_version", "damnit_python"}
    assert reference_keys <= set(SETTINGS)
    for key, setting in SETTINGS.items():
        assert setting.key == key
        assert setting.description.endswith(".") and "\n" not in setting.description


def test_defaults_and_listing(db: DatabaseFolder) -> None:
    values = db.settings()
    assert set(values) == set(SETTINGS)
    assert values["slurm_time"] == "02:00:00"
    assert values["noncluster_mem"] == SETTINGS["noncluster_mem"].default  # at most 25G
    assert values["data_format_version"] == 4
    assert values["slurm_partition"] is None


@pytest.mark.parametrize(("key", "given", "stored"), [
    ("concurrent_jobs", "20", 20), ("noncluster_cpus", 8, 8), ("noncluster_mem", "4000m", "4000M"),
    ("slurm_time", "1-12:00:00", "1-12:00:00"), ("slurm_partition", "upex", "upex"),
    ("context_python", "/opt/py/bin/python", "/opt/py/bin/python"), ("ready_quiet_s", "2.5", 2.5),
    ("executor", "Slurm", "slurm"), ("proposal", "4321", 4321), ("db_id", "AB" * 20, "ab" * 20),
    ("slurm-reservation", "beamtime", "beamtime"),
])
def test_set_and_get(db: DatabaseFolder, key: str, given: object, stored: object) -> None:
    assert db.set_setting(key, given) == stored
    assert db.get_setting(key) == stored
    assert db.settings()[key.replace("-", "_")] == stored


@pytest.mark.parametrize(("key", "given", "message"), [
    ("concurrent_jobs", "many", "'many' is not a positive integer"),
    ("concurrent_jobs", 0, "0 is not a positive integer"),
    ("noncluster_mem", "lots", "not a memory size"),
    ("slurm_time", "2 hours", "not a Slurm time limit"),
    ("executor", "cloud", "not one of"),
    ("db_id", "xyz", "not 40 hexadecimal"),
    ("ready_quiet_s", "-1", "not a finite number >= 0"),
    ("data_format_version", 5, "managed by runtable"),
    ("context_python", "  ", "not a non-empty string"),
])
def test_invalid_values(db: DatabaseFolder, key: str, given: object, message: str) -> None:
    before = db.settings()
    with pytest.raises(ValidationError, match=message):
        db.set_setting(key, given)
    assert db.settings() == before


def test_unknown_key(db: DatabaseFolder) -> None:
    for call in (lambda: db.get_setting("colour"), lambda: db.set_setting("colour", "red"),
                 lambda: db.delete_setting("colour")):
        with pytest.raises(ValidationError, match="Unknown setting 'colour'; known settings: "
                                                  "concurrent_jobs, context_python"):
            call()


def test_delete(db: DatabaseFolder) -> None:
    db.set_setting("concurrent_jobs", 3)
    db.delete_setting("concurrent_jobs")
    assert db.get_setting("concurrent_jobs") == 15
    for key in ("db_id", "proposal", "data_format_version"):
        with pytest.raises(ValidationError, match="cannot be deleted"):
            db.delete_setting(key)


def test_new_db_id(db: DatabaseFolder) -> None:
    old = db.db_id
    new = db.new_db_id()
    assert new != old and db.db_id == new and len(new) == 40


def test_a_setting_another_tool_stored_as_null_or_empty_reads_as_its_default(
        db: DatabaseFolder) -> None:
    from runtable.jobs.limits import Limits

    with db.transaction() as conn:
        conn.executemany("INSERT INTO metameta(key, value) VALUES (?, ?)",
                         [("slurm_time", None), ("ready_quiet_s", ""), ("noncluster_cpus", None)])
    assert db.get_setting("slurm_time") == "02:00:00"
    assert db.get_setting("ready_quiet_s") == SETTINGS["ready_quiet_s"].default
    assert db.settings()["slurm_time"] == "02:00:00"
    limits = Limits.from_settings(db.stored_settings())
    assert (limits.slurm_time, limits.cpus) == ("02:00:00", SETTINGS["noncluster_cpus"].default)
