"""Per-folder settings, stored in the ``metameta`` table.

:data:`SETTINGS` is the one list of known keys: each has a one-line description,
a default and a parser that turns what a person typed (often a string from the
command line) into the stored value, or raises :class:`ValidationError`.
The keys shared with the reference system keep its names and value types so
that its tools read them unchanged; keys of our own follow them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError


@dataclass(frozen=True)
class Setting:
    """One known settings key."""

    key: str
    description: str
    parse: Callable[[Any], Any]
    default: Any = None
    #: Internal bookkeeping: readable, but only runtable itself writes it.
    readonly: bool = False
    #: How the default is derived from this machine, when it is (``default`` is then
    #: this machine's value; docs show the rule).
    default_rule: str = ""

    @property
    def value_type(self) -> str:
        """What a value looks like, for people (e.g. ``"integer >= 1"``)."""
        return _VALUE_TYPES.get(self.parse, "text")


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{value!r} is not a non-empty string")
    return value.strip()


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValidationError(f"{value!r} is not a positive integer")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{value!r} is not a positive integer") from None
    if number < 1:
        raise ValidationError(f"{value!r} is not a positive integer")
    return number


def _non_negative_float(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValidationError(f"{value!r} is not a number") from None
    if not number >= 0 or number == float("inf"):
        raise ValidationError(f"{value!r} is not a finite number >= 0")
    return number


def _positive_float(value: Any) -> float:
    number = _non_negative_float(value)
    if number == 0:
        raise ValidationError(f"{value!r} is not a number > 0")
    return number


_MEM_RE = re.compile(r"^\d+[KMGT]?$")
# Slurm's --time forms: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME_RE = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def _memory(value: Any) -> str:
    text = str(value).strip().upper()
    if not _MEM_RE.match(text):
        raise ValidationError(f"{value!r} is not a memory size like '25G' or '4000M'")
    return text


def _slurm_time(value: Any) -> str:
    text = str(value).strip()
    if not _TIME_RE.match(text):
        raise ValidationError(f"{value!r} is not a Slurm time limit like '02:00:00' or '1-12'")
    return text


def _db_id(value: Any) -> str:
    text = str(value).strip().lower()
    if not re.fullmatch(r"[0-9a-f]{40}", text):
        raise ValidationError(f"{value!r} is not 40 hexadecimal characters")
    return text


def _executor(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("local", "slurm"):
        raise ValidationError(f"{value!r} is not one of 'local', 'slurm'")
    return text


def _timezone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = str(value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{value!r} is not a time zone name; use an IANA name such as 'Europe/Berlin', "
            "'America/Chicago' or 'UTC' (`timedatectl list-timezones` lists them)") from None
    return text


#: The reference system's per-job limits, for machines that have room for them.
_REFERENCE_MEM_G, _REFERENCE_CPUS = 25, 4


def machine_memory_default() -> str:
    """Half of this machine's memory, at most 25G (whole GiB, at least 1G)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return f"{_REFERENCE_MEM_G}G"
    return f"{max(1, min(_REFERENCE_MEM_G, total // 2 // 1024**3))}G"


def machine_cpus_default() -> int:
    """The CPUs this process may use, at most 4."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(_REFERENCE_CPUS, available))


_VALUE_TYPES: dict[Callable[[Any], Any], str] = {
    _str: "text",
    _positive_int: "integer >= 1",
    _non_negative_float: "number >= 0",
    _positive_float: "number > 0",
    _memory: "memory size (e.g. 25G, 4000M)",
    _slurm_time: "Slurm time (e.g. 02:00:00, 1-12)",
    _db_id: "40 hexadecimal characters",
    _executor: "local or slurm",
    _timezone: "time zone (IANA name, e.g. Europe/Berlin, UTC)",
}

#: The facility's zone by default: the reference system shows Europe/Berlin times.
DEFAULT_TIMEZONE = "Europe/Berlin"

SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in [
        Setting("proposal", "Proposal number this folder belongs to.", _positive_int),
        Setting("db_id", "Random 40-hex identifier of this database (names its update channel).",
                _db_id),
        Setting("data_format_version", "Version of the SQLite/HDF5 data format (set by "
                "migrations).", _positive_int, readonly=True),
        Setting("context_python", "Python interpreter that runs the context file "
                "(default: runtable's own).", _str),
        Setting("damnit_python", "Python interpreter of the processing jobs "
                "(the reference system's name for it).", _str),
        Setting("concurrent_jobs", "Maximum number of processing jobs running at once "
                "(`runtable reprocess`: at most one per CPU; on Slurm: workers of one "
                "batch, each processing runs one after the other).",
                _positive_int, default=15),
        Setting("noncluster_cpus", "CPUs for a job that computes the non-cluster variables.",
                _positive_int, default=machine_cpus_default(),
                default_rule=f"the CPUs of the machine, at most {_REFERENCE_CPUS}"),
        Setting("noncluster_mem", "Memory for a job that computes the non-cluster variables; "
                "a job using more is stopped.", _memory,
                default=machine_memory_default(),
                default_rule=f"half of the machine's memory, at most {_REFERENCE_MEM_G}G"),
        Setting("slurm_time", "Time limit of a Slurm job (a worker stops taking runs "
                "before it ends).", _slurm_time, default="02:00:00"),
        Setting("slurm_partition", "Slurm partition for cluster=True variables.", _str),
        Setting("slurm_reservation", "Slurm reservation for cluster=True variables "
                "(wins over the partition).", _str),
        Setting("slurm_account", "Slurm account to charge (sbatch --account).", _str),
        Setting("slurm_qos", "Slurm quality of service (sbatch --qos).", _str),
        Setting("slurm_max_jobs", "Most Slurm jobs (workers) submitted and not yet "
                "ended at once, for the site's limit on submitted jobs.", _positive_int,
                default=100),
        Setting("job_time_limit_s", "Seconds a processing job (one run, locally or in a "
                "Slurm worker) may run before it is killed (default: not set, then "
                "slurm_time applies).", _positive_float),
        Setting("ready_quiet_s", "Seconds a run folder must stay unchanged before it is "
                "processed.", _non_negative_float, default=10.0),
        Setting("stuck_after_s", "Seconds a running job may print nothing to its log and "
                "report no progress before the web GUI marks it as possibly stuck (0: "
                "never).", _non_negative_float, default=600.0),
        Setting("executor", "Where jobs run: 'local' (process pool) or 'slurm'.", _executor,
                default="local"),
        Setting("timezone", "Time zone of the times shown and exported: run timestamps in "
                "the web GUI and its exports, `runtable table`/`export` and "
                "`Database.table()`.", _timezone, default=DEFAULT_TIMEZONE),
    ]
}


def value_or_default(key: str, value: Any) -> Any:
    """The value of setting ``key`` given what is stored (None: nothing): the stored
    value, or the setting's default when none is stored, NULL or empty text (written
    by another tool). The one rule every reader of settings applies."""
    return SETTINGS[key].default if value is None or value == "" else value


def with_defaults(stored: Mapping[str, Any]) -> dict[str, Any]:
    """Every known setting's value (:func:`value_or_default`) from ``stored``."""
    return {key: value_or_default(key, stored.get(key)) for key in SETTINGS}


def known_keys_text() -> str:
    return ", ".join(sorted(SETTINGS))


def lookup(key: str) -> Setting:
    """The :class:`Setting` for *key* ('-' accepted for '_'), or ValidationError."""
    setting = SETTINGS.get(key.replace("-", "_"))
    if setting is None:
        raise ValidationError(f"Unknown setting {key!r}; known settings: {known_keys_text()}")
    return setting
