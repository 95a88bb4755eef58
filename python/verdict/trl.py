"""verdict as a TRL reward function (``GRPOTrainer(reward_funcs=[...])``).

::

    from trl import GRPOConfig, GRPOTrainer
    import verdict.trl

    reward = verdict.trl.reward_function()          # in-process; or verdict.Client("host:50051")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=ds, args=GRPOConfig(...))

TRL calls a reward function as ``f(prompts=..., completions=..., completion_ids=...,
trainer_state=..., log_extra=..., log_metric=..., **columns)``, where ``columns`` are the
dataset's other columns, one value per completion. verdict reads its rollout fields from them
(``tests``, ``reference``, ``setup``, ``entry_point``, ``problem_id``, ``limits``) and passes
the rest to its dataset adapters (``test`` + ``entry_point``, ``test_list``, ``input_output``,
``verification_info``, ``public_test_cases``…). Completions may be strings or chat messages.

The result is one reward per completion, ``None`` where verdict could not judge it (outcome
``error``), which TRL turns into NaN and leaves out of the group's statistics. A service that
stays down would make every reward ``None`` and the run would go on learning nothing:
``reward_function(max_failed_batches=N)`` raises :class:`verdict.VerdictError` after N batches
in a row that verdict could not judge at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from typing import Any, Callable, Optional, Sequence, Union

from . import Client, Scorer, ServiceError, VerdictError, _jsonable, _native

__all__ = ["reward_function", "rollouts_from_trl", "OUTCOMES"]

log = logging.getLogger(__name__)

#: Keyword arguments TRL passes that are not dataset columns.
TRL_ARGUMENTS = frozenset(
    {"completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)

#: Every outcome a score may have (``schema/score.schema.json``), in the order of verdict's
#: ``Outcome`` enum. Each batch logs a share for every one of them, 0 included.
OUTCOMES = (
    "passed",
    "failed",
    "not_code",
    "not_python",
    "syntax_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "runtime_error",
    "invalid_input",
    "error",
    "tests_unavailable",
)


def _text(value: Any) -> str:
    """A prompt or completion as text: a string, or the contents of chat messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = [value]
    parts = []
    for message in value or []:
        content = message.get("content", "") if isinstance(message, dict) else message
        if isinstance(content, list):  # multimodal parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(content or "")
    return "\n\n".join(parts)


def _completion_text(value: Any) -> str:
    """The model's answer: a string, or the assistant messages of a conversational completion."""
    if isinstance(value, str):
        return value
    messages = value if isinstance(value, list) else [value]
    assistant = [m for m in messages if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
    return _text(assistant or messages)


def _problem_id(prompt: str) -> str:
    return "p-" + hashlib.sha1(prompt.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def rollouts_from_trl(prompts: Sequence[Any], completions: Sequence[Any], columns: dict) -> list:
    """TRL's arguments as rollout JSON texts, or the ``invalid_input`` score (a dict) of a
    completion whose columns do not make a rollout. ``problem_id`` defaults to a hash of the
    prompt, so the completions of one prompt form a group."""
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(f"{len(prompts)} prompts for {n} completions")
    for name, values in columns.items():
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    out = []
    for i in range(n):
        prompt = _text(prompts[i])
        fields = {name: values[i] for name, values in columns.items()}
        fields.setdefault("problem_id", _problem_id(prompt))
        try:
            text = _native.rollout_from_fields(
                str(i),
                prompt,
                _completion_text(completions[i]),
                json.dumps(fields, ensure_ascii=False, default=_jsonable),
            )
        except ValueError as e:
            out.append(json.loads(_native.invalid_score(str(i), i + 1, f"completion {i}: {e}")))
            continue
        out.append(text)
    return out


def _report(scores: list, log_metric: Optional[Callable], log_extra: Optional[Callable], name: str) -> None:
    """Per-verifier means and outcome shares through TRL's hooks (where TRL passes them)."""
    if log_metric is not None:
        per_verifier: dict = {}
        for s in scores:
            for v in s.get("verifiers", []):
                if not v.get("skipped"):
                    per_verifier.setdefault(v["name"], []).append(v["score"])
        for verifier, values in per_verifier.items():
            log_metric(f"{name}/{verifier}", sum(values) / len(values))
        # TRL averages each metric over the values logged in its logging window, so an
        # outcome logged only by the batches that have it would read as its share in those
        # batches alone: every outcome is logged every batch, 0 where the batch has none.
        outcomes = dict.fromkeys(OUTCOMES, 0)
        for s in scores:
            outcomes[s["outcome"]] = outcomes.get(s["outcome"], 0) + 1
        for outcome, count in outcomes.items():
            log_metric(f"{name}/outcome/{outcome}", count / len(scores) if scores else 0.0)
    if log_extra is not None:
        log_extra(f"{name}_outcome", [s["outcome"] for s in scores])


class _FailedBatches:
    """Counts batches in a row that verdict could not judge at all; raises at the limit."""

    def __init__(self, limit: Optional[int]) -> None:
        self.limit = limit
        self.in_a_row = 0

    def record(self, scored: list, service_error: Optional[BaseException]) -> None:
        """One batch's scores (of the completions sent to verdict) and the service's error, if
        its call failed."""
        failed = service_error is not None or (
            bool(scored) and all(s["outcome"] == "error" for s in scored)
        )
        if not failed:
            self.in_a_row = 0
            return
        self.in_a_row += 1
        if self.limit is not None and self.in_a_row >= self.limit:
            cause = service_error if service_error is not None else scored[-1].get("error")
            self.in_a_row = 0
            raise VerdictError(
                f"verdict: {self.limit} batch(es) in a row could not be scored "
                f"(max_failed_batches={self.limit}); last cause: {cause}"
            ) from service_error


def reward_function(
    scorer: Union[Scorer, Client, str, None] = None,
    *,
    name: str = "verdict",
    log: bool = True,
    asynchronous: bool = False,
    max_failed_batches: Optional[int] = None,
) -> Callable[..., Any]:
    """A reward function for TRL's ``GRPOTrainer``.

    ``scorer``: a :class:`verdict.Scorer` (in-process), a :class:`verdict.Client`, an endpoint
    string (``"host:port"``, made into a Client), or ``None`` for an in-process Scorer with
    ``$VERDICT_CONFIG`` or the built-in chain. ``name`` is the function's ``__name__``, which
    TRL uses for its reward column. ``log``: report per-verifier means and outcome shares
    through TRL's ``log_metric`` and each completion's outcome through ``log_extra``, when TRL
    passes them. ``asynchronous``: return an ``async def`` (TRL runs those concurrently).

    A completion whose columns are malformed gets reward 0 (outcome ``invalid_input``) with a
    warning naming the column; verdict's own failures give ``None``, and so does a service that
    fails or does not answer within the Client's ``timeout`` (with a warning).

    ``max_failed_batches``: off (``None``) by default. With N, the call that makes N batches in
    a row that verdict could not judge at all (the service failed, or every completion sent to
    it came back ``error``) raises :class:`verdict.VerdictError`, which stops the training run
    instead of letting it go on with no reward. Any batch with a judged completion starts the
    count again.
    """
    if max_failed_batches is not None and (
        isinstance(max_failed_batches, bool) or not isinstance(max_failed_batches, int) or max_failed_batches < 1
    ):
        raise ValueError(f"max_failed_batches must be a positive integer or None, not {max_failed_batches!r}")
    failures = _FailedBatches(max_failed_batches)
    if scorer is None:
        scorer = Scorer()
    elif isinstance(scorer, str):
        scorer = Client(scorer)
    backend = scorer

    def prepare(prompts, completions, kwargs):
        columns = {k: v for k, v in kwargs.items() if k not in TRL_ARGUMENTS}
        items = rollouts_from_trl(prompts, completions, columns)
        texts = [i for i in items if isinstance(i, str)]
        return items, texts

    def failed(rollouts, error):
        """A service that failed (after the client's retries, within its timeout) leaves the
        rollouts unjudged: `error` scores, reward None."""
        warnings.warn(f"verdict: could not score {len(rollouts)} completion(s): {error}", stacklevel=3)
        return [
            json.loads(_native.error_score(json.loads(t)["id"], f"the verdict service failed: {error}"))
            for t in rollouts
        ]

    def finish(items, scored, kwargs, service_error=None):
        failures.record(scored, service_error)
        scored = iter(scored)
        scores = [next(scored) if isinstance(i, str) else i for i in items]
        for s in scores:
            if s["outcome"] == "invalid_input":
                warnings.warn(f"verdict: {s.get('error')}", stacklevel=3)
        if log:
            _report(scores, kwargs.get("log_metric"), kwargs.get("log_extra"), name)
        return [s["reward"] for s in scores]

    if asynchronous:

        async def reward(prompts, completions, **kwargs):
            items, rollouts = prepare(prompts, completions, kwargs)
            service_error = None
            try:
                scored = await backend._ascore_texts(rollouts)
            except ServiceError as e:
                service_error = e
                scored = failed(rollouts, e)
            return finish(items, scored, kwargs, service_error)

    else:

        def reward(prompts, completions, **kwargs):
            items, rollouts = prepare(prompts, completions, kwargs)
            service_error = None
            try:
                scored = backend._score_texts(rollouts)
            except ServiceError as e:
                service_error = e
                scored = failed(rollouts, e)
            return finish(items, scored, kwargs, service_error)

    reward.__name__ = name
    reward.__qualname__ = name
    reward.__doc__ = f"verdict reward ({backend!r}): TRL reward-function signature."
    return reward
