# verdict's side of a Python plug-in call (src/plugins/python.rs). Runs in verdict's embedded
# interpreter; turns one call of the user's function, in any calling convention, into one
# ("ok", score, details_json) | ("skip", 0.0, reason) | ("error", 0.0, message) per input,
# and never lets an exception out.
import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
import traceback


class VerdictTimeout(BaseException):
    """Raised asynchronously in a plug-in call that overran its timeout. A BaseException, so
    `except Exception:` in the plug-in does not swallow it."""


EXPECTED = "return a float in [0, 1] or {'score': float, 'details': dict}"


def load_file(path, name):
    """Import the file at `path` as module `verdict_plugin_<name>`; its directory joins
    sys.path so it can import its neighbours."""
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = "verdict_plugin_" + name.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_module(name):
    return importlib.import_module(name)


def _error(message):
    return ("error", 0.0, message)


def _describe(value):
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"a {type(value).__name__} ({text})"


def _one(result):
    if result is None:
        return ("skip", 0.0, "the function returned None (does not apply)")
    if isinstance(result, bool):
        return _error(f"the function returned {_describe(result)}; {EXPECTED}")
    if isinstance(result, (int, float)):
        score, details = float(result), {}
    elif isinstance(result, dict):
        if "score" not in result:
            return _error(f"the function returned a dict without 'score'; {EXPECTED}")
        score = result["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            return _error(f"the function returned a 'score' that is {_describe(score)}; {EXPECTED}")
        score = float(score)
        if "details" in result:
            details = result["details"]
        else:
            details = {k: v for k, v in result.items() if k != "score"}
        if details is None:
            details = {}
        if not isinstance(details, dict):
            return _error(f"the function returned 'details' that are {_describe(details)}, not a dict")
    else:
        try:
            score = float(result)  # numpy and torch scalars
        except Exception:
            return _error(f"the function returned {_describe(result)}; {EXPECTED}")
        details = {}
    if not math.isfinite(score):
        return _error(f"the function returned the score {score}, which is not a finite number")
    try:
        text = json.dumps(details, allow_nan=False, default=str)
    except (ValueError, TypeError, RecursionError) as e:
        return _error(f"the function returned details that are not JSON: {e}")
    return ("ok", score, text)


def _raised(e):
    if isinstance(e, VerdictTimeout):
        return "the call was interrupted at its timeout"
    frames = traceback.extract_tb(e.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    message = str(e)
    if len(message) > 500:
        message = message[:497] + "..."
    return f"the function raised {type(e).__name__}: {message}{where}"


def _batch(out, n):
    if isinstance(out, (list, tuple)) and len(out) == n:
        return [_one(r) for r in out]
    return [_error(f"the batch function returned {_describe(out)}; expected a list of {n} results")] * n


_PARAMETERS = {}


def _named_parameters(function):
    """The keyword-passable parameter names of `function` other than prompts/completions."""
    key = id(function)
    if key not in _PARAMETERS:
        try:
            params = inspect.signature(function).parameters.values()
            names = [
                p.name
                for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.name not in ("prompts", "completions")
            ]
        except (TypeError, ValueError):
            names = []
        _PARAMETERS[key] = names
    return _PARAMETERS[key]


def _ground_truth(rollout):
    if "ground_truth" in rollout:
        return rollout["ground_truth"]
    reward_model = rollout.get("reward_model")
    if isinstance(reward_model, dict) and "ground_truth" in reward_model:
        return reward_model["ground_truth"]
    return rollout.get("answer")


def call(function, style, batch, inputs_json):
    inputs = json.loads(inputs_json)
    n = len(inputs)
    try:
        if style == "trl":
            rollouts = [i["rollout"] for i in inputs]
            columns = {}
            for r in rollouts:
                for key in r:
                    if key not in ("prompt", "completion", "id"):
                        columns.setdefault(key, None)
            # Columns the function names but no rollout of this batch has are lists of None,
            # so the result does not depend on how calls were batched.
            for key in _named_parameters(function):
                columns.setdefault(key, None)
            kwargs = {key: [r.get(key) for r in rollouts] for key in columns}
            out = function(
                prompts=[r.get("prompt", "") for r in rollouts],
                completions=[r.get("completion", "") for r in rollouts],
                **kwargs,
            )
            return _batch(out, n)
        if style == "verl":
            results = []
            for i in inputs:
                r = i["rollout"]
                results.append(
                    _one(
                        function(
                            r.get("data_source", ""),
                            r.get("completion", ""),
                            _ground_truth(r),
                            r.get("extra_info"),
                        )
                    )
                )
            return results
        if batch:
            return _batch(function(inputs), n)
        return [_one(function(i)) for i in inputs]
    except BaseException as e:  # noqa: B036 - SystemExit, KeyboardInterrupt and our timeout too
        return [_error(_raised(e))] * n
