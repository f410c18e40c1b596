"""The local executor's limits, the queue's persistence, pausing on a broken context."""

from __future__ import annotations

import time

from runtable.jobs import JobState
from runtable.selection import Selection
from runtable.store import open_db

from .conftest import PROPOSAL, TRIVIAL, wait_for, write_context


def _error(folder, name, run=1):
    with open_db(folder) as db:
        db.merge_pending()
        return db.get_value(PROPOSAL, run, name), db.get_attributes(PROPOSAL, run, name)


def test_memory_limit_kills_the_job_with_a_clear_error(make_queue, folder):
    write_context(folder, '''
        import time
        import numpy as np
        from runtable.context import Variable

        @Variable(title="Hog")
        def hog(run):
            chunks = []
            for _ in range(16):  # 800 MiB, touched so it is resident
                chunks.append(np.ones(50 * 2**20 // 8))
            time.sleep(30)  # held, however fast the allocation was
            return 1
    ''')
    queue = make_queue(noncluster_mem="300M")
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=60)
    assert job.state is JobState.FAILED
    assert "more than the limit of 300M" in job.message
    value, attrs = _error(folder, "hog")
    assert value is None
    assert attrs["error_cls"] == "MemoryLimitExceeded"
    assert "300M" in attrs["error"]


def test_time_limit(make_queue, folder):
    write_context(folder, '''
        import subprocess, time
        from runtable.context import Variable

        @Variable(title="Slow")
        def slow(run):
            # A grandchild too: the whole process group must go.
            subprocess.Popen(["sleep", "60"])
            time.sleep(60)
    ''')
    queue = make_queue(job_time_limit_s=1.5)
    start = time.monotonic()
    [job] = queue.submit(PROPOSAL, 1)
    # Killed long before its 60 s sleep ends, however slowly the warm parent starts on
    # a loaded machine.
    [job] = queue.wait([job.id], timeout=55)
    assert time.monotonic() - start < 55
    assert job.state is JobState.FAILED
    assert "time limit" in job.message
    _, attrs = _error(folder, "slow")
    assert attrs["error_cls"] == "TimeLimitExceeded"


def test_cpu_limit_is_visible_in_the_job(make_queue, folder):
    write_context(folder, '''
        import os
        from runtable.context import Variable

        @Variable(title="CPUs")
        def cpus(run):
            return len(os.sched_getaffinity(0))

        @Variable(title="OMP")
        def omp(run):
            return int(os.environ["OMP_NUM_THREADS"])
    ''')
    queue = make_queue(noncluster_cpus=1)
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=30)
    assert job.state is JobState.DONE, job.message
    with open_db(folder) as db:
        db.merge_pending()
        assert db.get_value(PROPOSAL, 1, "cpus") == 1
        assert db.get_value(PROPOSAL, 1, "omp") == 1


def test_concurrency_limit(make_queue, folder):
    write_context(folder, '''
        import time
        from runtable.context import Variable

        @Variable(title="Nap")
        def nap(run):
            time.sleep(0.6)
            return 1
    ''')
    queue = make_queue(concurrent_jobs=2)
    running_counts = []
    queue.subscribe(lambda e: running_counts.append(len(queue.jobs([JobState.RUNNING]))))
    jobs = [j for run in (1, 2, 3, 1, 2) for j in queue.submit(PROPOSAL, run)]
    done = queue.wait([j.id for j in jobs], timeout=60)
    assert all(j.state is JobState.DONE for j in done), [j.message for j in done]
    assert max(running_counts) == 2
    # Two at a time, five jobs of 0.6 s: at least three rounds.
    starts = sorted(j.started_at for j in done)
    assert starts[2] - starts[0] > 0.5


def test_cancel_queued(make_queue, folder):
    queue = make_queue()
    [job] = queue.submit(PROPOSAL, 2)
    assert queue.cancel(job.id)  # before any step: still queued
    job = queue.get(job.id)
    assert job.state is JobState.CANCELLED and job.started_at is None
    _, attrs = _error(folder, "answer", run=2)
    assert attrs == {"error": "Cancelled before it started", "error_cls": "Cancelled"}


def test_broken_context_pauses_and_resumes_when_fixed(make_queue, folder):
    queue = make_queue()
    reasons = []
    queue.subscribe_paused(reasons.append)
    write_context(folder, TRIVIAL + "\ndef broken(:\n")
    queue.step()  # reported even before anything is queued
    assert queue.paused_reason is not None
    [job] = queue.submit(PROPOSAL, 1)
    queue.step()
    assert "context.py:" in queue.paused_reason and "SyntaxError" in queue.paused_reason
    time.sleep(0.2)
    queue.step()
    assert queue.get(job.id).state is JobState.QUEUED
    write_context(folder, TRIVIAL.replace("return 42", "return 43"))
    [job] = queue.wait([job.id], timeout=30)
    assert queue.paused_reason is None
    assert len(reasons) == 2 and "SyntaxError" in reasons[0] and reasons[1] is None
    assert job.state is JobState.DONE, job.message
    with open_db(folder) as db:
        db.merge_pending()
        assert db.get_value(PROPOSAL, 1, "answer") == 43


def test_context_changes_are_seen_by_the_next_job(make_queue, folder):
    queue = make_queue()
    queue.start()
    for value in (1, 2, 3):
        write_context(folder, TRIVIAL.replace("return 42", f"return {value}"))
        [job] = queue.submit(PROPOSAL, 3)
        [job] = queue.wait([job.id], timeout=30)
        assert job.state is JobState.DONE
        with open_db(folder) as db:
            db.merge_pending()
            assert db.get_value(PROPOSAL, 3, "answer") == value


def test_queue_survives_a_restart(make_queue, folder):
    queue = make_queue()
    queued = queue.submit(PROPOSAL, 1) + queue.submit(PROPOSAL, 2, Selection("raw", ("answer",)))
    queue.close()  # never stepped: nothing ran

    again = make_queue()
    jobs = again.jobs()
    assert [(j.run, j.variables, j.state) for j in jobs] == [
        (1, (), JobState.QUEUED), (2, ("answer",), JobState.QUEUED)]
    done = again.wait([j.id for j in queued], timeout=30)
    assert all(j.state is JobState.DONE for j in done)


def test_running_local_job_is_failed_after_a_restart(make_queue, folder):
    write_context(folder, '''
        import time
        from runtable.context import Variable

        @Variable(title="Slow")
        def slow(run):
            print("started sleeping", flush=True)
            time.sleep(60)
    ''')
    queue = make_queue()
    [job] = queue.submit(PROPOSAL, 1)
    log = folder / "process_logs" / f"r1-p{PROPOSAL}.out"
    # The pid arrives with the job's start, which a loaded machine may report after
    # the job has printed.
    wait_for(lambda: queue.step() is not None and log.exists()
             and "started sleeping" in log.read_text() and queue.get(job.id).external_id,
             what="job to start")
    pid = int(queue.get(job.id).external_id)
    # What a killed service leaves behind: the row still says "running". (close()
    # kills the warm parent's children; their end is never recorded.)
    queue._collecting = None
    queue.executors["local"].notify = None
    queue.executors["local"].poll = lambda: []  # type: ignore[method-assign]
    queue.close()
    assert queue.store.path.exists()

    again = make_queue()
    job = again.get(job.id)
    assert job.state is JobState.FAILED
    assert "restarted" in job.message
    _, attrs = _error(folder, "slow")
    assert attrs["error_cls"] == "ServiceRestarted"
    wait_for(lambda: not _alive(pid), timeout=10, what="old job process to be gone")


def test_worker_survives_sys_exit_and_keeps_going(make_queue, folder):
    write_context(folder, '''
        import sys
        from runtable.context import Variable

        @Variable(title="Quit")
        def quit(run):
            sys.exit(5)

        @Variable(title="Answer")
        def answer(run):
            return 42
    ''')
    queue = make_queue()
    [a] = queue.submit(PROPOSAL, 1)
    [b] = queue.submit(PROPOSAL, 2)
    done = queue.wait([a.id, b.id], timeout=30)
    assert [j.state for j in done] == [JobState.DONE, JobState.DONE]
    pids = {j.external_id for j in done}
    assert len(pids) == 2  # a fresh process per job


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_killed_worker_pool_fails_its_jobs_and_restarts(make_queue, folder):
    import os
    import signal

    write_context(folder, '''
        import time
        from runtable.context import Variable

        @Variable(title="Slow")
        def slow(run):
            print("started sleeping", flush=True)
            time.sleep(60)
    ''')
    queue = make_queue()
    [job] = queue.submit(PROPOSAL, 1)
    log = folder / "process_logs" / f"r1-p{PROPOSAL}.out"
    wait_for(lambda: queue.step() is not None and log.exists()
             and "started sleeping" in log.read_text(), what="job to start")
    child = int(queue.get(job.id).external_id)
    os.kill(queue.executors["local"]._proc.pid, signal.SIGKILL)
    [job] = queue.wait([job.id], timeout=20)
    assert job.state is JobState.FAILED
    assert "worker pool stopped unexpectedly" in job.message
    wait_for(lambda: not _alive(child), timeout=10, what="the orphaned job to die")
    _, attrs = _error(folder, "slow")
    assert attrs["error_cls"] == "ProcessingCrashed"

    write_context(folder, TRIVIAL)
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=30)
    assert job.state is JobState.DONE, job.message


def test_run_that_cannot_be_opened(make_queue, folder):
    queue = make_queue()
    [job] = queue.submit(PROPOSAL, 99)
    [job] = queue.wait([job.id], timeout=30)
    assert job.state is JobState.FAILED
    assert "Could not open the run" in job.message
    _, attrs = _error(folder, "answer", run=99)
    assert "Could not open the run" in attrs["error"]


def test_relative_folder_path(folder, monkeypatch):
    from runtable.jobs import JobQueue, LocalExecutor

    monkeypatch.chdir(folder.parent)
    with JobQueue(folder.name, executors={"local": LocalExecutor()},
                  settings={"noncluster_cpus": 1}) as queue:
        [job] = queue.submit(PROPOSAL, 1)
        [job] = queue.wait([job.id], timeout=30)
    assert job.state is JobState.DONE, job.message
    assert job.fragment.startswith(str(folder))
