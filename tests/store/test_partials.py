"""Fragments still being written when their job died (``*.writing.h5`` and journals)
are removed at the next start once no job can still be writing them."""

from __future__ import annotations

import os
import time

from runtable.store import create_folder

from .conftest import PROPOSAL


def test_partial_fragments_of_long_dead_jobs_are_removed_at_start(tmp_path):
    with create_folder(tmp_path, PROPOSAL) as db:
        old = db.extracted_dir / f"p{PROPOSAL}_r1.aaaa.writing.h5"
        journal = db.extracted_dir / f"p{PROPOSAL}_r1.aaaa.writing.h5.done"
        young = db.extracted_dir / f"p{PROPOSAL}_r2.bbbb.writing.h5"
        for path in (old, journal, young):
            path.write_bytes(b"partial")
        hours_ago = time.time() - 3 * 3600
        for path in (old, journal):
            os.utime(path, (hours_ago, hours_ago))
        db.merge_pending(max_job_s=3600)
        # Older than the longest job plus a margin: dead. Younger: maybe a live Slurm job.
        assert not old.exists() and not journal.exists()
        assert young.exists()
        db.merge_pending()  # without a job time limit, nothing is judged stale
        assert young.exists()
