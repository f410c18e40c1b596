"""@Variable: decorator forms, option validation, and what execution makes of results."""

from __future__ import annotations

import numpy as np
import pytest

from runtable.context import ContextFileErrors, Pipeline, RunData, Skip, Variable

from .conftest import HEADER, run_code


def test_bare_decorator():
    @Variable
    def n_trains(run):
        """Number of trains."""
        return 3

    assert isinstance(n_trains, Variable)
    assert (n_trains.name, n_trains.title) == ("n_trains", "n_trains")
    assert n_trains.description == "Number of trains."
    assert n_trains.data is RunData.RAW and n_trains.explicit_data is None
    assert n_trains.tags == () and not n_trains.cluster and not n_trains.transient
    assert n_trains(None) == 3  # a decorated variable can still be called directly


def test_empty_call_and_positional_title():
    @Variable()
    def a(run):
        return 1

    @Variable("Title A", description="explicit", summary="mean", data="proc",
              cluster=True, tags="x", transient=True, units="mm")
    def b(run):
        """ignored docstring"""

    assert a.title == "a" and a.description is None
    assert b.title == "Title A" and b.description == "explicit"
    assert b.summary == "mean" and b.data is RunData.PROC and b.data == "proc"
    assert b.cluster and b.transient and b.units == "mm"
    assert b.tags == ("x",)


def test_tags_iterable():
    @Variable(tags=["a", "b"])
    def v(run):
        pass

    assert v.tags == ("a", "b")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"units": ""}, "units must be a non-empty string"),
        ({"units": 3}, "units must be a non-empty string"),
        ({"tags": ""}, "tags must be a non-empty string or an iterable of strings"),
        ({"tags": ["ok", 1]}, "tags must be a non-empty string or an iterable of strings"),
        ({"tags": 5}, "tags must be a non-empty string or an iterable of strings"),
        ({"data": "calibrated"}, "data must be 'raw' or 'proc', not 'calibrated'"),
        ({"title": ""}, "title must be a non-empty string"),
        ({"title": 3}, "title must be a non-empty string"),
        ({"description": 3}, "description must be a string"),
        ({"summary": "meen"}, "summary must name a numpy function"),
        ({"summary": 3}, "summary must name a numpy function"),
        ({"cluster": "yes"}, "cluster must be True or False"),
        ({"transient": 1}, "transient must be True or False"),
    ],
)
def test_invalid_options_outside_a_context_file(options, message):
    with pytest.raises(ContextFileErrors) as info:

        @Variable(**options)
        def foo(run):
            pass

    [problem] = info.value.problems
    assert problem.message == f"variable 'foo': {message}" or message in problem.message
    assert problem.path == __file__ and problem.line


def test_invalid_name():
    with pytest.raises(ContextFileErrors, match="must be a Python identifier"):
        Variable()(lambda run: 1)


def test_decorating_something_else_is_a_type_error():
    with pytest.raises(TypeError, match="must decorate a function"):
        Variable(title="x")(1)


def test_cell_defaults_from_the_decorator(run1):
    results = run_code("import xarray as xr\n" + HEADER + """
@Variable(summary="max", units="mm")
def plain(run):
    return [1, 2, 3]

@Variable(summary="max", units="mm")
def own(run):
    return Cell(np.arange(3), summary="min", units="µm")

@Variable()
def from_attrs(run):
    return xr.DataArray([1.0, 2.0], dims="x", attrs={"units": "eV"})

@Variable(units="keV")
def decorator_wins(run):
    return xr.DataArray([1.0, 2.0], dims="x", attrs={"units": "eV"})
""", run1)
    cells = results.cells
    assert isinstance(cells["plain"].data, np.ndarray)
    assert (cells["plain"].summary, cells["plain"].units) == ("max", "mm")
    assert (cells["own"].summary, cells["own"].units) == ("min", "µm")
    assert cells["from_attrs"].units == "eV"
    assert cells["decorator_wins"].units == "keV"


def test_none_result_is_kept_but_not_given_to_dependents(run1):
    results = run_code(HEADER + """
@Variable()
def nothing(run):
    return None

@Variable()
def dependent(run, x: "var#nothing"):
    return 1
""", run1)
    assert results.cells["nothing"].data is None
    err = results.errors["dependent"]
    assert isinstance(err, Skip)
    assert str(err) == "Dependencies returned no data:\n- 'nothing'"


def test_unstorable_result_is_that_variables_error(run1):
    results = run_code(HEADER + """
@Variable()
def bad(run):
    return object()

@Variable()
def good(run):
    return 1
""", run1)
    assert list(results.cells) == ["start_time", "good"]
    assert isinstance(results.errors["bad"], TypeError)
    assert "cannot be saved" in str(results.errors["bad"])


def test_transient_values_reach_dependents_but_are_never_cells(run1):
    results = run_code(HEADER + """
@Variable(transient=True)
def pair(run):
    return [np.ones(2), run]          # any object: not checked

@Variable()
def total(run, pair: "var#pair"):
    return pair[0].sum()

@Variable(transient=True)
def broken(run):
    raise ValueError("hidden")

@Variable()
def after_broken(run, b: "var#broken"):
    return 1
""", run1)
    assert "pair" not in results.cells and results.cells["total"].data == 2
    assert "broken" not in results.errors  # used for the chain, then removed
    assert "(broken) failed: ValueError: hidden" in str(results.errors["after_broken"])


def test_skip_is_recorded_not_failed(run1, caplog):
    caplog.set_level("INFO", logger="runtable.context")
    results = run_code(HEADER + """
@Variable()
def maybe(run):
    raise Skip("not today")
""", run1)
    assert isinstance(results.errors["maybe"], Skip)
    assert "Skipped maybe: not today" in caplog.text
    assert "Could not get data" not in caplog.text


def test_pipeline_add_rejects_undecorated_variable():
    with pytest.raises(TypeError, match="decorates no function"):
        Pipeline().add(Variable(title="x"))
