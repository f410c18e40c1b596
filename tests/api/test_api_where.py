"""The filter language through the read API: ``Database.table(where=...)`` on a real
folder (values merged from fragments, user values, comments), and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtable.api import Database
from runtable.store import create_folder
from runtable.store.where import WhereError, describe, parse
from runtable.testing.filter_cases import CASES, PROPOSAL, build_where_folder


@pytest.fixture(scope="module")
def where_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_where_folder(tmp_path_factory.mktemp("where") / "amore")


@pytest.mark.parametrize(("expression", "runs"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_table_where_keeps_the_runs_the_expression_selects(
        where_folder: Path, expression: str, runs: list[int]) -> None:
    with Database(where_folder) as db:
        df = db.table(where=expression)
        assert df["run"].tolist() == runs
        # The rows are the table's own: same columns, same values.
        whole = db.table().set_index("run")
        assert df.set_index("run").equals(whole.loc[runs])


@pytest.mark.parametrize(("expression", "_"), CASES[1:], ids=[c[0] for c in CASES[1:]])
def test_the_canonical_form_reads_back_to_the_same_expression(expression: str, _: object) -> None:
    node = parse(expression)
    assert parse(describe(node)) == node


@pytest.mark.parametrize(("expression", "message"), [
    ("n_trains >", "at its end (something is missing): 'n_trains >'"),
    ("n_trains > 3 and and", "at character 18: 'n_trains > 3 and and' (near 'and')"),
    ("n_trainz > 3", "did you mean 'n_trains'"),
    ("tag:nothing has error", "no column has the tag 'nothing' (tags: beam)"),
    ("sample < YAG", "compares numbers"),
    ('timestamp > "yesterday"', "is not a time"),
    ("(run = 1", "at its end"),
    ("(" * 200 + "run = 1" + ")" * 200, "nests more than 100"),
    ("not " * 5000 + "run = 1", "nests more than 100"),
    ("run in [" + "1, " * 40_000 + "2]", "at most 100,000 are read"),
], ids=lambda item: item if len(item) < 40 else f"{item[:20]}...{len(item)}")
def test_a_bad_expression_says_what_is_wrong(where_folder: Path, expression: str,
                                             message: str) -> None:
    with Database(where_folder) as db, \
            pytest.raises(WhereError, match=re.escape(message)) as caught:
        db.table(where=expression)
    assert isinstance(caught.value, ValueError)


def test_with_titles_and_where_together(where_folder: Path) -> None:
    with Database(where_folder) as db:
        df = db.table(with_titles=True, where="sample = YAG")
    assert df["Run"].tolist() == [3, 6, 9, 12]
    assert set(df["Sample"]) == {"YAG"}


def test_a_held_database_filters_what_changed_since(tmp_path: Path) -> None:
    folder = build_where_folder(tmp_path / "amore")
    with Database(folder) as db:
        assert db.table(where="good = true and comment is missing")["run"].tolist() == [
            2, 4, 6, 8, 10, 12]
        with create_folder(folder, PROPOSAL) as writer:
            writer.set_user_value(PROPOSAL, 1, "good", True)
            writer.set_comment(PROPOSAL, 2, "noisy")
        assert db.table(where="good = true and comment is missing")["run"].tolist() == [
            1, 4, 6, 8, 10, 12]
        assert db.table()["run"].tolist() == list(range(1, 13))
