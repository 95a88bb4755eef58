#!/usr/bin/env bash
# The end-to-end run of the `tiny` preset on the CPU: data → pretrain → SFT → GRPO against a
# local `verdict serve`, then the held-out pass rate before/after and the time split.
#
#   trainer/scripts/grpo-e2e.sh [RUN_DIR]        (default runs/tiny)
#
# Needs `verdict-trainer` and `verdict` built (VERDICT_TRAINER / VERDICT_BIN, else
# $CARGO_TARGET_DIR/debug or target/debug) and `verdict runtime install` done once. Stages
# resume from their checkpoints, so a second call only redoes what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
run=${1:-runs/tiny}
target=${CARGO_TARGET_DIR:-$here/../target}
T=${VERDICT_TRAINER:-$target/debug/verdict-trainer}
export VERDICT_BIN=${VERDICT_BIN:-$target/debug/verdict}
config=$here/configs/tiny.json
mkdir -p "$run"
start=$(date +%s)
[ -f "$run/tokenizer.json" ] || "$T" data --config "$config" --run-dir "$run" > "$run/data.json"
"$T" pretrain --config "$config" --run-dir "$run" > "$run/pretrain.json"
"$T" sft --config "$config" --run-dir "$run" > "$run/sft.json"
echo "data + pretrain + sft: $(( $(date +%s) - start )) s" >&2
g=$(date +%s)
"$T" grpo --config "$config" --run-dir "$run" > "$run/grpo.json"
echo "grpo: $(( $(date +%s) - g )) s; curve: $run/grpo/reward.svg, report: $run/grpo.json" >&2
python3 - "$run/grpo.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for p in r["heldout"]:
    print(f"step {p['step']:>4}: held-out pass@1 (T=1, {p['samples']}/problem) {p['pass_rate']:.3f}"
          f"  greedy {p['greedy_pass_rate']:.3f}  mean reward {p['mean_reward']:.3f}")
print(f"wall {r['wall_s']:.0f} s: generating {r['generate_s']:.0f} s, waiting for rewards "
      f"{r['reward_wait_s']:.0f} s, updating {r['update_s']:.0f} s, held-out evaluation {r['eval_s']:.0f} s")
PY
