from __future__ import annotations

from pathlib import Path

import pytest

from runtable.store import DatabaseFolder, EditConflict, TimeComment, ValidationError, open_db

from .conftest import PROPOSAL
from .fragments import write_fragment


def test_comments(db: DatabaseFolder) -> None:
    db.set_comment(PROPOSAL, 5, "hello")
    row = db.conn.execute(
        "SELECT value, provenance, version FROM run_variables WHERE name = 'comment'").fetchone()
    assert tuple(row) == ("hello", "", 1)
    assert (PROPOSAL, 5) in db.runs()
    assert db.conn.execute("SELECT comment FROM runs WHERE run = 5").fetchone()[0] == "hello"
    db.set_comment(PROPOSAL, 5, "changed")
    assert db.get_value(PROPOSAL, 5, "comment") == "changed"
    db.set_comment(PROPOSAL, 5, None)
    assert db.get_value(PROPOSAL, 5, "comment") is None
    with pytest.raises(ValidationError):
        db.set_comment(PROPOSAL, 5, 3)  # type: ignore[arg-type]


def test_time_comments(db: DatabaseFolder) -> None:
    second = db.add_time_comment("later", timestamp=200)
    first = db.add_time_comment("earlier", timestamp=100.5)
    assert [(c.id, c.timestamp, c.comment) for c in db.time_comments()] == [
        (first, 100.5, "earlier"), (second, 200.0, "later")]
    db.edit_time_comment(first, "edited")
    db.delete_time_comment(second)
    assert [c.comment for c in db.time_comments()] == ["edited"]
    with pytest.raises(KeyError):
        db.edit_time_comment(12345, "x")
    now = db.add_time_comment("now")
    assert next(c for c in db.time_comments() if c.id == now).timestamp > 1e9


def test_a_time_comment_edited_on_a_stale_text_changes_nothing(db: DatabaseFolder) -> None:
    cid = db.add_time_comment("beam down", timestamp=100)
    db.edit_time_comment(cid, "beam down (vacuum)", timestamp=150, base="beam down")
    assert db.time_comment(cid) == TimeComment(cid, 150.0, "beam down (vacuum)")
    with pytest.raises(EditConflict) as conflict:
        db.edit_time_comment(cid, "beam up", base="beam down")
    assert conflict.value.current == "beam down (vacuum)"
    assert db.time_comment(cid).comment == "beam down (vacuum)"
    assert db.delete_time_comment(cid) and not db.delete_time_comment(cid)
    assert db.time_comment(cid) is None


@pytest.mark.parametrize(("vtype", "typed", "stored"), [
    ("number", "2.5", 2.5), ("number", 3, 3), ("number", "-1e3", -1000.0),
    ("integer", "42", 42), ("integer", 7.0, 7),
    ("boolean", "yes", 1), ("boolean", False, 0), ("boolean", "TRUE", 1),
    ("string", "anything", "anything"), ("string", 12, "12"), ("string", "", ""),
])
def test_user_values(db: DatabaseFolder, vtype: str, typed: object, stored: object) -> None:
    db.add_user_variable("v", vtype, title="My V")
    assert db.set_user_value(PROPOSAL, 1, "v", typed) == stored
    assert db.get_value(PROPOSAL, 1, "v") == stored
    assert db.conn.execute("SELECT v FROM runs").fetchone()[0] == stored


@pytest.mark.parametrize(("vtype", "typed", "message"), [
    ("number", "abc", "'abc' is not a number"),
    ("number", "nan", "'nan' is not a finite number"),
    ("number", True, "True is not a number"),
    ("integer", "1.5", "'1.5' is not an integer"),
    ("integer", 2.5, "2.5 is not an integer"),
    ("boolean", "maybe", "'maybe' is not a boolean"),
    ("string", [1], r"\[1\] is not a string"),
])
def test_user_value_validation(db: DatabaseFolder, vtype: str, typed: object,
                               message: str) -> None:
    db.add_user_variable("v", vtype)
    with pytest.raises(ValidationError, match=message):
        db.set_user_value(PROPOSAL, 1, "v", typed)
    assert db.get_value(PROPOSAL, 1, "v") is None


def test_user_variable_definitions(db: DatabaseFolder, folder: Path) -> None:
    db.add_user_variable("quality", "integer", title="Quality", description="0-5")
    info = db.variables()["quality"]
    assert (info.type, info.title, info.description) == ("integer", "Quality", "0-5")
    with pytest.raises(ValidationError, match="already exists"):
        db.add_user_variable("quality", "number")
    with pytest.raises(ValidationError, match="not a variable type"):
        db.add_user_variable("other", "float")
    with pytest.raises(ValidationError, match="not a valid variable name"):
        db.add_user_variable("1abc", "number")
    with pytest.raises(ValidationError, match="reserved"):
        db.add_user_variable("comment", "string")
    write_fragment(folder, PROPOSAL, 1, {"computed": 1})
    db.merge_pending()
    with pytest.raises(ValidationError, match="already exists"):
        db.add_user_variable("computed", "number")
    with pytest.raises(ValidationError, match="not a user-editable variable"):
        db.set_user_value(PROPOSAL, 1, "computed", 3)
    with pytest.raises(ValidationError, match="not a user-editable variable"):
        db.set_user_value(PROPOSAL, 1, "missing", 3)

    db.set_user_value(PROPOSAL, 1, "quality", 4)
    db.update_computed_variables({"tagged": {"title": "T", "tags": ["a"]}})
    db.conn.execute("INSERT INTO variable_tags SELECT 'quality', id FROM tags")
    db.change_user_variable("quality", new_name="grade", title="Grade")
    v = db.variables()
    assert "quality" not in v and v["grade"].title == "Grade" and v["grade"].tags == ("a",)
    assert v["grade"].description == "0-5"
    assert db.get_value(PROPOSAL, 1, "grade") == 4
    assert db.conn.execute("SELECT grade FROM runs WHERE run = 1").fetchone()[0] == 4
    with pytest.raises(ValidationError, match="already exists"):
        db.change_user_variable("grade", new_name="computed")
    db.set_user_value(PROPOSAL, 1, "grade", None)
    assert db.get_value(PROPOSAL, 1, "grade") is None
    db.delete_variable("grade")
    assert "grade" not in db.variables()


def test_reprocessing_keeps_user_data(vdb: DatabaseFolder, folder: Path) -> None:
    db = vdb
    db.add_user_variable("remark", "string")
    write_fragment(folder, PROPOSAL, 11, {"x": 1})
    db.merge_pending()
    db.set_comment(PROPOSAL, 11, "keep me")
    db.set_user_value(PROPOSAL, 11, "remark", "mine")
    db.update_computed_variables({"remark": {"title": "computed note"}})  # ignored
    for value in (2, 3):
        write_fragment(folder, PROPOSAL, 11, {"x": value, "comment": "no", "remark": "no"},
                       errors={"y": RuntimeError("boom")})
        db.merge_pending()
    assert db.get_value(PROPOSAL, 11, "x") == 3
    assert db.get_value(PROPOSAL, 11, "comment") == "keep me"
    assert db.get_value(PROPOSAL, 11, "remark") == "mine"
    assert db.variables()["remark"].type == "string"
    db.close()
    with open_db(folder) as again:
        assert again.get_value(PROPOSAL, 11, "comment") == "keep me"
