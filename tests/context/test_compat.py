"""Context files written for the reference system run unchanged; importing is cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import extra_data
import numpy as np

import runtable.context
from runtable.context import Pipeline, Skip

from .conftest import HEADER, load

REFERENCE_STYLE = Path(__file__).parent.parent / "contexts" / "reference_style.py"


def test_reference_style_file_loads_and_executes(data_root):
    pipeline = Pipeline.from_context_file(REFERENCE_STYLE)
    assert pipeline.vars["sample_y.moved"].title == "Sample Y - Moved"
    assert pipeline.vars["big_sum"].data.value == "proc"
    run = extra_data.open_run(1234, 2, data="all")
    results = pipeline.with_context(proposal=1234, run_number=2).execute(data=run)
    cells = results.cells
    assert next(iter(cells)) == "start_time"
    assert cells["n_trains"].data == 64
    assert cells["flux"].units == "uJ" and cells["flux"].summary == "mean"
    assert cells["flux_per_train"].bold is True
    assert cells["flux_per_train"].data == np.float64(cells["flux"].data.sum() / 64)
    assert cells["counts"].data == 64  # var#n_* matches n_trains only, still a dict
    assert cells["run_no"].data == 2
    assert cells["where"].data == str(data_root.path)
    assert cells["threshold"].data == 0.5
    assert cells["background_level"].data == 4
    assert "big" not in cells and cells["big_sum"].data == 10
    assert cells["sample_x.position"].data == 2 and cells["sample_y.position"].data == 3.5
    assert cells["sample_x.moved"].data and cells["sample_x.moved"].units is None
    assert results.errors == {}


def test_reference_style_skip_chain(run1):
    pipeline = Pipeline.from_context_file(REFERENCE_STYLE)
    results = pipeline.with_context(proposal=1234, run_number=1).execute(data=run1)
    assert isinstance(results.errors["background"], Skip)
    # Every failed dependency was skipped, so the dependent is skipped too, not failed.
    assert isinstance(results.errors["background_level"], Skip)
    assert str(results.errors["background_level"]) == (
        "Skipped due to missing dependency:\n└ (background) skipped: run 1 has no background"
    )


def test_damnit_ctx_gives_runtable_contexts_objects():
    pipeline = load("""
        import damnit_ctx
        from damnit_ctx import Variable, Cell, Skip, Group, Pipeline

        @Variable
        def same(run):
            import runtable.context as rc
            return all(getattr(damnit_ctx, n) is getattr(rc, n) for n in rc.__all__)
    """)
    assert sys.modules["damnit_ctx"].Variable is runtable.context.Variable
    assert pipeline.with_context(proposal=1, run_number=1).execute(data=object()).cells[
        "same"].data


def test_runtable_import_paths():
    import runtable

    assert runtable.Variable is runtable.context.Variable
    assert runtable.Pipeline is runtable.context.Pipeline
    for name in ("Variable", "Cell", "Skip", "Group", "Pipeline", "Results", "RunData",
                 "ContextFileErrors", "DependencyError", "GroupError"):
        assert hasattr(runtable.context, name)


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, runtable.context\n"
        "heavy = [m for m in ('matplotlib', 'plotly', 'xarray', 'pandas', 'extra_data')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_loading_and_executing_numbers_only_imports_nothing_heavy(tmp_path):
    context = tmp_path / "context.py"
    context.write_text(HEADER + "@Variable\ndef a(run):\n    return 1\n")
    code = (
        "import sys, time\n"
        "from runtable.context import Pipeline\n"
        f"p = Pipeline.from_context_file({str(context)!r})\n"
        "r = p.with_context(proposal=1, run_number=1).execute(data=object())\n"
        "assert r.cells['a'].data == 1\n"
        "heavy = [m for m in ('matplotlib', 'plotly', 'xarray', 'pandas', 'extra_data')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_load_and_execute_overhead_is_milliseconds(run1):
    import time

    code = HEADER + "".join(
        f"@Variable(title='v{i}')\ndef v{i}(run, x: 'var#v{i - 1}' = 0):\n    return x + 1\n"
        for i in range(50)
    )
    Pipeline.from_str(code)  # warm up
    start = time.perf_counter()
    pipeline = Pipeline.from_str(code).with_context(proposal=1234, run_number=1)
    results = pipeline.execute(data=run1)
    assert time.perf_counter() - start < 0.5
    assert results.cells["v49"].data == 50
