"""verdict: automatic rewards for LLM rollouts.

A rollout is a dict shaped like a line of verdict's JSONL input::

    {"id": "r1", "prompt": "...", "completion": "...", "tests": [...], "reference": "..."}

and a score is a dict shaped like a line of its output::

    {"id": "r1", "reward": 1.0, "outcome": "passed", "verifiers": [...], "tests": {...},
     "cost": {"fuel": ..., "wall_ms": ...}}

``reward`` is ``None`` when the outcome is ``"error"``: verdict itself could not judge the
rollout (a dead sandbox worker, an internal failure). Mask it out; it is not a wrong answer.

- :class:`Scorer` runs the whole chain in this process, sandbox included.
- :class:`Client` calls ``verdict serve`` replicas over gRPC, with retries and load balancing.
- :mod:`verdict.trl` and :mod:`verdict.verl` adapt either to those trainers. Both are
  attributes of the package, loaded on first use (``import verdict; verdict.trl``): ``import
  verdict`` itself imports neither them nor any trainer library (no ``trl``, no ``torch``).

Both classes release the GIL while Rust works, and both have asyncio variants of their calls
(``ascore``, ``ascore_batch``), which run the call on a worker thread.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from typing import Any, Mapping, Optional, Sequence, Union

from . import _native
from ._native import DeadlineExceeded, ServiceError, VerdictError

__all__ = [
    "Scorer",
    "Client",
    "VerdictError",
    "ServiceError",
    "DeadlineExceeded",
    "Rollout",
    "ScoreDict",
]
__version__: str = _native.__version__

#: The submodules loaded on first attribute access (PEP 562): the trainer adapters.
_LAZY_SUBMODULES = frozenset({"trl", "verl"})


def __getattr__(name: str) -> Any:
    """``verdict.trl`` and ``verdict.verl`` without importing them up front."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | _LAZY_SUBMODULES)


#: A rollout: a mapping shaped like a JSONL input line.
Rollout = Mapping[str, Any]
#: A score: a dict shaped like a JSONL output line.
ScoreDict = dict


def _jsonable(value: Any) -> Any:
    """`json.dumps` fallback for dataset values: numpy arrays and scalars, then `str`."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _dumps(rollout: Rollout) -> str:
    if not isinstance(rollout, Mapping):
        raise TypeError(f"a rollout is a mapping (dict), not {type(rollout).__name__}")
    return json.dumps(rollout, ensure_ascii=False, default=_jsonable)


class _Scoring:
    """What Scorer and Client share: dicts in, dicts out, asyncio wrappers."""

    _native: Any

    def score(self, rollout: Rollout) -> ScoreDict:
        """Score one rollout. A malformed rollout raises ``ValueError`` naming the field."""
        return json.loads(self._native.score_json(_dumps(rollout)))

    def score_batch(self, rollouts: Sequence[Rollout]) -> list:
        """Score rollouts together (concurrently, with the group pass for groupwise verifiers);
        scores come back in order. A malformed rollout gets an ``invalid_input`` score in its
        own slot, naming ``rollouts[i]`` and the field; the others are still scored."""
        return self._score_texts([_dumps(r) for r in rollouts])

    def _score_texts(self, texts: list) -> list:
        """Score rollouts given as JSON texts (the adapters build them in Rust)."""
        if not texts:
            return []
        return [json.loads(s) for s in self._native.score_batch_json(texts)]

    async def _ascore_texts(self, texts: list) -> list:
        return await asyncio.get_running_loop().run_in_executor(None, self._score_texts, texts)

    async def ascore(self, rollout: Rollout) -> ScoreDict:
        """:meth:`score` without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.score, rollout)

    async def ascore_batch(self, rollouts: Sequence[Rollout]) -> list:
        """:meth:`score_batch` without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(None, self.score_batch, rollouts)


class Scorer(_Scoring):
    """The whole verifier chain in this process (format, parse, sandboxed tests, timing, …).

    ``config`` is a ``verdict.toml`` path (default: ``$VERDICT_CONFIG``, else the built-in
    chain); ``toml`` is its text instead. ``jobs``: rollouts of a batch scored at once
    (default: the number of CPUs, as ``verdict score --jobs``). The sandbox runtime is
    installed on first use (``verdict runtime install`` does it up front). Sandbox runs happen
    in this process.
    """

    def __init__(
        self,
        config: Optional[Union[str, "os.PathLike[str]"]] = None,
        *,
        toml: Optional[str] = None,
        jobs: Optional[int] = None,
    ) -> None:
        if config is None and toml is None:
            config = os.environ.get("VERDICT_CONFIG") or None
        self._native = _native.Scorer(config, toml=toml, jobs=jobs)

    @property
    def origin(self) -> str:
        """Where the chain's configuration came from."""
        return self._native.origin

    def steps(self) -> list:
        """The chain's steps as ``(name, kind)`` pairs, in order."""
        return self._native.steps()

    def __repr__(self) -> str:
        return f"verdict.Scorer(origin={self.origin!r})"


class Client(_Scoring):
    """A client of ``verdict serve`` replicas over gRPC.

    ``endpoints``: ``"host:port"``, a comma-separated list, or a list (a name that resolves to
    several addresses becomes one endpoint each). Calls go to the less busy of two replicas;
    ``UNAVAILABLE``/``RESOURCE_EXHAUSTED`` are retried with backoff (``retries``), and
    ``timeout`` (seconds) bounds a whole call, retries included: past it the call raises
    :class:`DeadlineExceeded`, and the server stops the work. Other failures raise
    :class:`ServiceError` with ``(code, message)`` as ``args``.
    """

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        timeout: float = 300.0,
        retries: int = 5,
        connect_timeout: float = 5.0,
    ) -> None:
        self._native = _native.Client(
            endpoints, timeout=timeout, retries=retries, connect_timeout=connect_timeout
        )

    @property
    def endpoints(self) -> list:
        """The endpoints, as URLs."""
        return self._native.endpoints()

    def __repr__(self) -> str:
        return f"verdict.Client({self.endpoints!r})"
