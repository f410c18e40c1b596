"""Helpers for testing against runtable: realistic mock proposals and runs.

>>> from runtable.testing import make_proposal
>>> prop = make_proposal(tmp_path, proposal=1234, runs=[1, 2, 3])  # doctest: +SKIP
"""

from .mock_proposal import MockProposal, add_proc_run, add_raw_run, make_proposal, run_start

__all__ = ["MockProposal", "add_proc_run", "add_raw_run", "make_proposal", "run_start"]
