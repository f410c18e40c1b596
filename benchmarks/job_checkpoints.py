"""What saving each variable as it finishes costs a job (so that a job that dies keeps
what it computed): `execute_run` in this process on one mock run, for a context of N
small variables (default 200) and for the 5-variable reference context. Prints the
median time per run and per variable.

    ./dev bench job_checkpoints [--variables N] [--repeat R]

Run it also on the code before the change (with PYTHONPATH pointing at its src/) to
get the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def many_variables(n: int) -> str:
    lines = ["from damnit_ctx import Variable", "import numpy as np", ""]
    for i in range(n):
        lines += [f"@Variable(title='V{i}')", f"def v{i}(run):",
                  f"    return np.arange({i % 7 + 1}) * {i}" if i % 2 else f"    return {i}",
                  ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variables", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from execute_one_run import CONTEXT

    from runtable.execute import execute_run
    from runtable.selection import Selection
    from runtable.testing import make_proposal

    print(f"load average: {Path('/proc/loadavg').read_text().split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        prop = make_proposal(Path(tmp, "data"), 1234, runs=[1], proc=False,
                             camera_shape=(256, 256))
        os.environ["EXTRA_DATA_DATA_ROOT"] = str(prop.root)
        for label, text, n in ((f"{args.variables} small variables",
                                many_variables(args.variables), args.variables),
                               ("5-variable reference context", CONTEXT, 5)):
            db_dir = Path(tmp, f"db{n}")
            db_dir.mkdir()
            (db_dir / "context.py").write_text(text)
            times = []
            for _ in range(args.repeat + 1):
                t0 = time.perf_counter()
                outcome = execute_run(db_dir, 1234, 1, selection=Selection("raw"))
                times.append(time.perf_counter() - t0)
                assert outcome.failure is None and not outcome.errors, outcome
                outcome.fragment.unlink()
            median = statistics.median(times[1:])  # the first warms imports
            print(f"{label:30s} median {median * 1000:8.1f} ms per run, "
                  f"{median / n * 1000:6.2f} ms per variable (of {args.repeat})")


if __name__ == "__main__":
    main()
