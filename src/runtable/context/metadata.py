"""Run metadata from the facility's proposal database, for ``mymdc#`` arguments.

A *metadata provider* is any callable ``provider(proposal, run, field)`` returning the
value of ``field`` (``"sample_name"``, ``"run_type"`` or ``"techniques"``). Choose one:

* ``RUNTABLE_METADATA_PROVIDER=package.module:function`` in the environment, or
* :func:`set_metadata_provider` (e.g. at the top of a context file or in tests).

Without either, the ``extra_proposal`` package is used when it is installed (it talks
to European XFEL's myMdC). When no provider is reachable, the variables asking for
metadata get a clear error and their dependents are skipped; nothing else fails.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, Protocol

ENV_VAR = "RUNTABLE_METADATA_PROVIDER"


class MetadataProvider(Protocol):
    """Returns one metadata field of a run."""

    def __call__(self, proposal: int, run: int, field: str) -> Any: ...


class MetadataUnavailable(RuntimeError):
    """No metadata provider could be used."""


_provider: MetadataProvider | None = None


def set_metadata_provider(provider: MetadataProvider | None) -> None:
    """Use ``provider`` for ``mymdc#`` arguments (None: back to the default choice).

    >>> set_metadata_provider(lambda proposal, run, field: {"sample_name": "Cu"}[field])
    """
    global _provider
    _provider = provider


def _how_to(field: str) -> str:
    return (
        f"mymdc#{field} needs a metadata provider: install extra_proposal, set "
        f"{ENV_VAR}=module:function, or call runtable.context.set_metadata_provider()"
    )


def get_provider(field: str = "sample_name") -> MetadataProvider:
    """The provider in use; raises MetadataUnavailable (saying how to configure one)."""
    if _provider is not None:
        return _provider
    spec = os.environ.get(ENV_VAR, "").strip()
    if spec:
        module, _, attr = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise MetadataUnavailable(f"{_how_to(field)} ({ENV_VAR}={spec!r}: {exc})") from None
    try:
        importlib.import_module("extra_proposal")
    except ImportError:
        raise MetadataUnavailable(_how_to(field)) from None
    return extra_proposal_provider


def extra_proposal_provider(proposal: int, run: int, field: str) -> Any:
    """Metadata from myMdC through ``extra_proposal``."""
    from extra_proposal import Proposal

    return getattr(Proposal(proposal)[run], field)()


class MetadataCache:
    """Fetches each field at most once per execution of a pipeline."""

    def __init__(self, proposal: int, run: int,
                 provider: Callable[[str], MetadataProvider] = get_provider) -> None:
        self.proposal, self.run = proposal, run
        self._get_provider = provider
        self._values: dict[str, Any] = {}

    def get(self, field: str) -> Any:
        if field not in self._values:
            provider = self._get_provider(field)
            self._values[field] = provider(self.proposal, self.run, field)
        return self._values[field]
