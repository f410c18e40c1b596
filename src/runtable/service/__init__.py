"""The per-experiment service: new runs in, results out, live.

:class:`Service` wires the parts together for one database folder and implements
the web server's :class:`~runtable.server.control.Service` protocol:

* the :class:`~runtable.sources.RunWatcher` on the proposal folder: a new run folder
  becomes a row (``run_added``), a complete one becomes a job (raw data -> the raw
  variables, proc data -> the proc variables); :meth:`Service.notify` is the explicit
  "this run is complete" signal;
* the :class:`~runtable.jobs.JobQueue`: every state change is published
  (``job_state``), and each finished job's fragment (results, or the error a crashed,
  killed or cancelled job leaves) is merged;
* one *writer thread*, the only code of the process that writes the database folder:
  rows, merges (``values_merged``), the ``variables`` table (``variables_changed``);
* processing control for the web GUI: :meth:`Service.reprocess`, :meth:`Service.cancel`,
  :meth:`Service.jobs`, :meth:`Service.delete_variable`, :meth:`Service.add_runs`;
* a monitor thread that loads the context file in a child process whenever it changes
  (``context_status``; a file that does not load pauses new jobs) and retries what
  could not be done yet (finding the proposal folder, failed merges).

On start it catches up: fragments left unmerged are merged, runs on disk that were
never processed are queued, and jobs queued before a restart run. See
``docs/service.md`` for users and ``docs/architecture.md`` for the design.

Headless (tests, benchmarks, scripts)::

    from runtable.events import EventBus
    from runtable.service import Service

    service = Service(db_dir)
    service.start(EventBus())     # or: with Service(db_dir) as service: ...
    service.notify(5, "raw")
    service.wait_idle()
    service.stop()

Importing this package does not import the web framework, ``extra_data`` or
``watchdog``.
"""

from .core import Service, ServiceError

__all__ = ["Service", "ServiceError"]
