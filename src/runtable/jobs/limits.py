"""Resource limits of a job, from the folder's settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_memory(text: str | int) -> int:
    """Bytes in a Slurm-style size: ``"25G"``, ``"512M"``, ``"4000"`` (= MiB, as
    Slurm reads a bare number)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)B?\s*", str(text).upper())
    if m is None:
        raise ValueError(f"{text!r} is not a memory size like '25G' or '512M'")
    number, unit = int(m.group(1)), m.group(2)
    return number * (_UNITS[unit] if unit else _UNITS["M"])


def parse_slurm_time(text: str) -> float:
    """Seconds in a Slurm ``--time``: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    text = str(text).strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")]
        parts += [0] * (3 - len(parts))  # D-H, D-H:M
        h, m, s = parts
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, (m, s) = 0, parts
        else:
            h, m, s = parts
    return float(((days * 24 + h) * 60 + m) * 60 + s)


@dataclass(frozen=True)
class Limits:
    """Per-job limits: CPUs, memory (bytes and the setting's text) and wall time (s)."""

    cpus: int = 4
    mem: str = "25G"
    time_s: float = 7200.0
    slurm_time: str = "02:00:00"

    @property
    def longest_s(self) -> float:
        """The longest any job may run: the local or the Slurm time limit."""
        return max(self.time_s, parse_slurm_time(self.slurm_time))

    @property
    def mem_bytes(self) -> int:
        return parse_memory(self.mem)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        """``noncluster_cpus``, ``noncluster_mem``, ``slurm_time``; the local time limit
        is ``job_time_limit_s`` when set, else ``slurm_time``."""
        from runtable.store.settings import value_or_default

        def setting(key: str) -> Any:
            return value_or_default(key, settings.get(key))

        cpus = int(setting("noncluster_cpus"))
        mem = str(setting("noncluster_mem"))
        slurm_time = str(setting("slurm_time"))
        limit = setting("job_time_limit_s")
        time_s = float(limit) if limit is not None else parse_slurm_time(slurm_time)
        return cls(cpus=cpus, mem=mem, time_s=time_s, slurm_time=slurm_time)
