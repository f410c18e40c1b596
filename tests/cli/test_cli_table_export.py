"""`runtable table` and `runtable export` on a folder processed by the real command."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runtable.cli import main
from runtable.store import create_folder
from runtable.testing import MockProposal

from .cli_helpers import RICH_CONTEXT, run_cli

NUMERIC = ("xgm_flux", "doubled", "n_trains")
#: A variable that returns a bool (SQLite stores 0/1).
CONTEXT = RICH_CONTEXT + '''
@Variable(title="Even run")
def even(run, n: "meta#run_number"):
    return n % 2 == 0
'''


@pytest.fixture(scope="module")
def processed(mock_proposal: MockProposal, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs 1-3 of the shared proposal processed with RICH_CONTEXT, plus a comment and a
    user-editable column typed in by a person."""
    folder = tmp_path_factory.mktemp("cli_table") / "amore"
    with create_folder(folder, mock_proposal.proposal, CONTEXT) as db:
        db.add_user_variable("sample", "string", title="Sample")
        db.set_user_value(1234, 2, "sample", "lysozyme | batch 2")
    result = run_cli("reprocess", "all", "--in", folder, data_root=mock_proposal.root)
    assert result.returncode == 0, result.stderr
    with create_folder(folder, mock_proposal.proposal) as db:
        db.set_comment(1234, 1, "first light")
    return folder


@pytest.fixture(scope="module")
def expected(processed: Path) -> pd.DataFrame:
    """The table as the read API gives it."""
    from runtable.api import Database

    with Database(processed) as db:
        return db.table().set_index("run")


def test_table_shows_the_values(processed: Path, expected: pd.DataFrame) -> None:
    result = run_cli("table", "--in", processed, COLUMNS="250")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "p1234: 3 runs" in out
    for run in (1, 2, 3):
        row = next(ln for ln in out.splitlines() if ln.startswith(f"│   {run} │"))
        assert f"run {run}" in row
        # Written as the web GUI writes this column: 4 decimals, not 4 digits.
        assert f" {expected.loc[run, 'xgm_flux']:.4f} " in row
        assert "<thumbnail>" in row and "<sparkline>" in row
        assert "64" in row
    assert "first light" in out
    assert "lysozyme | batch 2" in out
    assert "not shown" not in out


def test_a_bool_variable_reads_prints_and_exports_as_booleans(
        processed: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    assert str(expected["even"].dtype) == "boolean"
    assert expected["even"].tolist() == [False, True, False]
    result = run_cli("table", "--in", processed, "-c", "even", COLUMNS="250")
    assert result.returncode == 0, result.stderr
    rows = {run: next(ln for ln in result.stdout.splitlines() if ln.startswith(f"│   {run} │"))
            for run in (1, 2, 3)}
    assert "False" in rows[1] and "True" in rows[2] and "False" in rows[3]
    out = tmp_path / "even.csv"
    assert run_cli("export", "-o", out, "--in", processed).returncode == 0
    header, *lines = out.read_text().splitlines()
    at = header.split(",").index("even")
    assert [line.split(",")[at] for line in lines] == ["False", "True", "False"]


def test_table_narrow_terminal_names_hidden_columns(processed: Path) -> None:
    result = run_cli("table", "--in", processed, COLUMNS="60")
    assert result.returncode == 0, result.stderr
    assert "not shown:" in result.stdout
    assert "--columns" in result.stdout
    assert all(len(line) <= 60 for line in result.stdout.splitlines())


def test_table_columns_and_titles(processed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "--in", str(processed), "-c", "label,n_trains"]) == 0
    out = capsys.readouterr().out
    assert "label" in out and "run 3" in out
    assert "xgm_flux" not in out and "<thumbnail>" not in out

    assert main(["table", "--in", str(processed), "--titles", "-c", "Label"]) == 0
    assert "Label" in capsys.readouterr().out

    assert main(["table", "--in", str(processed), "-c", "nope"]) == 1
    err = capsys.readouterr().err
    assert "No column 'nope'" in err and "xgm_flux" in err

    # Titles as the GUI shows them, in any case, with or without --titles.
    assert main(["table", "--in", str(processed), "-c", "XGM flux,doubled FLUX"]) == 0
    out = capsys.readouterr().out
    assert "xgm_flux" in out and "doubled" in out and "label" not in out
    assert main(["table", "--in", str(processed), "--titles", "-c", "n_trains"]) == 0
    assert "Trains" in capsys.readouterr().out


def test_table_takes_the_last_part_of_a_grouped_title(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from runtable.context import Cell, Results

    folder = tmp_path / "amore"
    with create_folder(folder, 1234) as db:
        db.update_computed_variables({
            "flux": {"title": "XGM/Photon flux"}, "pos_x": {"title": "Sample X/Position"},
            "pos_y": {"title": "Sample Y/Position"}})
        for run in (1, 2):
            cells = {"start_time": Cell(1.79e9 + run), "flux": Cell(11.0015 * run),
                     "pos_x": Cell(0.5 * run), "pos_y": Cell(1.0)}
            db.merge_fragment(Results(cells, {}).save(db.extracted_dir, 1234, run))
    # The header the GUI shows under its "XGM" group.
    assert main(["table", "--in", str(folder), "-c", "Photon flux"]) == 0
    out = capsys.readouterr().out
    assert "11.0015" in out and "22.0030" in out  # not "11" and "22"
    # Two groups have a "Position": say which to choose.
    assert main(["table", "--in", str(folder), "-c", "position"]) == 1
    err = capsys.readouterr().err
    assert "could be any of pos_x, pos_y" in err


def check_typed(df: pd.DataFrame, expected: pd.DataFrame) -> None:
    df = df.set_index("run")
    assert list(df.index) == [1, 2, 3]
    for name in NUMERIC:
        assert pd.api.types.is_numeric_dtype(df[name]), (name, df[name].dtype)
        for run in (1, 2, 3):
            assert df.loc[run, name] == pytest.approx(float(expected.loc[run, name]))
    assert set(df["camera"]) == {"<thumbnail>"}
    assert set(df["flux_trend"]) == {"<sparkline>"}
    assert [df.loc[r, "label"] for r in (1, 2, 3)] == ["run 1", "run 2", "run 3"]
    assert df.loc[1, "comment"] == "first light"
    assert df.loc[2, "sample"] == "lysozyme | batch 2"
    assert pd.isna(df.loc[1, "sample"])
    assert df["broken"].isna().all()
    assert [df.loc[r, "even"] for r in (1, 2, 3)] == [False, True, False]


def test_export_csv(processed: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    result = run_cli("export", "-o", out, "--in", processed)
    assert result.returncode == 0, result.stderr
    assert f"Wrote 3 runs to {out} (csv)." in result.stdout
    df = pd.read_csv(out)
    check_typed(df, expected)
    assert pd.to_datetime(df["start_time"]).notna().all()


def test_export_parquet(processed: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "table.data"
    result = run_cli("export", "--format", "parquet", "-o", out, "--in", processed)
    assert result.returncode == 0, result.stderr
    df = pd.read_parquet(out)
    check_typed(df, expected)
    assert pd.api.types.is_datetime64_any_dtype(df["start_time"])
    assert df["n_trains"].dtype.kind in "iu"


def test_export_xlsx(processed: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = tmp_path / "table.xlsx"
    result = run_cli("export", "-o", out, "--in", processed)
    assert result.returncode == 0, result.stderr
    sheet = load_workbook(out).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    cells = {row[header.index("run")]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert sorted(cells) == [1, 2, 3]
    for run in (1, 2, 3):
        for name in NUMERIC:
            value = cells[run][name]
            assert isinstance(value, int | float) and not isinstance(value, bool), (name, value)
            assert value == pytest.approx(float(expected.loc[run, name]))
        assert cells[run]["camera"] == "<thumbnail>"
        assert cells[run]["flux_trend"] == "<sparkline>"
        assert isinstance(cells[run]["start_time"], datetime)
        assert cells[run]["broken"] is None
    assert cells[2]["sample"] == "lysozyme | batch 2"
    # Read back through pandas too: the same types.
    check_typed(pd.read_excel(out), expected)


def test_export_markdown(processed: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    result = run_cli("export", "-o", out, "--in", processed, "--titles")
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    assert "XGM flux" in header and "Camera image" in header
    assert set(lines[1].replace("|", "").split()) == {"---"}
    assert len(lines) == 2 + 3
    row2 = lines[3]
    assert "<thumbnail>" in row2 and "<sparkline>" in row2 and "run 2" in row2
    # A '|' typed into a cell must not split it.
    assert "lysozyme \\| batch 2" in row2
    assert row2.count(" | ") == len(header) - 1
    flux = expected.loc[2, "xgm_flux"]
    assert f"{flux:.4g}" in row2 and not math.isnan(flux)


def test_export_errors(processed: Path, tmp_path: Path) -> None:
    result = run_cli("export", "-o", tmp_path / "table.txt", "--in", processed)
    assert result.returncode == 1
    assert "cannot tell the format from the name 'table.txt'" in result.stderr
    assert "--format csv|md|parquet|xlsx" in result.stderr

    result = run_cli("export", "-o", tmp_path / "missing" / "t.csv", "--in", processed)
    assert result.returncode == 1
    assert f"the folder {tmp_path / 'missing'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    create_folder(tmp_path / "db", 1234).close()
    assert main(["table", "--in", str(tmp_path / "db")]) == 0
    assert "No runs yet" in capsys.readouterr().out
    assert main(["export", "-o", str(tmp_path / "t.csv"), "--in", str(tmp_path / "db")]) == 0
    assert len(pd.read_csv(tmp_path / "t.csv")) == 0


def test_table_and_export_where(processed: Path, expected: pd.DataFrame, tmp_path: Path) -> None:
    """--where keeps the runs the read API's ``table(where=...)`` keeps."""
    result = run_cli("table", "--in", processed, "--where", "run >= 2 and sample is missing",
                     COLUMNS="250")
    assert result.returncode == 0, result.stderr
    shown = [ln for ln in result.stdout.splitlines() if ln.startswith("│ ")]
    assert [ln.split("│")[1].strip() for ln in shown] == ["3"]

    out = tmp_path / "where.csv"
    result = run_cli("export", "-o", out, "--in", processed, "-w", 'comment = "first light"')
    assert result.returncode == 0, result.stderr
    assert "Wrote 1 run " in result.stdout
    assert pd.read_csv(out)["run"].tolist() == [1]


def test_a_bad_where_is_an_error_and_writes_nothing(processed: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad.csv"
    result = run_cli("export", "-o", out, "--in", processed, "--where", "xgm_flux >")
    assert result.returncode != 0
    assert "--where: cannot read the filter" in result.stderr
    assert not out.exists()
    result = run_cli("table", "--in", processed, "--where", "xgm_fluxx > 1")
    assert result.returncode != 0
    assert "did you mean 'xgm_flux'" in result.stderr


def test_numpy_numbers_print_like_python_ones_and_complex_ones_keep_their_imaginary_part(
) -> None:
    from runtable.tableview import format_cell

    assert format_cell(np.int16(3)) == format_cell(3) == "3"
    assert format_cell(np.int64(2**62 + 1), ("integer", 0)) == str(2**62 + 1)  # exact
    assert format_cell(np.float32(1.5)) == format_cell(1.5) == "1.5000"
    assert format_cell(np.float64(3.0), ("fixed", 2)) == "3.00"
    assert format_cell(np.complex64(1 + 2j)) == format_cell(1 + 2j) == "(1+2j)"
