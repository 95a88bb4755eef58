"""verdict as verl's reward function (``custom_reward_function``).

Point verl at this module::

    custom_reward_function.path=$(python -c "import verdict.verl as m; print(m.__file__)")
    custom_reward_function.name=compute_score          # or compute_score_batch with the batch reward manager

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` once per
response. verdict reads the tests from ``ground_truth`` in the formats verl's code datasets
use (``{"inputs": [...], "outputs": [...], "fn_name"?: ...}`` as JSON text or a dict — PRIME,
APPS, TACO, CodeContests; ``{"test_cases": [...]}``; a list of tests or assert statements; a
HumanEval ``check`` function with ``extra_info["entry_point"]``), and from ``extra_info``'s
dataset fields. The decoding is verdict's Rust dataset adapters', the same as ``verdict
score``'s.

The scorer is made on first use: a :class:`verdict.Client` when ``$VERDICT_REMOTE`` names
``verdict serve`` replicas, else an in-process :class:`verdict.Scorer` (``$VERDICT_CONFIG``
or the built-in chain). :func:`use` sets one explicitly.

Each call returns ``{"score": reward, "acc": 1.0 if passed else 0.0, "outcome": ...}``; verl
takes ``score`` as the reward and logs the other keys. verl has no way to mask a reward, so
when verdict cannot judge a response (outcome ``error``) the call raises
:class:`verdict.VerdictError` rather than return a 0 that would read as a wrong answer.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Optional, Sequence, Union

from . import Client, Scorer, VerdictError, _jsonable, _native

__all__ = ["compute_score", "compute_score_batch", "use", "rollout_for"]

_lock = threading.Lock()
_scorer: Optional[Union[Scorer, Client]] = None


def use(scorer: Union[Scorer, Client, None]) -> None:
    """Score with ``scorer`` from now on (``None``: make the default again on next use)."""
    global _scorer
    with _lock:
        _scorer = scorer


def _backend() -> Union[Scorer, Client]:
    global _scorer
    with _lock:
        if _scorer is None:
            remote = os.environ.get("VERDICT_REMOTE")
            _scorer = Client(remote) if remote else Scorer()
        return _scorer


def rollout_for(
    solution_str: str,
    ground_truth: Any,
    extra_info: Optional[dict] = None,
    *,
    id: str = "verl",
    data_source: Optional[str] = None,
) -> str:
    """The rollout (JSON text) verdict scores for one verl response. ``ValueError`` names the
    field (``ground_truth``, ``extra_info``, ``tests[0]``…) when it has no tests verdict reads."""
    fields = json.loads(
        _native.verl_fields(
            json.dumps(ground_truth, default=_jsonable),
            None if extra_info is None else json.dumps(extra_info, default=_jsonable),
        )
    )
    if data_source and "data_source" not in fields:
        fields["data_source"] = data_source
    prompt = ""
    if isinstance(extra_info, dict) and isinstance(extra_info.get("question"), str):
        prompt = extra_info["question"]
    return _native.rollout_from_fields(
        id, prompt, solution_str, json.dumps(fields, ensure_ascii=False, default=_jsonable)
    )


def _reason(score: dict) -> str:
    """Why a score is `error` or `invalid_input`: its `error`, else a verifier's."""
    if score.get("error"):
        return score["error"]
    for v in score.get("verifiers", []):
        details = v.get("details")
        if isinstance(details, dict) and details.get("error"):
            return f"{v['name']}: {details['error']}"
    return score["outcome"]


def _result(score: dict) -> dict:
    if score["outcome"] == "error":
        raise VerdictError(f"verdict could not judge response {score['id']}: {_reason(score)}")
    if score["outcome"] == "invalid_input":
        raise ValueError(_reason(score))
    return {
        "score": score["reward"],
        "acc": 1.0 if score["outcome"] == "passed" else 0.0,
        "outcome": score["outcome"],
    }


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Optional[dict] = None,
    **kwargs: Any,
) -> dict:
    """verl's reward-function signature: the score of one response (see the module docs)."""
    text = rollout_for(solution_str, ground_truth, extra_info, data_source=data_source)
    return _result(_backend()._score_texts([text])[0])


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Optional[Sequence[Optional[dict]]] = None,
    **kwargs: Any,
) -> list:
    """verl's batch reward manager signature: every response of a step scored together."""
    n = len(solution_strs)
    extra_infos = list(extra_infos) if extra_infos is not None else [None] * n
    if not (len(data_sources) == len(ground_truths) == len(extra_infos) == n):
        raise ValueError(
            f"{len(data_sources)} data_sources, {n} solution_strs, {len(ground_truths)} "
            f"ground_truths and {len(extra_infos)} extra_infos: one each per response"
        )
    texts = [
        rollout_for(s, g, e, id=str(i), data_source=d)
        for i, (d, s, g, e) in enumerate(zip(data_sources, solution_strs, ground_truths, extra_infos))
    ]
    return [_result(s) for s in _backend()._score_texts(texts)]
