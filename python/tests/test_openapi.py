"""schemathesis (PyPI, the real tool) against docs/openapi.yaml and a live `verdict serve`: no
server error and no mismatch between what the description promises and what the gateway does.
Bounded in examples and seeded, so a run is the same run each time; the two behaviours by design
that its generic checks would call failures are configured in schemathesis.toml (the repository
root), each with its reason."""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_gateway_matches_its_openapi_description(server):
    st = shutil.which("st", path=os.path.dirname(sys.executable))
    assert st, "schemathesis is installed from tests/python/requirements.txt"
    run = subprocess.run(
        [st, "run", str(ROOT / "docs/openapi.yaml"), "--url", server.http,
         "--checks", "all", "--max-examples", "25", "--workers", "1",
         "--seed", "1", "--request-timeout", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    # Every operation of the description was exercised.
    assert "Tested: 4" in report, report
