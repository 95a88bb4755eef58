"""verdict.Client over gRPC and the HTTP/JSON gateway of a real `verdict serve`."""

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest

import verdict
from conftest import ADD, SPIN, WRONG_ADD, add_rollout


def post(url, body, headers=None, timeout=30):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_client_scores_like_the_in_process_scorer(server, scorer):
    client = verdict.Client(server.grpc, timeout=30)
    assert client.endpoints == ["http://" + server.grpc]
    remote = client.score(add_rollout("c1"))
    local = scorer.score(add_rollout("c1"))
    assert (remote["outcome"], remote["reward"]) == (local["outcome"], local["reward"])
    scores = client.score_batch([add_rollout("a"), {"id": "b", "completion": 1}, add_rollout("c", WRONG_ADD)])
    assert [s["outcome"] for s in scores] == ["passed", "invalid_input", "failed"]
    assert scores[1]["error"].startswith("rollouts[1].completion")

    async def both():
        return await asyncio.gather(client.ascore(add_rollout("x")), client.ascore_batch([add_rollout("y")]))

    one, batch = asyncio.run(both())
    assert one["outcome"] == batch[0]["outcome"] == "passed"


def test_http_score_and_batch_speak_the_jsonl_shape(server, scorer):
    status, score = post(server.http + "/v1/score", add_rollout("h1"))
    assert status == 200
    assert score["id"] == "h1" and score["outcome"] == "passed"
    assert [v["name"] for v in score["verifiers"]] == [v["name"] for v in scorer.score(add_rollout("h1"))["verifiers"]]
    status, body = post(server.http + "/v1/score_batch", {"rollouts": [add_rollout("b1"), {"completion": "x"}, add_rollout("b3", WRONG_ADD)]})
    assert status == 200
    assert [s["id"] for s in body["scores"]] == ["b1", "input-2", "b3"]
    assert [s["outcome"] for s in body["scores"]] == ["passed", "invalid_input", "failed"]
    assert body["scores"][1]["error"] == "rollouts[1].id: is required"


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/score", {"id": "m", "completion": 7}, "completion"),
        ("/v1/score", {"id": "m", "completion": "x", "tests": [{"kind": "call", "fn": "f"}]}, "tests[0].expected"),
        ("/v1/score", {"id": "m"}, "completion"),
        ("/v1/score", {"id": "", "completion": "x"}, "id"),
        ("/v1/score_batch", {"rollout": []}, None),
        ("/v1/score_batch", {"rollouts": []}, "rollouts"),
        ("/v1/openrlhf", {"query": ["a", "b"], "labels": [None]}, "labels"),
        ("/v1/openrlhf", {"prompts": ["a"]}, None),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field(server, path, body, field):
    status, err = post(server.http + path, body)
    assert status == 400, err
    assert err["error"]["code"] == "invalid_argument"
    if field is not None:
        assert err["error"]["field"] == field, err
        assert err["error"]["message"].startswith(field + ": ")
    else:
        assert "rollouts" in err["error"]["message"] or "query" in err["error"]["message"], err


def test_a_body_that_is_not_json_is_a_400(server):
    status, err = post(server.http + "/v1/score", b"{not json")
    assert status == 400 and "not JSON" in err["error"]["message"]
    status, err = post(server.http + "/v1/score", add_rollout("t"), headers={"X-Verdict-Timeout-Ms": "soon"})
    assert status == 400 and "x-verdict-timeout-ms" in err["error"]["message"]


def test_openrlhf_remote_reward_protocol(server):
    # What OpenRLHF's remote_rm_fn posts: the decoded prompt+response, the prompts, the labels.
    prompts = ["<|user|>Write add(a, b).<|assistant|>", "<|user|>Print the sum.<|assistant|>", "<|user|>Say hi.<|assistant|>"]
    responses = [ADD, "```python\nprint(0)\n```", "hi"]
    labels = [
        json.dumps(["assert add(1, 2) == 3"]),
        {"input_output": json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]})},
        None,
    ]
    body = {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts, "labels": labels}
    status, out = post(server.http + "/v1/openrlhf", body)
    assert status == 200, out
    assert len(out["rewards"]) == 3 and out["scores"] == out["rewards"]
    assert out["rewards"][0] > 0.8
    assert out["rewards"][1] < 0.5
    assert out["rewards"][2] == 0.0
    assert out["extra_logs"]["verdict_passed"] == [1, 0, 0]
    assert out["extra_logs"]["verdict_error"] == [0, 0, 0]
    # A label that is not a test format verdict reads scores that query as invalid, not the batch.
    status, out = post(server.http + "/v1/openrlhf", {"query": ["a", ADD], "labels": ["4", ["assert add(1, 2) == 3"]]})
    assert status == 200
    assert out["rewards"][0] == 0.0 and out["rewards"][1] > 0.8


def test_http_calls_are_in_the_metrics(server):
    post(server.http + "/v1/score", add_rollout("m1"))
    with urllib.request.urlopen(server.http + "/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'verdict_grpc_requests_total{code="Ok",method="POST /v1/score"}' in text
    assert 'verdict_grpc_requests_total{code="InvalidArgument",method="POST /v1/score"}' in text


def test_a_slow_call_ends_within_its_deadline(server):
    spin = add_rollout("spin", SPIN, limits={"time_ms": 10000})
    started = time.monotonic()
    status, err = post(server.http + "/v1/score", spin, headers={"X-Verdict-Timeout-Ms": "700"})
    took = time.monotonic() - started
    assert status == 504, err
    assert err["error"]["code"] == "deadline_exceeded"
    assert took < 3.0, took  # the spin's own limit is 10 s

    client = verdict.Client(server.grpc, timeout=0.7)
    started = time.monotonic()
    with pytest.raises(verdict.DeadlineExceeded):
        client.score(spin)
    assert time.monotonic() - started < 3.0


def test_a_crashed_service_is_an_error_within_the_timeout(doomed_server):
    # A fresh server's first sandbox run may be slow on a loaded machine: warm it without hurry.
    assert verdict.Client(doomed_server.grpc, timeout=120).score(add_rollout("before"))["outcome"] == "passed"
    client = verdict.Client(doomed_server.grpc, timeout=3.0, connect_timeout=0.5)
    doomed_server.kill()
    started = time.monotonic()
    with pytest.raises(verdict.ServiceError) as caught:
        client.score_batch([add_rollout("after")])
    assert time.monotonic() - started < 5.0
    code = caught.value.args[0]
    assert code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), caught.value.args


def test_every_path_in_the_openapi_description_is_served(server):
    import pathlib
    import re

    spec = (pathlib.Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text()
    paths = re.findall(r"^  (/[\w/]+):\n    (get|post):", spec, re.M)
    assert {p for p, _ in paths} == {"/v1/score", "/v1/score_batch", "/v1/openrlhf", "/metrics"}
    for path, method in paths:
        if method == "post":
            status, _ = post(server.http + path, {})
            assert status == 400, path  # served, and `{}` is not a valid request
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server.http + "/v1/nothing", timeout=10)
    assert e.value.code == 404


def test_http_shares_the_grpc_admission_bound():
    import threading

    from conftest import Server

    s = Server("--max-in-flight", "1", "--max-queued", "0")
    try:
        spin = add_rollout("busy", SPIN, limits={"time_ms": 3000})
        busy = threading.Thread(target=lambda: verdict.Client(s.grpc, timeout=60).score(spin))
        busy.start()
        deadline = time.monotonic() + 30
        while True:  # until the gRPC call holds the one slot
            with urllib.request.urlopen(s.http + "/metrics", timeout=10) as r:
                if "verdict_scoring_in_flight 1" in r.read().decode():
                    break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        req = urllib.request.Request(s.http + "/v1/score", data=json.dumps(add_rollout("more")).encode(), method="POST", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=30)
        assert e.value.code == 429
        assert e.value.headers["Retry-After"] == "1"
        assert json.loads(e.value.read())["error"]["code"] == "overloaded"
        busy.join(timeout=60)
    finally:
        s.stop()
