"""`runtable check`: load errors with lines, pyflakes warnings without annotation noise."""

from __future__ import annotations

import textwrap

from runtable.cli import main
from runtable.context.check import check_source, pyflakes_warnings

GOOD = textwrap.dedent('''
    from damnit_ctx import Group, Variable

    @Variable(title="Flux", units="uJ")
    def flux(run, n: "meta#run_number", p: "param#gain" = 1):
        return n * p

    @Variable(title="Double")
    def double(run, f: "var#flux", others: "var#fl*", s: "mymdc#sample_name" = ""):
        return 2 * f

    @Group
    class Motor:
        @Variable(title="Position")
        def position(self, run):
            return 1.0

        @Variable(title="Moved")
        def moved(self, run, pos: "self#position", old: "input#old" = 0):
            return pos > old

    motor = Motor()
''')


def test_annotations_give_no_warnings_and_variables_are_listed():
    report = check_source(GOOD)
    assert report.ok
    assert report.warnings == []
    names = {v["name"] for v in report.variables}
    assert names == {"flux", "double", "motor.position", "motor.moved"}
    assert {v["title"] for v in report.variables} >= {"Flux", "Double", "motor/Moved"}


def test_real_pyflakes_warnings_are_kept_with_their_lines():
    code = GOOD + "import os\n\n@Variable\ndef bad(run):\n    return undefined_thing\n"
    report = check_source(code, "ctx.py")
    assert report.ok  # warnings never block
    messages = [str(w) for w in report.warnings]
    n_lines = GOOD.count("\n")
    assert f"ctx.py:{n_lines + 1}: 'os' imported but unused" in messages
    assert f"ctx.py:{n_lines + 5}: undefined name 'undefined_thing'" in messages


def test_load_errors_are_all_reported_with_lines():
    code = textwrap.dedent('''
        from damnit_ctx import Variable

        @Variable(units="")
        def a(run):
            return 1

        @Variable
        def b(run, x: "var#missing"):
            return x
    ''')
    report = check_source(code, "ctx.py")
    assert not report.ok
    assert report.variables == []
    lines = sorted(p.line for p in report.errors)
    # The bad argument is on the decorator line, the bad annotation on the def line.
    assert lines == [4, 9], [str(p) for p in report.errors]
    assert all(str(p).startswith("ctx.py:") for p in report.errors)


def test_syntax_error_reported_once_with_line():
    report = check_source("x = 1\ndef f(:\n", "ctx.py")
    assert [p.line for p in report.errors] == [2]
    assert pyflakes_warnings("def f(:\n") == []


def test_cli_exit_status_and_output(tmp_path, capsys):
    good = tmp_path / "context.py"
    good.write_text(GOOD)
    assert main(["check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "OK, 4 variables" in out and "motor.moved" in out

    bad = tmp_path / "bad.py"
    bad.write_text("from damnit_ctx import Variable\n\n@Variable(title=[1])\ndef a(run):\n"
                   "    return 1\n")
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.py:3" in out and "1 error" in out

    assert main(["check", str(tmp_path / "nope.py")]) == 2
    assert "Cannot read" in capsys.readouterr().out


NESTED = textwrap.dedent('''
    from runtable.context import Variable

    @Variable(title="Answer")
    def answer(run):
        return 42

        @Variable(title="Lost")
        def lost(run):
            return 1

    def helper(values):
        for v in values:
            if v:
                continue
                print(v)
        raise ValueError("none")
''')


def test_a_variable_inside_a_function_and_code_after_return_are_warned_about():
    report = check_source(NESTED)
    assert report.ok  # it loads: that is why it needs a warning
    assert [v["name"] for v in report.variables] == ["answer"]
    # Both at the decorator's line (the file starts with an empty line).
    (line, unreachable), (_, nested), (loop, after_continue) = (
        (w.line, w.message) for w in report.warnings)
    assert line == 8 and unreachable.startswith(
        "unreachable code: this line comes after the `return` on line 6")
    assert "'lost' is inside the function 'answer', so it is not a column" in nested
    assert loop == 16 and "after the `continue` on line 15" in after_continue


def test_group_methods_and_module_level_variables_are_not_warned_about():
    assert check_source(GOOD).warnings == []
