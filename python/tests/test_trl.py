"""verdict.trl.reward_function called exactly the way TRL's GRPOTrainer calls reward functions.

TRL (0.2x and later) builds, in `GRPOTrainer._calculate_rewards`:

    keys = [key for key in inputs[0] if key not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {key: [example[key] for example in inputs] for key in keys}
    reward_kwargs["trainer_state"] = self.state
    reward_kwargs["log_extra"] = self._log_completion_extra
    reward_kwargs["log_metric"] = self._log_metric
    output = reward_func(prompts=prompts, completions=completions,
                         completion_ids=completion_ids_list, **reward_kwargs)
    output = [r if r is not None else torch.nan for r in output]

with `await reward_func(...)` for coroutine functions. `call_like_trl` below does the same with
a dataset of rows (each repeated num_generations times, as TRL's sampler does).
"""

import asyncio
import inspect
import json
import math
import pathlib
import time
import types
import warnings
from collections import defaultdict

import pytest

import verdict
import verdict.trl
from conftest import ADD, ECHO_SUM, SPIN, WRONG_ADD

NUM_GENERATIONS = 2


class FakeTrainerHooks:
    """What TRL's `_log_completion_extra` / `_log_metric` do: collect columns and scalars."""

    def __init__(self):
        self.extra = defaultdict(list)
        self.metrics = defaultdict(list)

    def log_extra(self, column, values):
        self.extra[column].extend(values)

    def log_metric(self, name, value):
        self.metrics[name].append(value)


def call_like_trl(reward_func, rows, completions, hooks=None):
    hooks = hooks or FakeTrainerHooks()
    inputs = [row for row in rows for _ in range(NUM_GENERATIONS)]
    assert len(inputs) == len(completions)
    prompts = [x["prompt"] for x in inputs]
    completion_ids = [[ord(c) % 100 for c in str(c)[:8]] for c in completions]
    keys = [k for k in inputs[0] if k not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {k: [x[k] for x in inputs] for k in keys}
    reward_kwargs["trainer_state"] = types.SimpleNamespace(global_step=3, epoch=0.1)
    reward_kwargs["log_extra"] = hooks.log_extra
    reward_kwargs["log_metric"] = hooks.log_metric
    if inspect.iscoroutinefunction(reward_func):
        output = asyncio.run(
            reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids, **reward_kwargs)
        )
    else:
        output = reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids, **reward_kwargs)
    assert len(output) == len(completions)
    assert all(r is None or isinstance(r, float) for r in output), output
    # TRL's own conversion must work on it.
    [r if r is not None else math.nan for r in output]
    return output, hooks


def test_standard_format_string_completions_with_tests_and_reference(scorer):
    rows = [
        {
            "prompt": "Write add(a, b).",
            "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
            "reference": "def add(a, b):\n    return a + b\n",
        },
        {
            "prompt": "Read two numbers and print their sum.",
            "tests": json.dumps([{"kind": "stdio", "stdin": "2 3\n", "stdout": "5\n"}]),
            "reference": None,
        },
    ]
    completions = [ADD, WRONG_ADD, ECHO_SUM, "The sum is easy to compute."]
    reward = verdict.trl.reward_function(scorer)
    assert reward.__name__ == "verdict"
    rewards, hooks = call_like_trl(reward, rows, completions)
    assert rewards[0] > 0.8 and rewards[2] > 0.8
    assert rewards[1] < rewards[0]
    assert rewards[3] == 0.0
    assert hooks.extra["verdict_outcome"] == ["passed", "failed", "passed", "not_code"]
    assert hooks.metrics["verdict/tests"] == [pytest.approx((1 + 0 + 1) / 3)]
    assert hooks.metrics["verdict/outcome/passed"] == [0.5]


def test_conversational_completions_and_open_r1_verification_info(scorer):
    info = {
        "language": "python",
        "test_cases": [{"type": "stdin_stdout", "input": "4 5\n", "output": "9\n"}],
    }
    rows = [
        {
            "prompt": [
                {"role": "system", "content": "You write Python."},
                {"role": "user", "content": "Print the sum of two numbers on a line."},
            ],
            "verification_info": json.dumps(info),
            "source": "open-r1/codeforces",
        }
    ]
    completions = [
        [{"role": "assistant", "content": ECHO_SUM}],
        [{"role": "assistant", "content": "```python\nprint(0)\n```"}],
    ]
    rewards, _ = call_like_trl(verdict.trl.reward_function(scorer), rows, completions)
    assert rewards[0] > 0.8
    assert rewards[1] < 0.5


def test_verl_style_input_output_and_humaneval_columns(scorer):
    rows = [
        # A datasets.Dataset has every column in every row, None where a row has no value.
        {"prompt": "add", "input_output": json.dumps({"inputs": [[1, 2]], "outputs": [3], "fn_name": "add"}),
         "test": None, "entry_point": None},
        {"prompt": "add again", "input_output": None,
         "test": "def check(candidate):\n    assert candidate(2, 2) == 4\n", "entry_point": "add"},
    ]
    rewards, _ = call_like_trl(verdict.trl.reward_function(scorer), rows, [ADD, WRONG_ADD, ADD, WRONG_ADD])
    assert rewards[0] > 0.8 and rewards[2] > 0.8
    assert rewards[1] < 0.5 and rewards[3] < 0.5


def test_verdicts_own_failure_is_none(broken_scorer):
    rows = [{"prompt": "Write add.", "tests": ["assert add(1, 2) == 3"]}]
    rewards, hooks = call_like_trl(verdict.trl.reward_function(broken_scorer), rows, [ADD, "no code here"])
    assert rewards[0] is None
    assert rewards[1] == 0.0  # judged: the parse gate fails prose, no sandbox needed
    assert hooks.extra["verdict_outcome"][0] == "error"


def test_a_malformed_column_is_reported_and_the_rest_scored(scorer):
    rows = [{"prompt": "add", "tests": [{"kind": "stdio"}]}, {"prompt": "add", "tests": ["assert add(1, 2) == 3"]}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rewards, hooks = call_like_trl(verdict.trl.reward_function(scorer), rows, [ADD, ADD, ADD, ADD])
    assert rewards[:2] == [0.0, 0.0]
    assert rewards[2] > 0.8
    assert any("tests[0].stdout: is required" in str(w.message) for w in caught), [
        str(w.message) for w in caught
    ]
    assert hooks.extra["verdict_outcome"][:2] == ["invalid_input", "invalid_input"]


def test_the_async_variant_is_a_coroutine_function_trl_awaits(scorer):
    reward = verdict.trl.reward_function(scorer, asynchronous=True, name="verdict_async")
    assert inspect.iscoroutinefunction(reward)
    assert reward.__name__ == "verdict_async"
    rows = [{"prompt": "Write add.", "tests": ["assert add(1, 2) == 3"]}]
    rewards, _ = call_like_trl(reward, rows, [ADD, WRONG_ADD])
    assert rewards[0] > 0.8 and rewards[1] < 0.5


def test_through_a_service_and_a_dead_one(server):
    rows = [{"prompt": "Write add.", "tests": ["assert add(1, 2) == 3"]}]
    rewards, _ = call_like_trl(verdict.trl.reward_function(server.grpc), rows, [ADD, WRONG_ADD])
    assert rewards[0] > 0.8 and rewards[1] < 0.5

    dead = verdict.Client("127.0.0.1:9", timeout=2.0, connect_timeout=0.5)
    reward = verdict.trl.reward_function(dead)
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rewards, hooks = call_like_trl(reward, rows, [ADD, WRONG_ADD])
    assert time.monotonic() - started < 5
    assert rewards == [None, None]
    assert any("could not score" in str(w.message) for w in caught)
    assert hooks.extra["verdict_outcome"] == ["error", "error"]


def test_import_verdict_gives_trl_and_verl_lazily_without_trainer_libraries():
    # A fresh interpreter: this module has imported verdict.trl already.
    import subprocess
    import sys

    code = """
import sys
import verdict
assert "verdict.trl" not in sys.modules and "verdict.verl" not in sys.modules, "eager"
assert "trl" in dir(verdict) and "verl" in dir(verdict)
assert callable(verdict.trl.reward_function)
assert callable(verdict.verl.compute_score)
assert verdict.trl is sys.modules["verdict.trl"]
for heavy in ("trl", "torch", "transformers"):
    assert heavy not in sys.modules, heavy
try:
    verdict.no_such_thing
except AttributeError as e:
    assert "no_such_thing" in str(e)
else:
    raise AssertionError("an unknown attribute must raise AttributeError")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_outcome_shares_are_logged_for_every_outcome_in_every_batch(scorer):
    # TRL averages a metric over the values logged in a logging window: a batch without
    # failures must log a 0 share, else the mean reads as the share in the batches with one.
    reward = verdict.trl.reward_function(scorer)
    hooks = FakeTrainerHooks()
    rows = [{"prompt": "Write add(a, b).", "tests": ["assert add(1, 2) == 3"]}]
    call_like_trl(reward, rows, [ADD, WRONG_ADD], hooks)
    call_like_trl(reward, rows, [ADD, ADD], hooks)
    failed = hooks.metrics["verdict/outcome/failed"]
    assert failed == [0.5, 0.0]
    assert sum(failed) / len(failed) == 0.25  # 1 failure in 4 completions
    assert hooks.metrics["verdict/outcome/passed"] == [0.5, 1.0]
    for outcome in verdict.trl.OUTCOMES:
        assert len(hooks.metrics[f"verdict/outcome/{outcome}"]) == 2, outcome
    schema = json.loads((pathlib.Path(__file__).resolve().parents[2] / "schema" / "score.schema.json").read_text())
    assert list(verdict.trl.OUTCOMES) == schema["properties"]["outcome"]["enum"]


def test_max_failed_batches_stops_a_run_verdict_cannot_judge(broken_scorer):
    rows = [{"prompt": "Write add.", "tests": ["assert add(1, 2) == 3"]}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Off by default: batches of `error` go on returning None.
        reward = verdict.trl.reward_function(broken_scorer)
        for _ in range(3):
            assert call_like_trl(reward, rows, [ADD, ADD])[0] == [None, None]
        reward = verdict.trl.reward_function(broken_scorer, max_failed_batches=2)
        assert call_like_trl(reward, rows, [ADD, ADD])[0] == [None, None]
        # A batch with a judged completion (prose fails the parse gate) starts the count again.
        assert call_like_trl(reward, rows, [ADD, "no code here"])[0] == [None, 0.0]
        assert call_like_trl(reward, rows, [ADD, ADD])[0] == [None, None]
        with pytest.raises(verdict.VerdictError, match="2 batch\\(es\\) in a row"):
            call_like_trl(reward, rows, [ADD, ADD])
        with pytest.raises(ValueError):
            verdict.trl.reward_function(broken_scorer, max_failed_batches=0)


def test_max_failed_batches_with_a_dead_service():
    dead = verdict.Client("127.0.0.1:9", timeout=2.0, connect_timeout=0.5)
    rows = [{"prompt": "Write add.", "tests": ["assert add(1, 2) == 3"]}]
    reward = verdict.trl.reward_function(dead, max_failed_batches=1, asynchronous=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(verdict.VerdictError, match="could not be scored") as raised:
            call_like_trl(reward, rows, [ADD, WRONG_ADD])
    assert isinstance(raised.value.__cause__, verdict.ServiceError)
