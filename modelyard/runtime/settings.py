"""The replica's settings from its environment, read and checked once at start-up.

The supervisor configures a replica through environment variables (so the same
image runs unchanged in a container); a bad value stops the replica before it
listens, naming the variable, rather than surfacing later as odd behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from modelyard.domain.errors import Invalid

__all__ = ["RuntimeSettings"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class RuntimeSettings:
    """Everything a replica reads from its environment."""

    keys_file: Path | None = None
    """MODELYARD_KEYS_FILE: `{"sha256": [hex, ...]}`; scoring needs a matching key. None: open."""
    max_concurrent: int = 32
    """MODELYARD_MAX_CONCURRENT: pending requests beyond this are refused with 429."""
    batching: bool = True
    """MODELYARD_BATCHING: 0 answers every request with `run` even if the driver has run_batch."""
    batch_max_size: int = 32
    """MODELYARD_BATCH_MAX_SIZE: the largest batch handed to a driver's run_batch."""
    batch_max_wait_ms: float = 2.0
    """MODELYARD_BATCH_MAX_WAIT_MS: how long a batch waits for company after its first item."""
    data_collection: bool = False
    """MODELYARD_DATA_COLLECTION: append scored requests and responses to JSON-lines files."""
    app_insights: bool = False
    """MODELYARD_APP_INSIGHTS: one JSON log line per request on stdout."""
    pdeathsig: bool = False
    """MODELYARD_PDEATHSIG: exit (SIGTERM) when the supervising process dies (Linux)."""
    drain_s: float = 30.0
    """MODELYARD_DRAIN_S: the longest a SIGTERM waits for open connections to finish."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RuntimeSettings:
        """Read the MODELYARD_* variables; raise Invalid naming the first bad one."""
        keys = env.get("MODELYARD_KEYS_FILE", "").strip()
        return cls(
            keys_file=Path(keys) if keys else None,
            max_concurrent=_number(env, "MODELYARD_MAX_CONCURRENT", 32, int, minimum=1),
            batching=env.get("MODELYARD_BATCHING", "1").strip() not in ("0", "false", "no"),
            batch_max_size=_number(env, "MODELYARD_BATCH_MAX_SIZE", 32, int, minimum=1),
            batch_max_wait_ms=_number(env, "MODELYARD_BATCH_MAX_WAIT_MS", 2.0, float, minimum=0),
            data_collection=_flag(env, "MODELYARD_DATA_COLLECTION"),
            app_insights=_flag(env, "MODELYARD_APP_INSIGHTS"),
            pdeathsig=_flag(env, "MODELYARD_PDEATHSIG"),
            drain_s=_number(env, "MODELYARD_DRAIN_S", 30.0, float, minimum=0),
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise Invalid(f"{name}={env[name]!r} is not a boolean (use 1 or 0)", target=name)


def _number(env: Mapping[str, str], name: str, default: _N, kind: type[_N], *, minimum: _N) -> _N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise Invalid(f"{name}={raw!r} is not a {kind.__name__}", target=name) from None
    if value < minimum:
        raise Invalid(f"{name}={raw!r} must be at least {minimum}", target=name)
    return value
