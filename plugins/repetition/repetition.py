"""A verdict plug-in: the n-gram repetition penalty (a completion that keeps saying the same
thing scores lower), as a WebAssembly component.

Build it with `verdict plugin build plugins/repetition/repetition.py -o repetition.wasm`
(componentize-py, pinned in sandbox/runtime.lock), then declare it in verdict.toml:

    [plugins.repetition]
    wasm = "repetition.wasm"

    [[verifier]]
    kind = "repetition"
    ngram = 3           # words per n-gram (default 3)
    max_penalty = 1.0   # score = 1 - max_penalty * (share of repeated n-grams)

It implements `verdict:plugin/verifier@0.1.0` (wit/plugin.wit): componentize-py looks for a
class named `Verifier` with a `verify` method.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import verifier


def _setting(settings, key, default, kinds, low, high):
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        raise Err(f"`{key}` must be a number in [{low}, {high}], got {value!r}")
    return value


class Verifier(wit_world.exports.Verifier):
    def verify(self, settings, rollout, findings):
        try:
            settings = json.loads(settings) if settings else {}
        except ValueError as e:
            raise Err(f"settings are not JSON: {e}")
        n = _setting(settings, "ngram", 3, int, 1, 32)
        max_penalty = float(_setting(settings, "max_penalty", 1.0, (int, float), 0, 1))
        words = rollout.completion.lower().split()
        total = len(words) - n + 1
        if total <= 0:
            return verifier.Verdict(score=1.0, details=json.dumps({"ngrams": 0}))
        unique = len({tuple(words[i : i + n]) for i in range(total)})
        repeated = 1.0 - unique / total
        score = max(0.0, 1.0 - max_penalty * repeated)
        details = {"ngram": n, "ngrams": total, "unique": unique, "repeated": round(repeated, 6)}
        return verifier.Verdict(score=score, details=json.dumps(details))
