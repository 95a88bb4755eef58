"""In-run baselines for benches/sandbox.rs: the same corpus, judged without a sandbox.

    python3 benches/baseline.py fork|subprocess PROBLEMS.jsonl WORKERS

fork        the classic unsandboxed harness (as openai/human-eval does): one forked process per
            program, which execs the solution and its tests in-process (stdio tests: stdin and
            stdout swapped for in-memory files) and reports pass/fail through a pipe. A plain
            os.fork() from a warm interpreter is cheaper than human-eval's multiprocessing.Process,
            so this baseline is on the generous side.
subprocess  a fresh `python3` per program (the solution and a generated test driver in a file).

Both run WORKERS programs at a time (threads that each wait on one child), so every core is
used. Prints one JSON line: {"mode", "programs", "seconds", "per_second", "results": [bool…]}.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

TIMEOUT = 10.0


def judge_in_process(program, tests):
    """Runs in the child: True when every test passes."""
    for t in tests:
        if t["kind"] == "stdio":
            sys.stdin = io.StringIO(t["stdin"])
            out = io.StringIO()
            sys.stdout = out
            try:
                exec(program, {"__name__": "__main__"})
            except SystemExit as e:
                if e.code not in (None, 0):
                    return False
            finally:
                sys.stdout = sys.__stdout__
            got = [l.rstrip() for l in out.getvalue().replace("\r\n", "\n").split("\n")]
            exp = [l.rstrip() for l in t["stdout"].replace("\r\n", "\n").split("\n")]
            while got and not got[-1]:
                got.pop()
            while exp and not exp[-1]:
                exp.pop()
            if got != exp:
                return False
        else:
            g = {"__name__": "solution"}
            exec(program, g)
            if t["kind"] == "assert":
                exec(t["code"], g)
            elif g[t["fn"]](*t["args"]) != t["expected"]:
                return False
    return True


def run_fork(program, tests):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            ok = judge_in_process(program, tests)
        except BaseException:
            ok = False
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + TIMEOUT
    data = b""
    with os.fdopen(r, "rb") as f:
        data = f.read(1)
    while True:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.0002)
    return data == b"1"


DRIVER = """
import io, json, sys
PROGRAM = {program!r}
TESTS = json.loads({tests!r})
sys.setrecursionlimit(10000)
{judge}
ok = False
try:
    ok = judge_in_process(PROGRAM, TESTS)
except BaseException:
    ok = False
sys.__stdout__.write("PASS" if ok else "FAIL")
"""


def run_subprocess(program, tests, judge_src):
    src = DRIVER.format(program=program, tests=json.dumps(tests), judge=judge_src)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
        path = f.name
    try:
        out = subprocess.run([sys.executable, path], capture_output=True, timeout=TIMEOUT)
        return out.stdout.endswith(b"PASS")
    except subprocess.TimeoutExpired:
        return False
    finally:
        os.unlink(path)


def main():
    mode, path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    programs = []
    with open(path) as f:
        for line in f:
            p = json.loads(line)
            programs.append((p["right"], p["tests"]))
            programs.append((p["wrong"], p["tests"]))
    import inspect
    judge_src = inspect.getsource(judge_in_process)
    if mode == "fork":
        job = lambda pt: run_fork(*pt)
    else:
        job = lambda pt: run_subprocess(pt[0], pt[1], judge_src)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        results = list(ex.map(job, programs))
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": mode, "programs": len(programs), "seconds": seconds,
                      "per_second": len(programs) / seconds, "results": results}))


if __name__ == "__main__":
    main()
