"""Per-run overhead: importing the execute package pulls in no plotting or table library."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("matplotlib", "plotly", "xarray", "pandas", "PIL")


def test_import_is_light():
    code = (
        "import sys, runtable.execute, runtable.execute.__main__\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_numbers_and_images_import_no_plotting_library(tmp_path):
    """2-D thumbnails are drawn with Pillow: matplotlib's import alone costs ~0.7 s."""
    code = f"""
import sys
import numpy as np
from runtable.context.cell import Cell
from runtable.execute import write_fragment

class R:
    cells = {{"start_time": Cell(1.0), "a": Cell(np.arange(10.0)), "s": Cell("x"),
             "image": Cell(np.ones((4, 4)))}}
    errors = {{}}
    provenance = "context.py"

write_fragment(R(), {str(tmp_path)!r}, 1, 1)
print(",".join(m for m in {HEAVY[:-1]!r} if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
