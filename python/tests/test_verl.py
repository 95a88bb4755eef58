"""verdict.verl.compute_score with verl's arguments: `ground_truth` and `extra_info` as verl's
code datasets store them (the `reward_model.ground_truth` column, the `extra_info` dict)."""

import json

import pytest

import verdict
import verdict.verl
from conftest import ADD, ECHO_SUM, WRONG_ADD


@pytest.fixture(autouse=True)
def in_process(scorer):
    verdict.verl.use(scorer)
    yield
    verdict.verl.use(None)


def test_prime_style_stdio_ground_truth_as_json_text():
    # PRIME / Eurus-2-RL-Data, APPS, TACO: a JSON string of inputs and outputs.
    gt = json.dumps({"inputs": ["1 2\n", "10 20\n"], "outputs": ["3\n", "30\n"]})
    extra = {"split": "train", "index": 7}
    ok = verdict.verl.compute_score("codecontests", ECHO_SUM, gt, extra)
    assert ok["outcome"] == "passed" and ok["score"] > 0.8 and ok["acc"] == 1.0
    bad = verdict.verl.compute_score("codecontests", "```python\nprint(3)\n```", gt, extra)
    assert bad["outcome"] == "failed" and bad["score"] < ok["score"] and bad["acc"] == 0.0


def test_function_ground_truth_as_a_dict_and_humaneval_with_extra_info():
    gt = {"inputs": [[1, 2], [5, 5]], "outputs": [3, 10], "fn_name": "add"}
    assert verdict.verl.compute_score("apps", ADD, gt)["outcome"] == "passed"
    assert verdict.verl.compute_score("apps", WRONG_ADD, gt)["outcome"] == "failed"
    check = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
    r = verdict.verl.compute_score("humaneval", ADD, check, {"entry_point": "add"})
    assert r["outcome"] == "passed"


def test_a_list_of_asserts_and_the_batch_signature():
    gts = [["assert add(1, 2) == 3"], ["assert add(1, 2) == 3"]]
    scores = verdict.verl.compute_score_batch(["mbpp", "mbpp"], [ADD, WRONG_ADD], gts, [None, None])
    assert [s["outcome"] for s in scores] == ["passed", "failed"]


def test_ground_truth_verdict_cannot_read_names_the_field():
    with pytest.raises(ValueError, match="ground_truth"):
        verdict.verl.compute_score("gsm8k", "The answer is 4.", "4", None)
    with pytest.raises(ValueError, match=r"input_output.*2 inputs but 1 outputs"):
        verdict.verl.compute_score("apps", ADD, {"inputs": [[1], [2]], "outputs": [1]})


def test_verdicts_own_failure_raises_instead_of_a_fake_zero(broken_scorer):
    verdict.verl.use(broken_scorer)
    with pytest.raises(verdict.VerdictError, match="could not judge"):
        verdict.verl.compute_score("mbpp", ADD, ["assert add(1, 2) == 3"])


def test_integers_beyond_64_bits_stay_exact_in_verl_and_trl_fields(scorer):
    # A call test's expected value beyond 2**64, as a Python int in the dataset: read as JSON
    # text, never as a float, so a program off by one fails and the exact one passes.
    big = 123456789012345678901234567890
    gt = {"tests": [{"kind": "call", "fn": "f", "args": [], "expected": big}]}
    right = f"```python\ndef f():\n    return {big}\n```"
    wrong = f"```python\ndef f():\n    return {big + 1}\n```"
    assert verdict.verl.compute_score("x", right, gt)["outcome"] == "passed"
    assert verdict.verl.compute_score("x", wrong, gt)["outcome"] == "failed"
    from verdict import _native
    text = _native.rollout_from_fields("r", "p", wrong, json.dumps({"tests": gt["tests"]}))
    assert str(big) in text and str(float(big)) not in text
