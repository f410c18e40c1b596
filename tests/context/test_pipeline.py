"""Pipeline: building, deriving, executing (with a given run or opening it), results."""

import logging

import numpy as np
import pytest

from runtable.context import (
    Cell,
    ContextFileErrors,
    DependencyError,
    Pipeline,
    Problem,
    Results,
    RunData,
    Skip,
    Variable,
)
from runtable.testing import make_proposal
from runtable.testing.mock_proposal import run_start

from .conftest import HEADER, load, run_code


@Variable(title="A")
def a(run):
    return 1


@Variable(title="B")
def b(run, x: "var#a"):  # noqa: F821 (a runtable annotation, not a name)
    return x + 1


@Variable(title="C", transient=True)
def c(run):
    return 3


def test_add_forms_and_order():
    p = Pipeline(1234, 1).add([a, (b,)], {"renamed": c})
    assert list(p.vars) == ["a", "renamed", "b"]
    assert p.add() is p


@pytest.mark.parametrize("item", ["a", 3, (x for x in [a]), [[None]], {"k": 1}, {1: a}])
def test_add_rejects_other_things(item):
    with pytest.raises(TypeError, match=r"Pipeline\.add"):
        Pipeline().add(item)


def test_add_reports_missing_dependencies():
    with pytest.raises(ContextFileErrors, match="Missing dependency: 'a' for 'b'"):
        Pipeline().add(b)


def test_add_clears_results(run1):
    p = Pipeline(1234, 1).add(a)
    p.execute(data=run1)
    assert isinstance(p.results, Results)
    p.add(b)
    assert p.results is None


def test_execute_needs_proposal_and_run():
    with pytest.raises(ValueError, match="proposal and run_number must be set"):
        Pipeline().add(a).execute(data=object())


def test_with_context_copy_and_names(run1):
    p = Pipeline(param_values={"x": 1}).add(a, b)
    q = p.with_context(proposal=1234, run_number=1, param_values={"x": 2})
    assert (p.proposal, p.param_values) == (None, {"x": 1})
    assert (q.proposal, q.run_number, q.param_values) == (1234, 1, {"x": 2})
    assert q.context == {"proposal": 1234, "run_number": 1, "run_data": RunData.ALL,
                         "param_values": {"x": 2}}
    assert len(p.name) == 12 and p.name != q.name  # hash of the context
    assert q.with_context(name="label").name == "label"
    r = q.copy()
    r.param_values["x"] = 5
    assert q.param_values == {"x": 2} and list(r.vars) == list(q.vars)
    with pytest.raises(TypeError, match="unknown fields"):
        p.with_context(colour="red")


def test_union():
    left = Pipeline().add(a)
    right = Pipeline().add(a, b)
    assert list(left.union(right).vars) == ["a", "b"]  # same variable: deduplicated

    @Variable(title="Other A")
    def a2(run):
        return 2

    other = Pipeline().add({"a": a2})
    with pytest.raises(ValueError, match="Duplicate variable name 'a'"):
        left.union(other)
    assert left.union(other, on_conflict="left").vars["a"].title == "A"
    assert left.union(other, on_conflict="right").vars["a"].title == "Other A"
    with pytest.raises(ValueError, match="on_conflict"):
        left.union(other, on_conflict="both")


def test_vars_to_dict():
    p = Pipeline().add(a, b, c)
    d = p.vars_to_dict()
    assert set(d) == {"a", "b"}
    assert d["a"] == {"title": "A", "description": None, "tags": [], "attributes": None,
                      "type": None}
    assert set(p.vars_to_dict(inc_transient=True)) == {"a", "b", "c"}


def test_results_and_start_time(run1):
    results = Pipeline(1234, 1).add(a, b, c).execute(data=run1)
    assert list(results.cells) == ["start_time", "a", "b"]
    start = results.cells["start_time"].data
    assert isinstance(start.item(), float) and start == run_start(1)
    assert results.provenance == "context.py" and results.errors == {}


def test_start_time_without_a_data_collection():
    import time

    before = time.time()
    results = Pipeline(1, 1).add(a).execute(data={"anything": 1})
    assert before <= results.cells["start_time"].data <= time.time()


def test_start_time_falls_back_to_file_mtime(tmp_path):
    import os

    import extra_data
    import h5py

    proposal = make_proposal(tmp_path, 99, runs=[1], proc=False)
    run_dir = proposal.raw_dir(1)
    for f in run_dir.glob("*.h5"):
        with h5py.File(f, "r+") as h5:
            if "INDEX/timestamp" in h5:
                del h5["INDEX/timestamp"]
        os.utime(f, (1_600_000_000, 1_600_000_000))
    results = Pipeline(99, 1).add(a).execute(data=extra_data.RunDirectory(str(run_dir)))
    assert results.cells["start_time"].data == 1_600_000_000


def test_save_writes_a_fragment(run1, tmp_path):
    from runtable.execute.fragment import read_fragment

    results = Pipeline(1234, 1).add(a, b).execute(data=run1)
    path = results.save(tmp_path / "extracted_data", 1234, 1)
    contents = read_fragment(path)
    assert contents.provenance == "context.py"
    assert set(contents.summaries) >= {"a", "b"}


def test_execute_opens_the_run_itself(data_root):
    code = HEADER + """
@Variable()
def n_trains(run):
    return len(run.train_ids)

@Variable(data="proc")
def frames(run):
    return run["SPB_DET_AGIPD1M-1/CORR/0CH0:output", "image.data"].shape[0] > 0

@Variable()
def has_corr(run):
    return any("CORR" in f.filename for f in run.files)
"""
    pipeline = load(code).with_context(proposal=1234, run_number=3)
    results = pipeline.execute()
    assert results.cells["n_trains"].data == 64 and results.cells["frames"].data
    assert results.cells["start_time"].data == run_start(3)
    raw_only = pipeline.select(run_data="raw").execute()
    assert "frames" not in raw_only.cells
    assert results.cells["has_corr"].data and not raw_only.cells["has_corr"].data


def test_execute_without_proc_data_drops_proc_variables(tmp_path, monkeypatch, caplog):
    proposal = make_proposal(tmp_path, 4321, runs=[1], proc=False)
    monkeypatch.setenv("EXTRA_DATA_DATA_ROOT", str(proposal.root))
    pipeline = load(HEADER + """
@Variable()
def n_trains(run):
    return len(run.train_ids)

@Variable(data="proc")
def corrected(run):
    return 1

@Variable()
def after(run, c: "var#corrected"):
    return c
""").with_context(proposal=4321, run_number=1)
    results = pipeline.execute()
    assert list(results.cells) == ["start_time", "n_trains"] and results.errors == {}
    assert "No proc data for run 1 of proposal 4321: skipping corrected, after" in caplog.text


def test_data_given_to_the_pipeline(run1):
    p = Pipeline(1234, 1, data=run1).add(a)
    assert p.execute().cells["a"].data == 1


def test_dependency_error_tree(run1):
    results = run_code(HEADER + """
@Variable()
def var1(run):
    return 1 / 0

@Variable()
def var2(run, x: "var#var1"):
    return x

@Variable()
def var4(run):
    raise NotImplementedError

@Variable()
def var5(run):
    raise ValueError("first line\\nsecond line")

@Variable()
def var6(run, x: "var#var2", y: "var#var4"):
    return x

@Variable()
def var7(run, x: "var#var6", y: "var#var5"):
    return x
""", run1)
    errors = results.errors
    assert isinstance(errors["var2"], DependencyError)
    assert str(errors["var2"]) == (
        "Skipped due to missing dependency:\n"
        "└ (var1) failed: ZeroDivisionError: division by zero"
    )
    assert str(errors["var6"]) == (
        "Skipped due to missing dependency:\n"
        "├ (var2) skipped\n"
        "│  └ (var1) failed: ZeroDivisionError: division by zero\n"
        "└ (var4) failed: NotImplementedError"
    )
    assert str(errors["var7"]) == (
        "Skipped due to missing dependency:\n"
        "├ (var6) skipped\n"
        "│  ├ (var2) skipped\n"
        "│  │  └ (var1) failed: ZeroDivisionError: division by zero\n"
        "│  └ (var4) failed: NotImplementedError\n"
        "└ (var5) failed: ValueError: first line\n"
        "     second line"
    )
    assert errors["var7"].failed == {"var6": errors["var6"], "var5": errors["var5"]}


def test_dependency_error_under_the_last_branch():
    err = DependencyError({"x": DependencyError({"y": KeyError("k")})})
    assert str(err) == (
        "Skipped due to missing dependency:\n└ (x) skipped\n   └ (y) failed: KeyError: 'k'"
    )


def test_skip_only_dependencies_give_a_skip(run1):
    results = run_code(HEADER + """
@Variable()
def s(run):
    raise Skip("no beam")

@Variable()
def t(run):
    return None

@Variable()
def dep(run, x: "var#s", y: "var#t"):
    return x
""", run1)
    err = results.errors["dep"]
    assert isinstance(err, Skip) and not isinstance(err, DependencyError)
    assert str(err) == "Skipped due to missing dependency:\n└ (s) skipped: no beam"


def test_logging(run1, caplog):
    caplog.set_level(logging.INFO, logger="runtable.context")
    code = HEADER + """
@Variable()
def good(run):
    return 1

@Variable()
def bad(run):
    raise KeyError("x")

@Variable()
def dependent(run, b: "var#bad"):
    return b

@Variable()
def skipped(run):
    raise Skip("why not")
"""
    run_code(code, run1)
    records = {r.getMessage(): r for r in caplog.records if r.name == "runtable.context"}
    [computed] = [m for m in records if m.startswith("Computed good in ")]
    assert computed.endswith(" s") and records[computed].levelno == logging.INFO
    assert records["Could not get data for bad"].levelno == logging.ERROR
    assert records["Could not get data for bad"].exc_info[0] is KeyError
    msg = "Skipping dependent because of missing dependencies: bad"
    assert records[msg].levelno == logging.WARNING
    assert records["Skipped skipped: why not"].levelno == logging.INFO

    caplog.clear()
    load(code).with_context(proposal=1234, run_number=1, name="mylabel").execute(data=run1)
    assert any(r.getMessage().startswith("[mylabel] Computed good in ")
               for r in caplog.records)


def test_repeated_execution_in_one_process(run1, mock_proposal):
    import extra_data

    pipeline = load(HEADER + """
calls = []

@Variable()
def number(run, n: "meta#run_number"):
    calls.append(n)
    return n

@Variable()
def fails_on_two(run, n: "var#number"):
    if n == 2:
        raise ValueError("two")
    return n
""")
    runs = {r: extra_data.RunDirectory(str(mock_proposal.raw_dir(r))) for r in (1, 2, 3)}
    for r in (1, 2, 3, 1):
        results = pipeline.with_context(proposal=1234, run_number=r).execute(data=runs[r])
        assert results.cells["number"].data == r
        assert ("fails_on_two" in results.errors) == (r == 2)
        assert results.cells["start_time"].data == run_start(r)
    assert pipeline._namespace["calls"] == [1, 2, 3, 1]


def test_pipeline_inside_a_variable(run1, caplog):
    caplog.set_level(logging.INFO, logger="runtable.context")
    results = run_code(HEADER + """
@Variable()
def inner(run):
    return 5

@Variable()
def outer(run):
    nested = Pipeline(1234, 1, name="nested").add({"twice": inner})
    return nested.execute(data=run).cells["twice"].data * 2
""", run1)
    assert results.cells["outer"].data == 10
    assert any(r.getMessage().startswith("[nested] Computed twice") for r in caplog.records)


def test_cell_returned_as_is(run1):
    results = Pipeline(1234, 1).add(
        Variable(title="Celled")(lambda_free_cell)).execute(data=run1)
    cell = results.cells["lambda_free_cell"]
    assert cell.bold and np.array_equal(cell.data, [1, 2])


def lambda_free_cell(run):
    return Cell([1, 2], bold=True)


def test_errors_survive_pickling(run1):
    import pickle

    results = run_code(HEADER + """
@Variable()
def s(run):
    raise Skip("no beam")

@Variable()
def f(run):
    raise ValueError("bad")

@Variable()
def dep_s(run, x: "var#s"):
    return x

@Variable()
def dep_f(run, x: "var#f", y: "var#dep_s"):
    return x
""", run1)
    for name in ("dep_s", "dep_f"):
        err = results.errors[name]
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err) and str(again) == str(err)
    problems = ContextFileErrors([Problem("c.py", 3, "bad")])
    again = pickle.loads(pickle.dumps(problems))
    assert again.problems == problems.problems and str(again) == "c.py:3: bad"
