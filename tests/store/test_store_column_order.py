"""The ``variables`` table's rows follow the context file, and every reader shows the
columns in one order: the file's, with "/" groups kept together."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from runtable.context import Pipeline
from runtable.store import create_folder, open_db
from runtable.store.columns import column_order, keep_groups_together

CONTEXT = textwrap.dedent('''\
    from damnit_ctx import Variable

    @Variable(title="XGM/Flux")
    def flux(run, n: "var#n_trains"):
        return 2.0 * n

    @Variable(title="Camera/Mean")
    def camera_mean(run):
        return 1.0

    @Variable(title="XGM/Energy")
    def energy(run):
        return 3.0

    @Variable(title="Trains")
    def n_trains(run):
        return 64
''')


def rows(folder: Path) -> list[str]:
    """The rows as the reference's web viewer reads them (no ORDER BY)."""
    with sqlite3.connect(folder / "runs.sqlite") as conn:
        return [n for n, _ in conn.execute("SELECT name, title FROM variables")]


def test_vars_to_dict_is_in_the_order_of_the_file():
    pipeline = Pipeline.from_str(CONTEXT)
    assert list(pipeline.vars)[-1] == "flux"  # computed after what it needs
    assert list(pipeline.vars_to_dict()) == ["flux", "camera_mean", "energy", "n_trains"]


def test_rows_of_the_variables_table_follow_the_file(tmp_path):
    db = create_folder(tmp_path / "amore", 1234, CONTEXT)
    db.update_computed_variables(Pipeline.from_str(CONTEXT).vars_to_dict())
    assert rows(db.path) == ["flux", "camera_mean", "energy", "n_trains"]

    db.add_user_variable("quality", "number", "Quality")
    # A variable inserted in the middle of the file, one moved, one removed.
    changed = CONTEXT.replace("@Variable(title=\"Trains\")", textwrap.dedent('''\
        @Variable(title="XGM/Gain")
        def gain(run):
            return 1.0

        @Variable(title="Trains")''')).replace("def energy", "def energy_moved")
    definitions = Pipeline.from_str(changed).vars_to_dict()
    assert db.update_computed_variables(definitions)
    assert rows(db.path) == ["flux", "camera_mean", "energy", "energy_moved", "gain",
                             "n_trains", "quality"]
    assert db.update_computed_variables(definitions) == []  # nothing moves twice
    db.close()


def test_tags_and_titles_survive_reordering(tmp_path):
    db = create_folder(tmp_path / "amore", 1234)
    db.update_computed_variables({"b": {"title": "B", "tags": ["x"]},
                                  "a": {"title": "A", "tags": ["y"]}})
    db.update_computed_variables({"a": {"title": "A", "tags": ["y"]},
                                  "b": {"title": "B", "tags": ["x"]}})
    info = db.variables()
    assert list(info) == ["a", "b"]
    assert info["a"].tags == ("y",) and info["b"].tags == ("x",)
    assert db.integrity_check() == "ok"
    db.close()


def test_groups_are_kept_together_level_by_level():
    titles = ["XGM/Flux", "Camera/Mean", "Trains", "XGM/Energy", "Camera/Sub/A", "Other",
              "Camera/Sub/B", "XGM/Energy2"]
    assert keep_groups_together(titles, str) == [
        "XGM/Flux", "XGM/Energy", "XGM/Energy2", "Camera/Mean", "Camera/Sub/A",
        "Camera/Sub/B", "Trains", "Other"]


def test_column_order_places_user_variables_after_their_anchor(tmp_path):
    db = create_folder(tmp_path / "amore", 1234)
    db.update_computed_variables(Pipeline.from_str(CONTEXT).vars_to_dict())
    db.add_user_variable("quality", "number", "XGM/Quality")
    db.add_user_variable("first", "string", "First")
    db.conn.execute("UPDATE variables SET attributes = ? WHERE name = 'first'",
                    ('{"runtable_after": "comment"}',))
    order = column_order(db.variables().values(), ["flux", "unknown_name"])
    db.close()
    # 'quality' has no anchor (last), but its title puts it in the XGM group.
    assert order == ["first", "flux", "energy", "quality", "camera_mean", "n_trains",
                     "unknown_name"]


@pytest.mark.parametrize("reader", ["api", "cli_table", "export"])
def test_every_reader_shows_the_files_order(tmp_path, reader, capsys):
    from runtable.api import Database
    from runtable.tableview import export_table, load_table

    folder = tmp_path / "amore"
    db = create_folder(folder, 1234, CONTEXT)
    db.update_computed_variables(Pipeline.from_str(CONTEXT).vars_to_dict())
    db.ensure_run(1234, 1)
    db.conn.execute("UPDATE run_info SET start_time = 1767225600")
    db.close()
    expected = ["flux", "energy", "camera_mean", "n_trains"]
    if reader == "api":
        with Database(folder, cache=False) as rdb:
            columns = list(rdb.table().columns)
    elif reader == "cli_table":
        columns = list(load_table(folder).columns)
    else:
        out = tmp_path / "table.csv"
        export_table(folder, out, "csv")
        columns = out.read_text().splitlines()[0].split(",")
    assert [c for c in columns if c in expected] == expected


def test_a_folder_without_rows_for_some_names_still_opens(tmp_path):
    db = create_folder(tmp_path / "amore", 1234)
    db.close()
    with open_db(tmp_path / "amore", readonly=True) as rdb:
        assert rdb.variables() == {}
