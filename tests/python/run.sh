#!/usr/bin/env bash
# The Python tests:
#   1. the grpcio client test (tests/python): a client that is not ours, with stubs generated
#      from proto/ by grpcio-tools, against `verdict serve`;
#   2. the `verdict` Python package (python/): built into the venv with `maturin develop`, then
#      its pytest suite (python/tests): in-process scoring, the gRPC client, the TRL and verl
#      adapters, and the HTTP/JSON gateway of a running `verdict serve`.
# Builds `verdict` unless $VERDICT_BIN is set; the venv is $VERDICT_PY_VENV or ./.venv, with
# everything from PyPI (tests/python/requirements.txt, maturin included).
#
#   bash tests/python/run.sh            # from anywhere
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VERDICT_PY_VENV:-$root/.venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/python/requirements.txt"

stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$root/proto" \
    --python_out="$stubs" --grpc_python_out="$stubs" "$root/proto/verdict/v1/reward.proto"
# Regular packages, so that in this test `verdict.v1` is the generated stubs even where the
# `verdict` Python package is installed in the venv (a namespace package would lose to it).
touch "$stubs/verdict/__init__.py" "$stubs/verdict/v1/__init__.py"

if [ -z "${VERDICT_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet --bin verdict)
    VERDICT_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/verdict
fi
export VERDICT_BIN
PYTHONPATH="$stubs" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python"

# maturin sets PYO3_BUILD_EXTENSION_MODULE itself and reuses Cargo's target directory.
(cd "$root/python" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    "$venv/bin/maturin" develop --quiet --locked)
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests"
