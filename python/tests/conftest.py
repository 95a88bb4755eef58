"""Fixtures of the Python package's tests: an in-process scorer, a scorer whose sandbox is
broken on purpose (every rollout that needs it gets outcome `error`), and a real
`verdict serve` ($VERDICT_BIN) with its gRPC and HTTP listeners on free ports."""

import os
import subprocess
import sys

import pytest

import verdict

ADD = "<think>easy</think>\n```python\ndef add(a, b):\n    return a + b\n```"
WRONG_ADD = "```python\ndef add(a, b):\n    return a - b\n```"
ECHO_SUM = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
SPIN = "```python\ndef add(a, b):\n    while True:\n        pass\n```"

# A sandbox whose worker executable is not verdict: each run's worker dies at once, which is
# verdict's own failure (outcome `error`, reward None), never a wrong answer.
BROKEN_SANDBOX = """
[[verifier]]
kind = "parse"
gate = true
weight = 0.0

[[verifier]]
kind = "tests"

[sandbox.engine]
workers = 1
worker_exe = "/bin/false"
"""


def add_rollout(id="r", completion=ADD, **extra):
    r = {
        "id": id,
        "prompt": "Write add(a, b).",
        "completion": completion,
        "tests": [{"kind": "assert", "code": "assert add(1, 2) == 3"}],
    }
    r.update(extra)
    return r


@pytest.fixture(scope="session")
def scorer():
    return verdict.Scorer()


@pytest.fixture(scope="session")
def broken_scorer():
    return verdict.Scorer(toml=BROKEN_SANDBOX)


class Server:
    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [os.environ["VERDICT_BIN"], "serve", "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        grpc_line = self.proc.stdout.readline().strip()
        http_line = self.proc.stdout.readline().strip()
        assert grpc_line.startswith("listening on "), grpc_line
        assert http_line.startswith("http on "), http_line
        self.grpc = grpc_line.removeprefix("listening on ")
        self.http = "http://" + http_line.removeprefix("http on ")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=30) == 0, "SIGTERM drains and exits 0"

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture()
def doomed_server():
    """A server of its own, for tests that kill it."""
    s = Server()
    yield s
    if s.proc.poll() is None:
        s.kill()
