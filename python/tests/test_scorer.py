"""verdict.Scorer: the chain in-process, in the JSONL shape, GIL released, asyncio."""

import asyncio
import json
import os
import subprocess
import threading
import time

import pytest

import verdict
from conftest import ADD, SPIN, WRONG_ADD, add_rollout


def without_times(score):
    """A score without its wall times (they differ run to run)."""
    score = json.loads(json.dumps(score))
    score["cost"].pop("wall_ms", None)
    for r in (score.get("tests") or {}).get("results", []):
        r.pop("wall_ms", None)
    for v in score["verifiers"]:
        if isinstance(v.get("details"), dict):
            v["details"].pop("wall_ms", None)
    return score


def test_scores_are_what_the_cli_writes(scorer, tmp_path):
    rollouts = [
        add_rollout("ok"),
        add_rollout("wrong", WRONG_ADD),
        add_rollout("prose", "I would add them."),
        {"id": "stdio", "completion": "```python\nprint(int(input()) * 2)\n```",
         "tests": [{"kind": "stdio", "stdin": "21\n", "stdout": "42\n"}]},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rollouts))
    cli = subprocess.run(
        [os.environ["VERDICT_BIN"], "score", str(path), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    expected = [json.loads(line) for line in cli.stdout.splitlines()]
    got = scorer.score_batch(rollouts)
    assert [without_times(s) for s in got] == [without_times(s) for s in expected]
    assert [s["outcome"] for s in got] == ["passed", "failed", "not_code", "passed"]
    one = scorer.score(rollouts[0])
    assert without_times(one) == without_times(expected[0])
    assert one["reward"] > 0.8 and one["tests"]["passed"] == 1


def test_a_malformed_rollout_names_its_field(scorer):
    with pytest.raises(ValueError, match=r"tests\[0\].*stdout"):
        scorer.score({"id": "x", "completion": ADD, "tests": [{"kind": "stdio", "stdin": ""}]})
    with pytest.raises(ValueError, match="completion"):
        scorer.score({"id": "x", "completion": 5})
    with pytest.raises(TypeError):
        scorer.score(["not", "a", "dict"])
    # In a batch the bad one gets its own record and the rest is scored.
    scores = scorer.score_batch([add_rollout("a"), {"id": "b", "completion": 5}, add_rollout("c")])
    assert [s["id"] for s in scores] == ["a", "b", "c"]
    assert scores[1]["outcome"] == "invalid_input"
    assert scores[1]["error"].startswith("rollouts[1].completion: ")
    assert scores[0]["outcome"] == scores[2]["outcome"] == "passed"


def test_verdicts_own_failure_is_none_not_zero(broken_scorer):
    s = broken_scorer.score(add_rollout("e"))
    assert s["outcome"] == "error"
    assert s["reward"] is None
    assert s["error"]


def test_the_gil_is_released_while_rust_scores(scorer):
    slow = add_rollout("slow", SPIN, limits={"time_ms": 1500})
    done = threading.Event()
    result = {}

    def work():
        result["score"] = scorer.score(slow)
        done.set()

    t = threading.Thread(target=work)
    started = time.monotonic()
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    elapsed = time.monotonic() - started
    assert result["score"]["outcome"] == "timeout"
    assert elapsed >= 1.0
    # Holding the GIL for the run would have left this thread a handful of ticks at most.
    assert ticks > 200, ticks


def test_asyncio_calls_run_concurrently(scorer):
    async def main():
        return await asyncio.gather(
            scorer.ascore(add_rollout("a1")),
            scorer.ascore_batch([add_rollout("b1"), add_rollout("b2", WRONG_ADD)]),
        )

    one, batch = asyncio.run(main())
    assert one["outcome"] == "passed"
    assert [s["outcome"] for s in batch] == ["passed", "failed"]


def test_configuration_errors_are_clear():
    with pytest.raises(verdict.VerdictError, match="nonexistent"):
        verdict.Scorer("/nonexistent/verdict.toml")
    with pytest.raises(verdict.VerdictError, match="bogus"):
        verdict.Scorer(toml='[[verifier]]\nkind = "bogus"\n')


def test_every_score_dict_carries_its_reward_semantics(scorer, broken_scorer):
    # What CHANGELOG.md calls the current version; a record of version 1 had no such field.
    scores = [
        scorer.score(add_rollout("ok")),
        scorer.score_batch([add_rollout("p", "I would add them."), {"id": "bad"}])[1],  # invalid_input
        broken_scorer.score(add_rollout("e")),  # error
    ]
    assert [s["outcome"] for s in scores] == ["passed", "invalid_input", "error"]
    assert [s["semantics"] for s in scores] == [4, 4, 4]


def _workers_of(pid):
    """The pids of `python -m verdict._worker` children of `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and b"verdict._worker" in cmdline:
            found.append(int(entry))
    return found


def test_the_sandbox_runs_in_worker_processes_so_the_caller_survives(scorer):
    assert scorer.score(add_rollout(id="w1"))["outcome"] == "passed"
    workers = _workers_of(os.getpid())
    assert workers, "the scorer runs its sandbox in `python -m verdict._worker` processes"
    # A worker that dies (what an abort in the sandbox would do) costs at most the rollouts in
    # flight on it; this process goes on, and the next runs get a fresh worker.
    for pid in workers:
        os.kill(pid, 9)
    outcomes = [scorer.score(add_rollout(id=f"after-{i}"))["outcome"] for i in range(4)]
    assert outcomes[-1] == "passed", outcomes
    assert set(outcomes) <= {"passed", "error"}, outcomes


def test_workers_0_runs_the_sandbox_in_this_process_with_the_same_scores(scorer):
    here = verdict.Scorer(toml="[sandbox.engine]\nworkers = 0\n")
    assert without_times(here.score(add_rollout(id="same"))) == without_times(
        scorer.score(add_rollout(id="same"))
    )
