"""Benchmarks of the Python package and the HTTP gateway, as ratios within one run.

1. In-process overhead: the same rollouts scored by `verdict score` (the Rust CLI, its start-up
   measured on an empty file and subtracted) and by `verdict.Scorer.score_batch`, both with the
   sandbox in-process and the same number of threads, for the full chain on
   fixtures/rollouts.jsonl and for a format + parse chain (no sandbox: the binding's own cost
   dominates).
2. Gateway latency: sequential single-rollout calls to one `verdict serve` through gRPC
   (`verdict.Client`) and through HTTP (`POST /v1/score`, a keep-alive `http.client`
   connection), medians and their difference.

    VERDICT_BIN=target/debug/verdict .venv/bin/python python/bench.py [--repeat N] [--calls M]

Run it with the package built by `maturin develop --release` and a release binary for
absolute numbers; the ratios are what to compare (this machine is noisy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import verdict

ROOT = pathlib.Path(__file__).resolve().parents[1]
FULL = """
[[verifier]]
kind = "format"
weight = 0.2
[[verifier]]
kind = "parse"
gate = true
weight = 0.0
[[verifier]]
kind = "tests"
[[verifier]]
kind = "timing"
weight = 0.1
baseline = "reference"
[sandbox.engine]
workers = 0
"""
LIGHT = """
[[verifier]]
kind = "format"
weight = 0.2
[[verifier]]
kind = "parse"
gate = true
weight = 1.0
"""


def cli_seconds(binary: str, config: pathlib.Path, path: pathlib.Path, jobs: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [binary, "score", str(path), "--quiet", "--config", str(config), "--jobs", str(jobs), "-o", os.devnull],
        check=False,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def in_process(binary: str, toml: str, rollouts: list, jobs: int, tmp: pathlib.Path, rounds: int = 3) -> dict:
    config = tmp / "verdict.toml"
    config.write_text(toml)
    data = tmp / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rollouts))
    empty = tmp / "empty.jsonl"
    empty.write_text("")
    scorer = verdict.Scorer(config)
    scorer.score_batch(rollouts[:4])  # warm: instances made, caches filled
    cli_seconds(binary, config, data, jobs)
    cli, startup, py = [], [], []
    for _ in range(rounds):
        startup.append(cli_seconds(binary, config, empty, jobs))
        cli.append(cli_seconds(binary, config, data, jobs))
        started = time.perf_counter()
        scores = scorer.score_batch(rollouts)
        py.append(time.perf_counter() - started)
    assert len(scores) == len(rollouts)
    n = len(rollouts)
    cli_net = max(statistics.median(cli) - statistics.median(startup), 1e-9)
    py_s = statistics.median(py)
    return {
        "rollouts": n,
        "cli_ms_per_rollout": 1000 * cli_net / n,
        "cli_startup_ms": 1000 * statistics.median(startup),
        "python_ms_per_rollout": 1000 * py_s / n,
        "overhead_ms_per_rollout": 1000 * (py_s - cli_net) / n,
        "python_over_cli": py_s / cli_net,
    }


def gateway(binary: str, calls: int, rollout: dict, tmp: pathlib.Path, toml: str) -> dict:
    config = tmp / "serve.toml"
    config.write_text(toml)
    proc = subprocess.Popen(
        [binary, "serve", "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        grpc_addr = proc.stdout.readline().split()[-1]
        http_host, http_port = proc.stdout.readline().split()[-1].rsplit(":", 1)
        client = verdict.Client(grpc_addr, timeout=30)
        conn = http.client.HTTPConnection(http_host, int(http_port), timeout=30)
        body = json.dumps(rollout).encode()

        def via_http():
            conn.request("POST", "/v1/score", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            out = json.loads(response.read())
            assert response.status == 200, out
            return out

        for _ in range(20):  # warm both paths
            client.score(rollout)
            via_http()
        grpc_ms, http_ms = [], []
        for _ in range(calls):  # interleaved, so drift hits both alike
            started = time.perf_counter()
            a = client.score(rollout)
            grpc_ms.append(1000 * (time.perf_counter() - started))
            started = time.perf_counter()
            b = via_http()
            http_ms.append(1000 * (time.perf_counter() - started))
        assert a["outcome"] == b["outcome"]
        g, h = statistics.median(grpc_ms), statistics.median(http_ms)
        return {"calls": calls, "grpc_p50_ms": g, "http_p50_ms": h, "http_added_ms": h - g, "http_over_grpc": h / g}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=8, help="copies of fixtures/rollouts.jsonl (14 rollouts each)")
    ap.add_argument("--calls", type=int, default=200, help="sequential calls per transport")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    binary = os.environ.get("VERDICT_BIN", str(ROOT / "target" / "debug" / "verdict"))
    base = [json.loads(line) for line in (ROOT / "fixtures" / "rollouts.jsonl").read_text().splitlines() if line.strip()]
    rollouts = [dict(r, id=f"{r['id']}-{i}") for i in range(args.repeat) for r in base]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        results = {
            "in_process_full_chain": in_process(binary, FULL, rollouts, args.jobs, tmp),
            "in_process_format_parse": in_process(binary, LIGHT, rollouts * 4, args.jobs, tmp),
            "gateway_format_parse": gateway(binary, args.calls, base[0], tmp, LIGHT),
            "gateway_full_chain": gateway(binary, args.calls // 4, base[0], tmp, FULL),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
