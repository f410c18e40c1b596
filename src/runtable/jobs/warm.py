"""``python -m runtable.jobs.warm``: the warm parent of the local executor.

Started once in the context's interpreter (``context_python``), it imports the
heavy libraries (numpy, h5py, extra_data, runtable's execute package) and then
forks a fresh child for every job, so each job starts with everything imported
but shares no state with the job before it. The parent never loads the context
file: each child loads it anew, so an edit is seen by the next job.

Protocol: JSON lines. Requests on stdin::

    {"op": "run", "id": 7, "db_dir": "...", "proposal": 1234, "run": 5, "data": "raw",
     "variables": [], "match": [], "cluster": null, "context_file": null,
     "cpus": 4, "mem_bytes": 26843545600, "time_s": 7200, "env": {}, "threads": null,
     "partial": "<db>/extracted_data/p1234_r5.<random>.writing.h5"}
    {"op": "cancel", "id": 7}

Events on stdout: ``{"event": "ready", "pid": P, "import_s": T}``,
``{"event": "started", "id": 7, "pid": P, "cpus": [0, 1]}``,
``{"event": "progress", "id": 7, "variable": ..., "done": ..., "total": ..., "step": ...,
"steps": ..., "variable_s": ...}`` (a few a second at most while the job computes, see
:mod:`runtable.context.tracking`) and
``{"event": "finished", "id": 7, "returncode": R, "outcome": "<RunOutcome JSON>"|null,
"killed": null|"Cancelled"|"TimeLimitExceeded"|"MemoryLimitExceeded"|"ServiceRestarted",
"message": ...}``.

Limits, enforced per job: CPUs with ``sched_setaffinity`` (the least-used CPUs of
the parent's set; also ``OMP_NUM_THREADS`` & co., ``threads`` if given, for libraries
that start thread pools later); memory by a watchdog summing the resident memory of
the child's whole process group every 0.1 s (RSS is what a user means by memory, and
RLIMIT_AS counts address space that numpy and thread stacks reserve but never
touch); wall time by a deadline. A child that breaks a limit, or is cancelled, is killed with its
whole process group. End of stdin ends the parent and all its children.

With ``--fork-first`` (a Slurm task's warm parent) pandas, xarray and plotly are
imported only once the first child is forked, while it runs.

The other side of the protocol: :class:`runtable.jobs.warm_client.WarmProcess`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import signal
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

#: Imported once by the warm parent. Besides the obvious ones: what loading a context
#: and opening a run with extra_data import lazily (measured with a trivial context).
BASE = ("numpy", "numpy.ma", "h5py", "extra_data", "runtable.context",
        "runtable.context.loader", "runtable.execute",
        "runtable.execute.fragment", "runtable.execute.summary",
        "runtable.execute.thumbnails", "concurrent.futures.process", "loky",
        "multiprocessing.connection", "uuid", "runpy", "pwd")
#: Imported by the first .xarray() or figure of a job: about 1 s each time when not
#: preloaded (most context files use them), and about 1.5 s to preload.
LATER = ("pandas", "xarray", "plotly.graph_objects")
PRELOAD = BASE + LATER
WATCH_INTERVAL_S = 0.1
#: How a child's progress lines start on its pipe (its outcome line starts with ``{"``).
_PROGRESS = b"progress "
_PAGE = os.sysconf("SC_PAGE_SIZE")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_MAX_THREADS")


@dataclass
class _Child:
    job_id: int
    pid: int
    rfd: int
    cpus: list[int]
    deadline: float
    mem_bytes: int | None
    buf: bytearray = field(default_factory=bytearray)
    killed: str | None = None
    message: str | None = None


class WarmParent:
    """The fork server's state and loop (single-threaded, so forking is safe)."""

    def __init__(self, out: Any, later: tuple[str, ...] = ()) -> None:
        self.out = out
        #: Imported right after the first fork, while that child runs.
        self.later = later
        self.children: dict[int, _Child] = {}  # by pid
        self.cpu_use = dict.fromkeys(sorted(os.sched_getaffinity(0)), 0)
        self.sel = selectors.DefaultSelector()
        self.stdin_buf = bytearray()
        self._last_scan = 0.0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        # SIGCHLD writes a byte to the wake pipe, so select() returns when a child ends.
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.sel.register(0, selectors.EVENT_READ, "stdin")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")

    def emit(self, **event: Any) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    # -- loop ----------------------------------------------------------------------------

    def serve(self) -> None:
        while True:
            timeout = None
            live = [c for c in self.children.values() if c.killed is None]
            if live:
                now = time.monotonic()
                timeout = max(0.0, min(c.deadline for c in live) - now)
                if any(c.mem_bytes for c in live):
                    timeout = min(timeout, WATCH_INTERVAL_S)
            for key, _ in self.sel.select(timeout):
                if key.data == "stdin":
                    if not self._read_stdin():
                        self._shutdown()
                        return
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                else:
                    self._read_child(key.data)
            self._reap()
            self._enforce_limits()

    def _read_stdin(self) -> bool:
        chunk = os.read(0, 65536)
        if not chunk:
            return False
        self.stdin_buf += chunk
        while b"\n" in self.stdin_buf:
            line, _, rest = self.stdin_buf.partition(b"\n")
            self.stdin_buf = bytearray(rest)
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError:
                print(f"runtable.jobs.warm: ignoring bad request {line[:200]!r}",
                      file=sys.stderr)
                continue
            self._handle(request)
        return True

    def _handle(self, req: dict[str, Any]) -> None:
        if req["op"] == "run":
            self._start(req)
        elif req["op"] == "cancel":
            for child in self.children.values():
                if child.job_id == req["id"]:
                    self._kill(child, "Cancelled", "Cancelled while running")

    # -- children ------------------------------------------------------------------------

    def _pick_cpus(self, n: int) -> list[int]:
        n = max(1, min(n, len(self.cpu_use)))
        chosen = sorted(self.cpu_use, key=lambda c: (self.cpu_use[c], c))[:n]
        for c in chosen:
            self.cpu_use[c] += 1
        return sorted(chosen)

    def _start(self, req: dict[str, Any]) -> None:
        cpus = self._pick_cpus(int(req.get("cpus") or 1))
        parent_pid = os.getpid()
        try:
            rfd, wfd = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                os.close(rfd)
                os.close(wfd)
                raise
        except OSError as exc:  # out of processes or memory: this job fails, we go on
            for c in cpus:
                self.cpu_use[c] -= 1
            self.emit(event="finished", id=req["id"], pid=None, returncode=None,
                      outcome=None, killed="ProcessingCrashed",
                      message=f"Could not start a process for the job: {exc}")
            return
        if pid == 0:  # child: never returns
            os.close(rfd)
            _child_main(req, cpus, wfd, parent_pid)
        os.close(wfd)
        os.set_blocking(rfd, False)
        time_s = req.get("time_s")
        child = _Child(
            job_id=req["id"], pid=pid, rfd=rfd, cpus=cpus,
            deadline=time.monotonic() + (float(time_s) if time_s else 1e12),
            mem_bytes=req.get("mem_bytes"),
        )
        self.children[pid] = child
        self.sel.register(rfd, selectors.EVENT_READ, child)
        self.emit(event="started", id=child.job_id, pid=pid, cpus=cpus)
        if self.later:
            # The first child imports what it needs itself; the next ones find it here.
            later, self.later = self.later, ()
            _preload(later)

    def _read_child(self, child: _Child) -> None:
        try:
            chunk = os.read(child.rfd, 65536)
        except BlockingIOError:
            return
        if chunk:
            child.buf += chunk
            self._forward_progress(child)
        else:
            self._close_pipe(child)

    def _forward_progress(self, child: _Child) -> None:
        # The child's pipe carries progress lines while it runs, then its outcome line.
        while child.buf.startswith(_PROGRESS) and b"\n" in child.buf:
            line, _, rest = child.buf.partition(b"\n")
            child.buf = bytearray(rest)
            with contextlib.suppress(ValueError, TypeError):
                self.emit(event="progress", id=child.job_id,
                          **json.loads(line[len(_PROGRESS):]))

    def _close_pipe(self, child: _Child) -> None:
        if child.rfd >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(child.rfd)
            os.close(child.rfd)
            child.rfd = -1

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self._finish(child, os.waitstatus_to_exitcode(status))

    def _finish(self, child: _Child, returncode: int) -> None:
        # Whatever the job started in its process group goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        if child.rfd >= 0:
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(child.rfd, 65536):
                    child.buf += chunk
            self._close_pipe(child)
        self._forward_progress(child)
        for c in child.cpus:
            self.cpu_use[c] -= 1
        text = child.buf.decode("utf-8", "replace").strip()
        outcome = text if text.startswith("{") and child.killed is None else None
        self.emit(event="finished", id=child.job_id, pid=child.pid, returncode=returncode,
                  outcome=outcome, killed=child.killed, message=child.message)

    def _kill(self, child: _Child, reason: str, message: str) -> None:
        if child.killed is None:
            child.killed, child.message = reason, message
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)

    def _enforce_limits(self) -> None:
        if not self.children:
            return
        now = time.monotonic()
        rss: dict[int, int] = {}
        # Scanning /proc is the expensive part: at most once per interval, however
        # many events wake the loop.
        if (now - self._last_scan >= WATCH_INTERVAL_S * 0.9
                and any(c.mem_bytes for c in self.children.values())):
            rss = _rss_by_group()
            self._last_scan = now
        for child in list(self.children.values()):
            if child.killed:
                continue
            if now >= child.deadline:
                self._kill(child, "TimeLimitExceeded", "Processing exceeded the time limit; "
                           "killed")
            elif child.mem_bytes and rss.get(child.pid, 0) > child.mem_bytes:
                self._kill(child, "MemoryLimitExceeded",
                           f"Processing used {_fmt(rss[child.pid])} of memory, more than the "
                           f"limit of {_fmt(child.mem_bytes)}; killed")

    def _shutdown(self) -> None:
        for child in list(self.children.values()):
            self._kill(child, "ServiceRestarted", "The local worker pool was stopped while "
                       "the job was running")
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.01)


def _fmt(n: int) -> str:
    for unit, size in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n}B"


def _rss_by_group() -> dict[int, int]:
    """Resident bytes per process group, from /proc (Linux)."""
    totals: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        # After "(comm)": state ppid pgrp ... rss is the 24th field overall.
        pgrp, rss = int(fields[2]), int(fields[21])
        totals[pgrp] = totals.get(pgrp, 0) + rss * _PAGE
    return totals


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when the warm parent dies (Linux), so a
    killed pool leaves no job running unseen."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child_main(req: dict[str, Any], cpus: list[int], wfd: int, parent_pid: int) -> None:
    code = 1
    try:
        os.setsid()  # own process group: cancel/limits kill everything the job starts
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the parent ignores it
        _die_with_parent(parent_pid)
        from runtable.execute.runner import execute_run, log_path_for
        from runtable.selection import Selection
        from runtable.sharing import FILE_MODE, shared_dir, shared_file

        db_dir = os.path.abspath(req["db_dir"])  # before the chdir below
        log_path = log_path_for(db_dir, req["proposal"], req["run"])
        shared_dir(log_path.parent)
        # fds 0-2 away from the parent's protocol pipes: output of C code and of
        # programs the job starts goes to the run's log.
        null = os.open(os.devnull, os.O_RDONLY)
        logfd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
        shared_file(log_path)
        os.dup2(null, 0)
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.closerange(3, wfd)
        os.closerange(wfd + 1, 65536)
        sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
        os.sched_setaffinity(0, cpus)
        for var in _THREAD_VARS:
            os.environ[var] = str(req.get("threads") or len(cpus))
        os.environ.update(req.get("env") or {})
        os.chdir(db_dir)
        outcome = execute_run(
            db_dir, req["proposal"], req["run"], selection=Selection.from_fields(req),
            context_file=req.get("context_file"),
            partial=req.get("partial"), on_progress=partial(_write_line, wfd, _PROGRESS),
        )
        _write_all(wfd, (outcome.to_json() + "\n").encode())
        code = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(code)


def _write_line(fd: int, prefix: bytes, payload: dict[str, Any]) -> None:
    # One write of less than PIPE_BUF bytes: never interleaved with another line.
    _write_all(fd, prefix + json.dumps(payload).encode() + b"\n")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _preload(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            __import__(name)
        except ImportError as exc:
            print(f"runtable.jobs.warm: could not preload {name}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the warm parent on stdin/stdout (see the module docstring).

    ``--fork-first``: import :data:`LATER` only once the first job is forked, so that
    it starts about 1.5 s earlier (a Slurm task, which starts a warm parent for every
    batch, wants its first run going; the local pool starts once and imports all).
    """
    args = sys.argv[1:] if argv is None else argv
    fork_first = "--fork-first" in args
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # stray prints (and import-time chatter) must not corrupt the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when we stop
    start = time.perf_counter()
    _preload(BASE if fork_first else PRELOAD)
    parent = WarmParent(out, later=LATER if fork_first else ())
    parent.emit(event="ready", pid=os.getpid(), import_s=round(time.perf_counter() - start, 3))
    try:
        parent.serve()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
