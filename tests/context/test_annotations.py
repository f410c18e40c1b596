"""Arguments bound from annotations: var#, meta#, param#/input#, mymdc#."""

from __future__ import annotations

import sys
import types

import pytest

from runtable.context import ContextFileErrors, DependencyError, set_metadata_provider
from runtable.context.metadata import ENV_VAR

from .conftest import HEADER, load, run_code

VARS = HEADER + """
@Variable()
def base_a(run):
    return 1

@Variable()
def base_b(run):
    return 2

@Variable()
def bar(run):
    return 10

@Variable()
def broken(run):
    raise ValueError("nope")
"""


def test_var_exact_name_gives_the_value(run1):
    results = run_code(VARS + """
@Variable()
def total(run, a: "var#base_a", b: "var#base_b"):
    return a + b
""", run1)
    assert results.cells["total"].data == 3


def test_var_glob_gives_a_dict_of_successful_matches(run1):
    results = run_code(VARS + """
@Variable()
def both(run, d: "var#base_*"):
    return sorted(d.items())

@Variable()
def single(run, d: "var#b?r"):
    return list(d)

@Variable()
def with_failure(run, d: "var#b[aer]*"):
    return sorted(d)
""", run1)
    assert results.cells["both"].data.tolist() == [["base_a", "1"], ["base_b", "2"]]
    assert results.cells["single"].data.tolist() == ["bar"]  # one match, still a dict
    assert results.cells["with_failure"].data.tolist() == ["bar", "base_a", "base_b"]


def test_python_default_used_when_a_dependency_is_missing(run1):
    results = run_code(VARS + """
@Variable()
def fallback(run, x: "var#broken" = -1):
    return x

@Variable()
def not_in_file(run, x: "var#nowhere" = 7):
    return x

@Variable()
def glob_none(run, d: "var#broke*" = None):
    return d is None
""", run1)
    assert results.cells["fallback"].data == -1
    assert results.cells["not_in_file"].data == 7
    assert results.cells["glob_none"].data
    assert set(results.errors) == {"broken"}


def test_glob_with_only_failures_and_no_default_is_a_dependency_error(run1):
    results = run_code(VARS + """
@Variable()
def needs(run, d: "var#broke*"):
    return d
""", run1)
    assert isinstance(results.errors["needs"], DependencyError)


def test_meta(run1, mock_proposal):
    results = run_code(HEADER + """
@Variable()
def m(run, r: "meta#run_number", p: "meta#proposal", path: "meta#proposal_path"):
    return f"{p}/{r}/{path}"
""", run1, run_number=1)
    assert results.cells["m"].data == f"1234/1/{mock_proposal.path}"


def test_meta_proposal_path_is_empty_without_a_data_collection():
    results = run_code(HEADER + """
@Variable()
def m(run, path: "meta#proposal_path"):
    return repr(path)
""", data={"not": "a run"})
    assert results.cells["m"].data == "''"


def test_unknown_meta_and_prefix_are_that_variables_error(run1):
    results = run_code(HEADER + """
@Variable()
def a(run, x: "meta#colour"):
    return x

@Variable()
def b(run, x: "foo#bar"):
    return x

@Variable()
def fine(run):
    return 1
""", run1)
    assert isinstance(results.errors["a"], RuntimeError)
    assert "Unknown path 'meta#colour'" in str(results.errors["a"])
    assert "Unknown path 'foo#bar'" in str(results.errors["b"])
    assert results.cells["fine"].data == 1


@pytest.mark.parametrize("prefix", ["param", "input"])
def test_param_values(run1, prefix):
    code = HEADER + f"""
@Variable()
def scaled(run, thr: "{prefix}#threshold", k: "{prefix}#factor" = 2):
    return thr * k
"""
    pipeline = load(code).with_context(proposal=1234, run_number=1,
                                       param_values={"threshold": 3})
    assert pipeline.execute(data=run1).cells["scaled"].data == 6
    # execute(param_values=...) adds to / overrides the pipeline's values
    results = pipeline.execute(data=run1, param_values={"factor": 10})
    assert results.cells["scaled"].data == 30


def test_missing_param_skips_silently(run1, caplog):
    results = run_code(HEADER + """
@Variable()
def scaled(run, thr: "param#threshold"):
    return thr
""", run1)
    assert "scaled" not in results.cells and "scaled" not in results.errors
    assert "Skipping scaled because of missing parameters: threshold" in caplog.text


def test_non_string_annotations_are_ignored(run1):
    results = run_code(HEADER + """
@Variable()
def f(run, x: int = 4, y: "just a note" = 5):
    return x + y
""", run1)
    assert results.cells["f"].data == 9


def test_future_annotations_in_a_context_file(run1):
    results = run_code("from __future__ import annotations\n" + VARS + """
@Variable()
def g(run, a: "var#base_a", n: int = 1):
    return a + n
""", run1)
    assert results.cells["g"].data == 2


MYMDC = HEADER + """
@Variable()
def sample(run, name: "mymdc#sample_name", kind: "mymdc#run_type"):
    return f"{name} ({kind})"

@Variable()
def techniques(run, t: "mymdc#techniques"):
    return t[0]["name"]

@Variable()
def uses_sample(run, s: "var#sample"):
    return s.upper()

@Variable()
def independent(run):
    return 1
"""


def _fake_provider(calls):
    values = {"sample_name": "Cu foil", "run_type": "Calibration",
              "techniques": [{"name": "SFX", "id": 1}]}

    def provider(proposal, run, field):
        calls.append((proposal, run, field))
        return values[field]

    return provider


def test_mymdc_through_set_metadata_provider(run1):
    calls = []
    set_metadata_provider(_fake_provider(calls))
    try:
        results = run_code(MYMDC, run1, run_number=1)
    finally:
        set_metadata_provider(None)
    assert results.cells["sample"].data == "Cu foil (Calibration)"
    assert results.cells["techniques"].data == "SFX"
    assert results.cells["uses_sample"].data == "CU FOIL (CALIBRATION)"
    assert sorted(calls) == [(1234, 1, "run_type"), (1234, 1, "sample_name"),
                             (1234, 1, "techniques")]  # each field fetched once


def test_mymdc_through_the_environment(run1, monkeypatch):
    calls = []
    module = types.ModuleType("fake_mdc_for_tests")
    module.provide = _fake_provider(calls)
    monkeypatch.setitem(sys.modules, "fake_mdc_for_tests", module)
    monkeypatch.setenv(ENV_VAR, "fake_mdc_for_tests:provide")
    results = run_code(MYMDC, run1)
    assert results.cells["sample"].data == "Cu foil (Calibration)"


def test_mymdc_without_a_provider(run1, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "extra_proposal", None)  # not importable
    results = run_code(MYMDC, run1)
    err = results.errors["sample"]
    assert str(err).startswith("mymdc#sample_name needs a metadata provider: ")
    assert ENV_VAR in str(err) and "set_metadata_provider" in str(err)
    assert isinstance(results.errors["uses_sample"], DependencyError)
    assert "(sample) failed: MetadataUnavailable: mymdc#sample_name" in str(
        results.errors["uses_sample"])
    assert results.cells["independent"].data == 1
    assert set(results.errors) == {"sample", "techniques", "uses_sample"}


def test_bad_provider_spec_in_environment(run1, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "no_such_module_xyz:f")
    results = run_code(MYMDC, run1)
    assert "no_such_module_xyz" in str(results.errors["sample"])


def test_unknown_mymdc_field_is_a_load_error():
    with pytest.raises(ContextFileErrors) as info:
        load(HEADER + """
@Variable()
def f(run, x: "mymdc#colour"):
    return x
""")
    [problem] = info.value.problems
    assert problem.line == 5  # the def line
    assert "unknown field 'mymdc#colour'" in problem.message


def test_self_outside_a_group_is_a_load_error():
    with pytest.raises(ContextFileErrors, match="'self#x' can only be used in a Group"):
        load(HEADER + """
@Variable()
def f(run, x: "self#x"):
    return x
""")
