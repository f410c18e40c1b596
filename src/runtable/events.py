"""The event bus: what changed, from the service's threads to every open browser.

The watcher, the job queue and the merger run in threads; WebSocket clients are
coroutines on the server's event loop. :class:`EventBus` joins them:

* :meth:`EventBus.publish` may be called from any thread (or from the event loop). It
  never waits for a client: it numbers the event, encodes it to JSON once, and appends
  that text to each subscriber's queue under short locks.
* :meth:`EventBus.subscribe` gives one client a :class:`Subscription` with a bounded
  queue. A client that falls more than ``max_queue`` events behind is *dropped*: its
  next :meth:`Subscription.next_batch` raises :class:`SubscriberTooSlow`, the WebSocket
  is closed (:data:`runtable.server.app.CLOSE_TOO_SLOW`), and the client reconnects and
  re-fetches.
  Dropping (rather than coalescing) keeps the bus simple and exact: a client either
  saw every event in order or knows that it has to re-read the table.

Every event carries ``seq``, numbered from 1 without gaps for the life of the bus, and
``kind``. A client that sees a gap in ``seq`` (or a different :attr:`EventBus.id` after
reconnecting, i.e. a restarted service) re-fetches what it shows.

This module depends only on the standard library, so the parts that publish (watcher,
jobs, store wiring, the service) can import it without loading the web framework. It
sits below both :mod:`runtable.service` (which publishes) and :mod:`runtable.server`
(which streams to browsers); only the WebSocket itself lives in the server.

Event kinds (the wire form is ``{"seq": n, "kind": ..., **fields}``):

=====================  =============================================================
``run_added``          ``proposal, run`` -- a new row
``values_merged``      ``proposal, run, names`` -- these cells of that row changed
``variables_changed``  ``names`` -- columns added, removed, retitled
``job_state``          ``job_id, proposal, run, state, message``
``job_progress``       ``job_id, proposal, run, variable, done, total, step, steps,
                       variable_s`` -- a running job computes ``variable`` after
                       ``done`` of ``total``; ``step`` of ``steps`` inside it (``steps``
                       null: not reported); a few a second per job at most
``job_stuck``          ``job_id, proposal, run, stuck, last_activity`` -- a running job
                       printed nothing and reported no progress since
                       ``last_activity`` for ``stuck_after_s`` (``stuck`` true), or
                       did again (false)
``comment_set``        ``proposal, run, text``
``user_value_set``     ``proposal, run, name, value``
``context_status``     ``ok, problems`` -- does the context file load?
``context_saved``      ``version, history_id`` -- saved from the GUI's editor
``time_comment``       ``action, id, timestamp, text`` -- a standalone comment was
                       ``added``, ``edited`` or ``deleted`` (then only ``id``)
=====================  =============================================================
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

#: Default bound of a client's queue: far more than a burst of merges produces in the
#: time a healthy browser needs to read it, small enough to cap memory per client.
DEFAULT_MAX_QUEUE = 10_000


class SubscriberTooSlow(Exception):
    """A subscription's queue overflowed; its client must reconnect and re-fetch."""


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Event:
    """Base of the typed events; :meth:`to_dict` is the wire form without ``seq``."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., **fields}``, ready for JSON."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class RunAdded(Event):
    """A run was registered: a new row."""

    kind: ClassVar[str] = "run_added"
    proposal: int
    run: int


@dataclass(frozen=True, slots=True)
class ValuesMerged(Event):
    """A fragment was merged: the cells ``names`` of one run changed."""

    kind: ClassVar[str] = "values_merged"
    proposal: int
    run: int
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VariablesChanged(Event):
    """Columns were added, removed or had their title/description/tags changed."""

    kind: ClassVar[str] = "variables_changed"
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JobStateChanged(Event):
    """A job moved to ``state`` (queued, running, done, failed, cancelled)."""

    kind: ClassVar[str] = "job_state"
    job_id: str
    proposal: int
    run: int
    state: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class JobProgress(Event):
    """A running job reports how far it is (see :mod:`runtable.context.tracking`):
    computing ``variable`` (``""``: between variables) after ``done`` of ``total``
    finished, ``step`` of ``steps`` inside it, for ``variable_s`` seconds so far.

    The wire form of the queue's :class:`runtable.jobs.Progress`, kept apart from it
    on purpose: events name jobs by text and carry the row (``proposal``, ``run``) a
    browser updates, while the queue's record keys on the job's number and keeps when
    it was reported (``at``) for the possibly-stuck check."""

    kind: ClassVar[str] = "job_progress"
    job_id: str
    proposal: int
    run: int
    variable: str
    done: int
    total: int
    step: int = 0
    steps: int | None = None
    variable_s: float = 0.0


@dataclass(frozen=True, slots=True)
class JobStuck(Event):
    """A running job is possibly stuck (``stuck``): nothing in its log and no progress
    since ``last_activity`` (epoch seconds) for the ``stuck_after_s`` setting; or it
    showed signs of life again (``stuck`` false)."""

    kind: ClassVar[str] = "job_stuck"
    job_id: str
    proposal: int
    run: int
    stuck: bool
    last_activity: float


@dataclass(frozen=True, slots=True)
class CommentSet(Event):
    """A run's comment was set (``text`` may be empty: the comment was cleared)."""

    kind: ClassVar[str] = "comment_set"
    proposal: int
    run: int
    text: str


@dataclass(frozen=True, slots=True)
class UserValueSet(Event):
    """A person edited a user-editable cell; ``value`` as stored (None: cleared)."""

    kind: ClassVar[str] = "user_value_set"
    proposal: int
    run: int
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class ContextStatus(Event):
    """Whether the context file loads; ``problems`` are readable one-line messages."""

    kind: ClassVar[str] = "context_status"
    ok: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TimeCommentChanged(Event):
    """A standalone time-stamped comment was added, edited or deleted.

    ``timestamp`` (epoch seconds) and ``text`` are as stored; None after a deletion.
    """

    kind: ClassVar[str] = "time_comment"
    action: str
    id: int
    timestamp: float | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ContextSaved(Event):
    """The context file was saved through the server (``version`` is its new version,
    ``history_id`` its entry in the saved history); the service's reload follows."""

    kind: ClassVar[str] = "context_saved"
    version: str
    history_id: str


#: The typed events by wire kind.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (RunAdded, ValuesMerged, VariablesChanged, JobStateChanged, JobProgress,
                JobStuck, CommentSet,
                UserValueSet, ContextStatus, ContextSaved, TimeCommentChanged)
}


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays (values read back from HDF5) and enums of other parts.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "value") and isinstance(value.value, str | int | float):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode_event(event: Event | Mapping[str, Any]) -> str:
    """The event as compact JSON text (without ``seq``): ``{"kind": ..., ...}``.

    Raises ``TypeError``/``ValueError`` for a payload JSON cannot carry (NaN included:
    browsers' ``JSON.parse`` rejects it), in the publisher's thread, where the bug is.
    """
    if isinstance(event, Event):
        payload = event.to_dict()
    else:
        payload = dict(event)
        if not isinstance(payload.get("kind"), str) or not payload["kind"]:
            raise ValueError(f"an event needs a non-empty 'kind': {payload!r}")
        if "seq" in payload:
            raise ValueError("'seq' is assigned by the bus, not by the publisher")
    return json.dumps(payload, separators=(",", ":"), allow_nan=False,
                      default=_json_default)


# -- subscriptions -----------------------------------------------------------------------
@dataclass(eq=False)
class Subscription:
    """One client's view of the bus: a bounded queue of encoded events.

    Created by :meth:`EventBus.subscribe` in the client's event loop; read it with
    :meth:`next_batch` from that loop only. Use as a context manager, or call
    :meth:`close`, so the bus forgets it.
    """

    bus: EventBus
    max_queue: int
    #: ``seq`` of the last event published before this subscription started: the next
    #: event it receives has ``start_seq + 1``.
    start_seq: int
    _loop: asyncio.AbstractEventLoop
    _items: deque[str] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _overflow: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    closed: bool = False

    def _offer(self, text: str) -> bool:
        """Queue ``text`` (any thread, with the bus lock held); False: forget me."""
        with self._lock:
            if self.closed:
                return False
            if self.overflowed:
                return True
            if len(self._items) >= self.max_queue:
                # Free the memory now; the client is told at its next read.
                self.overflowed = True
                self._items.clear()
                wake = True
            else:
                self._items.append(text)
                # Only the first item after the reader drained needs a wake-up: the
                # reader takes everything queued at once (see next_batch).
                wake = len(self._items) == 1
        if wake:
            try:
                self._loop.call_soon_threadsafe(self._wakeup.set)
                if self.overflowed:
                    self._loop.call_soon_threadsafe(self._overflow.set)
            except RuntimeError:  # the client's loop is closed: it is gone
                self.closed = True
                return False
        return True

    async def next_batch(self) -> list[str]:
        """Wait for events; return every queued one (JSON text, oldest first).

        Raises :class:`SubscriberTooSlow` once the queue has overflowed.
        """
        while True:
            with self._lock:
                if self.overflowed:
                    raise SubscriberTooSlow(
                        f"more than {self.max_queue} events were waiting for this client")
                if self._items:
                    batch = list(self._items)
                    self._items.clear()
                    return batch
            # A wake-up scheduled between the check above and this wait still wakes us:
            # set() and clear() both run in this loop, in order.
            await self._wakeup.wait()
            self._wakeup.clear()

    async def wait_overflow(self) -> None:
        """Return once the queue has overflowed (even while the reader is busy sending)."""
        await self._overflow.wait()

    def pending(self) -> int:
        """How many events are queued."""
        with self._lock:
            return len(self._items)

    def close(self) -> None:
        """Stop receiving; idempotent."""
        with self._lock:
            self.closed = True
            self._items.clear()
        self.bus._forget(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the bus -----------------------------------------------------------------------------
class EventBus:
    """Publish from any thread; subscribe from coroutines. See the module docstring."""

    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        #: Random per bus, so a reconnecting client can tell a restarted service.
        self.id = secrets.token_hex(8)
        self._lock = threading.Lock()
        self._seq = 0
        self._subscribers: list[Subscription] = []

    @property
    def last_seq(self) -> int:
        """``seq`` of the latest event (0 before the first)."""
        return self._seq

    def publish(self, event: Event | Mapping[str, Any]) -> int:
        """Number ``event``, queue it for every subscriber, and return its ``seq``.

        Safe from any thread; never blocks on a client. ``event`` is one of the typed
        events or a mapping with a ``kind`` (for kinds other parts add later).
        """
        body = encode_event(event)  # outside the lock: encoding is the costly part
        with self._lock:
            self._seq += 1
            seq = self._seq
            text = f'{{"seq":{seq},{body[1:]}'
            # Appending under the bus lock keeps each queue in seq order even when
            # several threads publish at once.
            gone = [sub for sub in self._subscribers if not sub._offer(text)]
            for sub in gone:
                self._subscribers.remove(sub)
        return seq

    def subscribe(self, max_queue: int | None = None) -> Subscription:
        """A new :class:`Subscription`, bound to the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            sub = Subscription(self, max_queue or self.max_queue, self._seq, loop)
            self._subscribers.append(sub)
        return sub

    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        with self._lock:
            return len(self._subscribers)

    def _forget(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)


__all__ = [
    "DEFAULT_MAX_QUEUE",
    "EVENT_TYPES",
    "CommentSet",
    "ContextSaved",
    "ContextStatus",
    "Event",
    "EventBus",
    "JobProgress",
    "JobStateChanged",
    "JobStuck",
    "RunAdded",
    "SubscriberTooSlow",
    "Subscription",
    "TimeCommentChanged",
    "UserValueSet",
    "ValuesMerged",
    "VariablesChanged",
    "encode_event",
]
