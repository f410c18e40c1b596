"""A running job reports which variable it computes and how far it is: from the warm
local pool, from a real Slurm's workers and from ``runtable reprocess``; a context file
adds finer steps with ``progress`` (also as ``damnit_ctx.progress``)."""

from __future__ import annotations

import time

from runtable.context import Pipeline, progress, set_progress
from runtable.context.tracking import ProgressReporter, reporting
from runtable.jobs import JobState, Progress
from runtable.reprocess import Reporter, reprocess

from .conftest import PROPOSAL, write_context

PROGRESSES = '''
import time
from {module} import Variable, progress

@Variable(title="Quick")
def quick(run):
    return 1

@Variable(title="Slow")
def slow(run):
    total = 0
    for i in progress(range(40)):
        time.sleep(0.05)
        total += i
    return total

@Variable(title="Last")
def last(run, slow: "var#slow"):
    return slow
'''


def _check_reports(reports: list[Progress]) -> None:
    """Reports of one job of PROGRESSES: in order, the slow variable's steps rising."""
    assert reports and all(p.total == 3 for p in reports)
    slow = [p for p in reports if p.variable == "slow"]
    assert slow and all(p.done == 1 and p.steps == 40 for p in slow)
    steps = [p.step for p in slow]
    assert steps == sorted(steps) and len(set(steps)) >= 2
    order = [(p.done, p.variable != "") for p in reports]
    assert order == sorted(order)
    assert reports[-1].variable == "" and reports[-1].done == 3  # all done
    # Coalesced: ~2 s of looping sends a handful of reports, not one per step.
    assert len(reports) < 20


def test_a_running_job_reports_its_variable_and_count_in_order(make_queue, folder, backend):
    write_context(folder, PROGRESSES.format(module="runtable.context"))
    queue = make_queue(backend)
    seen: list[object] = []
    queue.subscribe(lambda e: seen.append(e.state))
    queue.subscribe_progress(lambda job, p: seen.append(p))
    [job] = queue.submit(PROPOSAL, 1)
    [job] = queue.wait([job.id], timeout=120)
    assert job.state is JobState.DONE, job.message
    reports = [p for p in seen if isinstance(p, Progress)]
    assert {p.job_id for p in reports} == {job.id}
    _check_reports(reports)
    # Told between the job's start and its end, never outside.
    first = seen.index(reports[0])
    assert JobState.RUNNING in seen[:first]
    assert seen.index(JobState.DONE) > seen.index(reports[-1])
    assert queue.progress(job.id) is None  # forgotten once the job ended


class _Recorder(Reporter):
    def __init__(self) -> None:
        self.reports: list[tuple[int, Progress]] = []

    def progress(self, run: int, progress: Progress) -> None:
        self.reports.append((run, progress))


def test_reprocess_reports_progress_of_each_run_under_the_references_names(folder):
    write_context(folder, PROGRESSES.format(module="damnit_ctx"))
    recorder = _Recorder()
    [outcome] = reprocess(folder, [1], reporter=recorder)
    assert outcome.failure is None and not outcome.errors, outcome
    assert {run for run, _ in recorder.reports} == {1}
    _check_reports([p for _, p in recorder.reports])


def test_progress_outside_a_job_is_a_no_op(folder):
    """A notebook's ``Pipeline.execute``: no reporter, the items pass through."""
    write_context(folder, PROGRESSES.format(module="runtable.context"))
    pipeline = Pipeline.from_context_file(folder / "context.py")
    results = pipeline.with_context(proposal=PROPOSAL, run_number=1).execute()
    assert results.cells["slow"].data == sum(range(40))
    assert results.cells["last"].data == sum(range(40))
    set_progress(3, 10)  # nothing happens, nothing fails
    assert list(progress(iter("abc"))) == ["a", "b", "c"]


def test_a_reporter_sends_only_changes_and_survives_a_broken_sink():
    sent: list[dict] = []
    with reporting(sent.append, total=2, interval=0.05) as reporter:
        assert isinstance(reporter, ProgressReporter)
        time.sleep(0.2)  # nothing changed: no new snapshot
        assert len(sent) == 1
    calls = []

    def broken(snapshot: dict) -> None:
        calls.append(snapshot)
        raise BrokenPipeError

    with reporting(broken, total=1, interval=0.01) as reporter:
        reporter.variable_started("a", 0)
        time.sleep(0.1)
        reporter.set_step(5, 10)
        time.sleep(0.1)
    assert len(calls) == 1  # never called again after it failed


def test_progress_text_reads_like_a_sentence():
    assert Progress(1, "agipd_mean", 2, 14, variable_s=41.2).text() == "agipd_mean, 3 of 14, 41 s"
    assert Progress(1, "x", 0, 2, 1200, 10000).text() == "x, 1 of 2, 0 s (1200 of 10000)"
    assert Progress(1, "", 14, 14).text() == "14 of 14 done"
