#!/usr/bin/env bash
# The Python grpcio client test: builds `verdict` (unless $VERDICT_BIN is set), makes a venv with
# grpcio, grpcio-tools, grpcio-reflection and pytest, generates stubs from proto/ and runs pytest,
# which starts `verdict serve` on a free port.
#
#   bash tests/python/run.sh            # from anywhere; venv in $VERDICT_PY_VENV or ./.venv
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

if [ -z "${VERDICT_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet --bin verdict)
    VERDICT_BIN=${CARGO_TARGET_DIR:-$root/target}/debug/verdict
fi
export VERDICT_BIN
PYTHONPATH="$stubs" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python"
