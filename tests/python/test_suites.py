"""Test modules (`pytest` and `unittest` test kinds) judged by verdict against real pytest.

Each case of fixtures/suites/corpus.jsonl — a program and a pytest- or unittest-style test
module, as KodCode and BigCodeBench ship them — is run twice: by pytest itself on the host
(`solution.py` beside the module, one subprocess per case, results read from its JUnit XML),
and by `verdict score` ($VERDICT_BIN), which runs the module in its judge instance with its own
collector. Both must find the same items, and the same items must pass. Where verdict is
stricter by design (a skipped item is not a pass) both sides count the item as not passed; a
module pytest cannot collect fails every item of its source in verdict.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fixtures" / "suites" / "corpus.jsonl"


def cases():
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def pytest_items(case):
    """{item name: passed} as pytest itself runs the module."""
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        (d / "solution.py").write_text(case["program"])
        code = case["code"]
        if "import solution" not in code and "from solution" not in code:
            # BigCodeBench's convention: the tests are appended to the solution.
            code = case["program"] + "\n" + code
        (d / "test_case.py").write_text(code)
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={d / 'out.xml'}", str(d / "test_case.py")],
            cwd=d, capture_output=True, text=True, timeout=120,
        )
        items = {}
        for tc in ET.parse(d / "out.xml").getroot().iter("testcase"):
            classname, name = tc.get("classname", ""), tc.get("name", "")
            bad = any(tc.find(tag) is not None for tag in ("failure", "error", "skipped"))
            if classname in ("", "test_case") and name == "test_case":
                items["<module>"] = False  # a collection error
                continue
            cls = classname.split(".", 1)[1] if "." in classname else None
            sep = "::" if case["kind"] == "pytest" else "."
            key = f"{cls}{sep}{name}" if cls else name
            items[key] = items.get(key, True) and not bad
        return items


def verdict_items(path):
    out = path.with_suffix(".out.jsonl")
    subprocess.run([os.environ["VERDICT_BIN"], "score", str(path), "-o", str(out)],
                   check=True, capture_output=True, timeout=600)
    records = {}
    for line in out.read_text().splitlines():
        r = json.loads(line)
        results = (r.get("tests") or {}).get("results", [])
        records[r["id"]] = {t.get("item") or "<module>": t["passed"] for t in results}
    return records


def test_verdict_finds_the_same_items_as_pytest_and_passes_the_same():
    corpus = cases()
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "suites.jsonl"
        path.write_text("".join(json.dumps({
            "id": c["id"],
            "completion": "```python\n" + c["program"] + "```",
            "tests": [{"kind": c["kind"], "code": c["code"]}],
        }) + "\n" for c in corpus))
        judged = verdict_items(path)
    mismatches = []
    total = 0
    for case in corpus:
        native = pytest_items(case)
        ours = judged[case["id"]]
        total += len(native)
        if native == {"<module>": False}:
            # A collection error: pytest reports the module; verdict fails each item the
            # module's source has (so a broken collection never raises a pass fraction).
            if not ours or any(ours.values()):
                mismatches.append(f"{case['id']}: pytest could not collect, verdict {ours}")
            continue
        if native != ours:
            mismatches.append(f"{case['id']}:\n  pytest  {native}\n  verdict {ours}")
    assert not mismatches, "\n".join(mismatches)
    assert total >= 40
