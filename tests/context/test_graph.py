"""Dependency order, promotion of data/cluster, and selecting variables."""

from __future__ import annotations

import pytest

from runtable.context import ContextFileErrors, RunData

from .conftest import HEADER, load

ORDERED = HEADER + """
@Variable()
def var1(run):
    return 1

@Variable()
def var2(run, a: "var#var1"):
    return a + 1

@Variable()
def var3(run):
    return 3

@Variable()
def var4(run, b: "var#var2", c: "var#var3"):
    return b + c

@Variable()
def var5(run):
    return 5
"""


def test_independent_variables_keep_definition_order_then_dependents():
    assert list(load(ORDERED).vars) == ["var1", "var3", "var5", "var2", "var4"]


def test_execution_follows_the_order(run1, caplog):
    caplog.set_level("INFO", logger="runtable.context")
    pipeline = load(ORDERED).with_context(proposal=1234, run_number=1)
    results = pipeline.execute(data=run1)
    assert list(results.cells) == ["start_time", "var1", "var3", "var5", "var2", "var4"]
    assert results.cells["var4"].data == 5
    computed = [r.getMessage().split()[1] for r in caplog.records
                if r.getMessage().startswith("Computed")]
    assert computed == ["var1", "var3", "var5", "var2", "var4"]


def test_cycle_is_reported_with_its_names():
    with pytest.raises(ContextFileErrors) as info:
        load(HEADER + """
@Variable()
def a(run, x: "var#c"):
    return x

@Variable()
def b(run, x: "var#a"):
    return x

@Variable()
def c(run, x: "var#b"):
    return x

@Variable()
def fine(run):
    return 1
""")
    [problem] = info.value.problems
    assert problem.kind == "CycleError"
    assert "cyclical dependencies" in problem.message
    for name in "abc":
        assert f"{name} -> " in problem.message or problem.message.endswith(name)


PROMOTION = HEADER + """
@Variable(data="proc")
def corrected(run):
    return 1

@Variable()
def uses_proc(run, x: "var#corrected"):
    return x

@Variable()
def uses_uses_proc(run, x: "var#uses_proc"):
    return x

@Variable(cluster=True)
def heavy(run):
    return 2

@Variable()
def after_heavy(run, x: "var#heavy"):
    return x

@Variable()
def plain(run):
    return 3

@Variable(title="Plain twice")
def plain2(run, x: "var#plain"):
    return x
"""


def test_proc_and_cluster_promotion():
    vars_ = load(PROMOTION).vars
    assert vars_["uses_proc"].data is RunData.PROC
    assert vars_["uses_uses_proc"].data is RunData.PROC
    assert vars_["after_heavy"].cluster and not vars_["plain2"].cluster
    assert vars_["plain"].data is RunData.RAW


def test_promotion_does_not_change_the_users_variables():
    pipeline = load(PROMOTION)
    namespace = pipeline._namespace
    assert namespace["uses_proc"].data is RunData.RAW  # the object in the file
    assert pipeline.vars["uses_proc"] is not namespace["uses_proc"]


def test_raw_variable_depending_on_proc_is_an_error():
    with pytest.raises(ContextFileErrors) as info:
        load(HEADER + """
@Variable(data="proc")
def corrected(run):
    return 1

@Variable(data="raw")
def strict(run, x: "var#corrected"):
    return x
""")
    [problem] = info.value.problems
    assert problem.line == 9
    assert "'strict' has data='raw' but depends on proc data: corrected" in problem.message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"run_data": "raw"}, ["heavy", "plain", "after_heavy", "plain2"]),
        ({"run_data": RunData.PROC}, ["corrected", "uses_proc", "uses_uses_proc"]),
        ({"run_data": "all"}, ["corrected", "heavy", "plain", "uses_proc", "after_heavy",
                               "plain2", "uses_uses_proc"]),
        ({"cluster": True}, ["heavy", "after_heavy"]),
        ({"cluster": False}, ["corrected", "plain", "uses_proc", "plain2",
                              "uses_uses_proc"]),
        ({"run_data": "raw", "cluster": False}, ["plain", "plain2"]),
        ({"variables": ["uses_uses_proc"]}, ["corrected", "uses_proc", "uses_uses_proc"]),
        ({"variables": "plain"}, ["plain"]),
        ({"match": ["TWICE"]}, ["plain", "plain2"]),
        ({"match": ["twice"], "variables": ["heavy"]}, ["heavy"]),  # names override match
    ],
)
def test_select(kwargs, expected):
    selected = load(PROMOTION).select(**kwargs)
    assert sorted(selected.vars) == sorted(expected)


def test_select_keeps_dependencies_of_a_proc_trigger(run1):
    # A proc trigger recomputes the raw variables that proc variables need.
    pipeline = load(HEADER + """
@Variable()
def raw_part(run):
    return 1

@Variable(data="proc")
def proc_part(run, x: "var#raw_part"):
    return x + 1
""")
    selected = pipeline.select(run_data="proc")
    assert list(selected.vars) == ["raw_part", "proc_part"]
    results = selected.with_context(proposal=1234, run_number=1).execute(data=run1)
    assert results.cells["proc_part"].data == 2


def test_select_unknown_name():
    with pytest.raises(KeyError, match="nothere"):
        load(PROMOTION).select(variables=["nothere"])
