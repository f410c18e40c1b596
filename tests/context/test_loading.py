"""Loading context files: every problem at once, with file and line; no leftovers."""

from __future__ import annotations

import sys

import pytest

from runtable.context import ContextFileErrors, Pipeline
from runtable.context.errors import LOADING

from .conftest import HEADER, load

MANY_PROBLEMS = """\
from runtable.context import Variable, Group

@Variable(units="")
def foo(run, b: "var#bar"):
    return 1

@Variable(title="Same")
def one(run):
    return 1

@Variable(title="Same", tags=[""])
def two(run):
    return 2

@Variable(data="proc")
def corrected(run):
    return 1

@Variable(data="raw")
def strict(run, c: "var#corrected"):
    return c

@Variable()
def loop_a(run, x: "var#loop_b"):
    return x

@Variable()
def loop_b(run, x: "var#loop_a"):
    return x
"""


def test_all_problems_together_with_lines(tmp_path):
    path = tmp_path / "context.py"
    path.write_text(MANY_PROBLEMS)
    with pytest.raises(ContextFileErrors) as info:
        Pipeline.from_context_file(path)
    problems = info.value.problems
    found = {(p.line, p.message) for p in problems}
    assert (3, "variable 'foo': units must be a non-empty string") in found
    assert (4, "Missing dependency: 'bar' for 'foo'") in found  # at foo's def line
    assert (11, "variable 'two': tags must be a non-empty string or an iterable of strings"
            ) in found
    assert (12, "variable 'two': title 'Same' is already used by 'one'") in found
    assert any(line == 20 and "depends on proc data" in m for line, m in found)
    assert any("cyclical dependencies" in m and "loop_a" in m and "loop_b" in m
               for _, m in found)
    assert all(p.path == str(path) for p in problems)
    lines = str(info.value).splitlines()
    assert len(lines) == len(problems)
    assert lines[0] == f"{path}:3: variable 'foo': units must be a non-empty string"
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_syntax_error_with_its_line():
    with pytest.raises(ContextFileErrors) as info:
        load("x = 1\n\ndef f(:\n    pass\n")
    [problem] = info.value.problems
    assert (problem.line, problem.kind) == (3, "SyntaxError")
    assert str(problem).startswith("context.py:3: SyntaxError: ")


@pytest.mark.parametrize(
    ("code", "line", "start"),
    [
        ("x = 1\nundefined_name + 1\n", 2, "NameError: name 'undefined_name'"),
        ("import no_such_module_here_xyz\n", 1, "ModuleNotFoundError: "),
        ("def f():\n    raise ValueError('deep')\n\nf()\n", 2, "ValueError: deep"),
        ("import sys\nsys.exit(3)\n", 2, "SystemExit(3): "),
        ("raise RuntimeError\n", 1, "RuntimeError"),
    ],
)
def test_exception_at_top_level(code, line, start):
    with pytest.raises(ContextFileErrors) as info:
        load(code)
    [problem] = info.value.problems
    assert problem.line == line and problem.message.startswith(start)


def test_decorator_problems_before_an_exception_are_kept():
    with pytest.raises(ContextFileErrors) as info:
        load(HEADER + """
@Variable(units="")
def a(run):
    return 1

1 / 0
""")
    assert [p.line for p in info.value.problems] == [4, 8]


def test_missing_file(tmp_path):
    with pytest.raises(ContextFileErrors, match="cannot read the context file"):
        Pipeline.from_context_file(tmp_path / "nope.py")


def test_failed_load_leaves_no_state(monkeypatch):
    monkeypatch.delitem(sys.modules, "damnit_ctx", raising=False)
    for code in ("from damnit_ctx import Variable\nboom()\n",
                 HEADER + "Pipeline.default().add([1])\n",
                 "import sys\nsys.exit()\n"):
        with pytest.raises(ContextFileErrors):
            load(code)
        assert LOADING.get() is None
        assert "damnit_ctx" not in sys.modules
        assert "runtable_context_file" not in sys.modules
    # The default pipeline of a failed load is not seen by the next one.
    assert list(load(HEADER).vars) == []


def test_successful_load_keeps_the_alias_but_not_the_file_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "damnit_ctx", raising=False)
    load("from damnit_ctx import Variable\n")
    assert "damnit_ctx" in sys.modules
    assert "runtable_context_file" not in sys.modules


def test_default_and_set_default():
    pipeline = load(HEADER + """
@Variable()
def found(run):
    return 1

def hidden(run):
    return 2

Pipeline.default().add({"added": Variable(title="Added")(hidden)})
""")
    assert list(pipeline.vars) == ["found", "added"]
    assert pipeline.name == "default"

    replaced = load(HEADER + """
@Variable()
def found(run):
    return 1

@Variable()
def other(run):
    return 2

Pipeline.set_default(Pipeline(name="mine").add(other))
""")
    assert list(replaced.vars) == ["other"] and replaced.name == "mine"


def test_set_default_needs_a_pipeline():
    with pytest.raises(ContextFileErrors, match="expects a Pipeline instance"):
        load(HEADER + "Pipeline.set_default([1])\n")
    with pytest.raises(TypeError, match="expects a Pipeline instance"):
        Pipeline.set_default("nope")
    with pytest.raises(RuntimeError, match="only be used in a context file"):
        Pipeline.set_default(Pipeline())


def test_default_outside_a_file_is_fresh():
    assert Pipeline.default() is not Pipeline.default()
    assert list(Pipeline.default().vars) == []


def test_nested_loads_do_not_mix():
    inner_code = HEADER + "@Variable()\ndef inner(run):\n    return 1\n"
    pipeline = load(HEADER + f"""
INNER = Pipeline.from_str({inner_code!r}, path="inner.py")

@Variable()
def outer(run):
    return 2
""")
    assert list(pipeline.vars) == ["outer"]
    assert list(pipeline._namespace["INNER"].vars) == ["inner"]


def test_nested_load_error_names_the_inner_file():
    with pytest.raises(ContextFileErrors) as info:
        load(HEADER + "Pipeline.from_str('1 +', path='inner.py')\n")
    [problem] = info.value.problems
    assert problem.line == 3 and "inner.py:1: SyntaxError" in problem.message
