"""Context files written for the reference during real beamtimes load unchanged.

Helper modules kept beside ``context.py``, ``from damnit.context import ...``, group
names inside methods, names checked when the pipeline is built, and the reference's
exception types for code that catches them.
"""

from __future__ import annotations

import graphlib
import pickle
import sys
import textwrap

import pytest

from runtable.context import ContextFileErrors, GroupError, Pipeline, Skip, Variable

from .conftest import load

HELPER = """\
import numpy as np

class VISAR:
    def __init__(self, run):
        self.run = run

    def n_trains(self):
        return len(self.run.train_ids)
"""

USES_HELPER = """\
from damnit_ctx import Variable
from visar import VISAR

@Variable(title="VISAR trains")
def visar_trains(run):
    return VISAR(run).n_trains()

@Variable(title="Lazy helper")
def lazy(run):
    import analysis_helpers  # imported only when the variable runs
    return analysis_helpers.double(3)
"""


def _folder(tmp_path, context=USES_HELPER):
    (tmp_path / "visar.py").write_text(HELPER)
    (tmp_path / "analysis_helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "context.py").write_text(context)
    return tmp_path / "context.py"


@pytest.fixture
def fresh_modules():
    """Helper modules imported by a test are forgotten afterwards."""
    before = set(sys.modules)
    path = list(sys.path)
    yield
    for name in set(sys.modules) - before:
        if name in ("visar", "analysis_helpers") or name.startswith("damnit"):
            del sys.modules[name]
    sys.path[:] = path


def test_a_helper_module_beside_the_context_file_is_imported(tmp_path, run1, fresh_modules):
    path = _folder(tmp_path)
    pipeline = Pipeline.from_context_file(path)
    results = pipeline.with_context(proposal=1234, run_number=1).execute(data=run1)
    assert results.errors == {}
    assert results.cells["visar_trains"].data == 64
    assert results.cells["lazy"].data == 6
    # The folder is first on sys.path only while the file loads and runs.
    assert str(tmp_path) not in sys.path


def test_the_context_files_folder_comes_before_installed_modules(tmp_path, fresh_modules):
    # A helper named like an installed module is the one beside the context file.
    (tmp_path / "rich.py").write_text("WHERE = 'beside the context file'\n")
    (tmp_path / "context.py").write_text(
        "from damnit_ctx import Variable\nimport rich\n\n"
        "@Variable\ndef where(run):\n    return rich.WHERE\n")
    saved = sys.modules.pop("rich", None)
    try:
        pipeline = Pipeline.from_context_file(tmp_path / "context.py")
        cells = pipeline.with_context(proposal=1, run_number=1).execute(data=object()).cells
        assert cells["where"].data == "beside the context file"
    finally:
        sys.modules.pop("rich", None)
        if saved is not None:
            sys.modules["rich"] = saved


def test_a_missing_module_says_where_runtable_looked(tmp_path, fresh_modules):
    (tmp_path / "context.py").write_text("from damnit_ctx import Variable\nimport visarr\n")
    with pytest.raises(ContextFileErrors) as info:
        Pipeline.from_context_file(tmp_path / "context.py")
    message = str(info.value)
    assert "No module named 'visarr'" in message
    assert f"looked in the context file's folder {tmp_path}" in message
    assert sys.executable in message or sys.prefix in message
    assert isinstance(info.value, ModuleNotFoundError)


def test_a_missing_module_at_run_time_says_where_runtable_looked(tmp_path, fresh_modules):
    (tmp_path / "context.py").write_text(
        "from damnit_ctx import Variable\n\n"
        "@Variable\ndef late(run):\n    import not_here_at_all\n    return 1\n")
    pipeline = Pipeline.from_context_file(tmp_path / "context.py")
    error = pipeline.with_context(proposal=1, run_number=1).execute(data=object()).errors["late"]
    assert isinstance(error, ModuleNotFoundError)
    assert "No module named 'not_here_at_all'" in str(error)
    assert f"looked in the context file's folder {tmp_path}" in str(error)


@pytest.mark.parametrize("statement", [
    "from damnit.context import Cell, Variable, Skip, Group, Pipeline",
    "import damnit.context\nVariable = damnit.context.Variable",
    "from damnit_ctx import Cell, Variable",
])
def test_reference_import_names_give_runtables_classes(statement, fresh_modules):
    pipeline = load(statement + """

@Variable(title="Answer")
def answer(run):
    return 42
""")
    assert isinstance(pipeline.vars["answer"], Variable)
    cells = pipeline.with_context(proposal=1, run_number=1).execute(data=object()).cells
    assert cells["answer"].data == 42


@pytest.mark.parametrize("module", ["damnit.context", "damnit_ctx"])
def test_a_missing_name_is_reported_as_missing_from_the_module_imported(module, fresh_modules):
    with pytest.raises(ContextFileErrors) as info:
        load(f"from {module} import Variable, NoSuchThing\n")
    assert f"cannot import name 'NoSuchThing' from '{module}'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_skip_from_the_reference_module_is_runtables_skip(fresh_modules):
    pipeline = load("""
from damnit.context import Variable, Skip

@Variable
def skipped(run):
    raise Skip("no sample")
""")
    errors = pipeline.with_context(proposal=1, run_number=1).execute(data=object()).errors
    assert isinstance(errors["skipped"], Skip)


GROUPS = """
from damnit_ctx import Group, Variable

@Group
class Detector:
    @Variable(title="Name")
    def name_seen(self, run):
        return f"{self.name}|{self.title}"

@Group
class Stage:
    det: Detector = None

    @Variable(title="val")
    def val(self, run):
        return 1

outer = Stage(det=Detector())
titled = Detector(title="Titled det")
"""


def test_inside_group_methods_name_and_title_are_the_assigned_ones():
    pipeline = load(GROUPS)
    cells = pipeline.with_context(proposal=1, run_number=1).execute(data=object()).cells
    assert cells["outer.det.name_seen"].data == "outer.det|outer/det"
    assert cells["titled.name_seen"].data == "titled|Titled det"


def test_a_nested_groups_titles_join_the_path_with_the_separator():
    pipeline = load(GROUPS)
    assert pipeline.vars["outer.det.name_seen"].title == "outer/det/Name"
    assert pipeline.vars["outer.val"].title == "outer/val"


def test_a_name_set_after_decoration_is_checked_when_the_pipeline_is_built():
    @Variable
    def var(run):
        return 1

    var.name = "var.1.name"
    with pytest.raises(ContextFileErrors) as info:
        Pipeline(1, 1).add(var)
    assert "var.1.name" in str(info.value) and "identifier" in str(info.value)


def test_a_missing_dependency_is_also_a_key_error():
    with pytest.raises(KeyError) as info:
        load("""
from damnit_ctx import Variable

@Variable
def foo(run, b: "var#bar"):
    return b
""")
    assert isinstance(info.value, ContextFileErrors)
    # str() is the problem list, not KeyError's quoted repr.
    assert str(info.value) == "context.py:5: Missing dependency: 'bar' for 'foo'"


def test_a_cycle_is_also_a_cycle_error():
    with pytest.raises(graphlib.CycleError):
        load("""
from damnit_ctx import Variable

@Variable
def a(run, x: "var#b"):
    return x

@Variable
def b(run, x: "var#a"):
    return x
""")


def test_a_group_problem_is_also_a_group_error_and_a_missing_attribute_an_attribute_error():
    with pytest.raises(GroupError):
        load("""
from damnit_ctx import Group, Variable

@Group
class G:
    @Variable
    def v(self, run, x: "self#nothing"):
        return x

g = G()
""")
    with pytest.raises(AttributeError):
        load("""
from damnit_ctx import Group, Variable

@Group
class G:
    @Variable
    def v(self, run, x: "self#nothing.v"):
        return x

g = G()
""")


def test_the_context_files_own_exception_is_the_type_raised():
    class BeamtimeError(Exception):
        pass

    with pytest.raises(ValueError):
        load("raise ValueError('bad calibration constant')\n")
    code = textwrap.dedent("""
        class BeamtimeError(Exception):
            pass
        raise BeamtimeError("no beam")
    """)
    with pytest.raises(ContextFileErrors) as info:
        load(code)
    assert type(info.value).__mro__[2].__name__ == "BeamtimeError"


def test_several_kinds_of_problem_stay_one_context_file_errors():
    with pytest.raises(ContextFileErrors) as info:
        load("""
from damnit_ctx import Variable

@Variable(units="")
def foo(run, b: "var#bar"):
    return b
""")
    assert len(info.value.problems) == 2
    assert not isinstance(info.value, KeyError)


def test_typed_errors_survive_pickling():
    with pytest.raises(KeyError) as info:
        load("""
from damnit_ctx import Variable

@Variable
def foo(run, b: "var#bar"):
    return b
""")
    copy = pickle.loads(pickle.dumps(info.value))
    assert isinstance(copy, KeyError) and isinstance(copy, ContextFileErrors)
    assert copy.problems == info.value.problems


def test_skip_is_still_exported_for_context_files():
    assert issubclass(Skip, Exception)


# -- with the reference's own package installed beside runtable ------------------------

BOTH_SCRIPT = """
import sys
from runtable.context import ContextFileErrors, Pipeline

pipeline = Pipeline.from_context_file(sys.argv[1])
results = pipeline.with_context(proposal=1, run_number=1).execute(data=object())
print(sorted(results.cells), sorted((k, type(v).__name__) for k, v in results.errors.items()))
print(results.cells["api"].data)
try:
    Pipeline.from_str("from damnit.context import Variable, ContextFile, Nope\\n")
except ContextFileErrors as exc:
    print(exc)
"""

BOTH_CONTEXT = """
from damnit.context import Cell, Variable
from damnit_ctx import Skip

@Variable(title="Answer")
def answer(run):
    return Cell(42)

@Variable(title="Skipped")
def skipped(run):
    raise Skip("not today")

@Variable(title="API")
def api(run):
    from damnit import Damnit  # the reference's own read API stays usable
    return Damnit.__module__
"""


def test_reference_imports_work_with_the_reference_package_installed(python_with_damnit,
                                                                      tmp_path):
    import subprocess

    (tmp_path / "context.py").write_text(BOTH_CONTEXT)
    (tmp_path / "check.py").write_text(BOTH_SCRIPT)
    proc = subprocess.run([str(python_with_damnit), str(tmp_path / "check.py"),
                           str(tmp_path / "context.py")], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cells, api, missing = proc.stdout.strip().splitlines()[-3:]
    assert cells == "['answer', 'api', 'start_time'] [('skipped', 'Skip')]"
    assert api == "damnit.api"
    assert "cannot import name 'ContextFile' from 'damnit.context'" in missing
