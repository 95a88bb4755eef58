"""A Hugging Face `datasets` dataset, scored through the TRL and verl adapters as those trainers
hand it over.

Arrow gives every row every column and every struct every field seen anywhere in its column,
`None` where a row or a test lacks it: one `"timing": true` in one test makes `timing` a field
of every test of every row, a call test's `expected` makes `expected` a field of every assert
and stdio test, and so on. verdict reads such a `None` as absent, except where the test's kind
uses the field as a value (a call test's `expected: None` is Python's `None`). No row here may
come back `invalid_input`, and each row's wrong completion must score below its correct one.

The rows go through `Dataset.from_list` and through a JSONL file read by
`load_dataset("json")` (with inferred and with stated features); see `LOADERS`.
"""

import json
import math
import os
import warnings

# Everything here is local: never reach for the Hub.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets  # noqa: E402
import pytest  # noqa: E402

import verdict  # noqa: E402
import verdict.trl  # noqa: E402
import verdict.verl  # noqa: E402
from test_trl import FakeTrainerHooks, call_like_trl  # noqa: E402

ADD = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG_ADD = "```python\ndef add(a, b):\n    return a - b\n```"
ECHO_SUM = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
WRONG_SUM = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"
SAFE_DIV = (
    "```python\ndef safe_div(a, b):\n    if b == 0:\n        return None\n    return a // b\n```"
)
# Right on every test but the one whose expected value is None.
ZERO_DIV = "```python\ndef safe_div(a, b):\n    if b == 0:\n        return 0\n    return a // b\n```"
IS_EVEN = "```python\ndef is_even(n):\n    return n % 2 == 0\n```"
WRONG_EVEN = "```python\ndef is_even(n):\n    return n % 2 == 1\n```"
SPLIT = "```python\nn = int(input())\nprint(1, n - 1)\n```"
WRONG_SPLIT = "```python\nn = int(input())\nprint(1, n)\n```"
THIRD = "```python\nprint(1 / 3)\n```"
WRONG_THIRD = "```python\nprint(0.3)\n```"

# One problem per row, each with a correct and a wrong completion. Each row names only what it
# has; Arrow fills in the rest. Every row carries every top-level column (as a real dataset's
# rows do; `Dataset.from_list` takes its columns from the first row).
PROBLEMS = [
    {
        # Assert tests as objects: Arrow adds stdin, stdout, fn, args, expected, timing, compare
        # and checker to them, all null.
        "row": {
            "prompt": "Write add(a, b).",
            "tests": [
                {"kind": "assert", "code": "assert add(1, 2) == 3"},
                {"kind": "assert", "code": "assert add(-1, 1) == 0"},
            ],
            "test_list": None,
            "entry_point": "add",
            "reference": None,
            "limits": {"time_ms": 10000},  # memory_mb: null, from the next row's limits
        },
        "right": ADD,
        "wrong": WRONG_ADD,
    },
    {
        # stdio tests, one of them a timing test, with a reference as the timing baseline.
        "row": {
            "prompt": "Read two integers and print their sum.",
            "tests": [
                {"kind": "stdio", "stdin": "2 3\n", "stdout": "5\n"},
                {"kind": "stdio", "stdin": "1000000 2000000\n", "stdout": "3000000\n", "timing": True},
            ],
            "test_list": None,
            "entry_point": None,
            "reference": "a, b = map(int, input().split())\nprint(a + b)\n",
            "limits": {"time_ms": None, "memory_mb": 256},
        },
        "right": ECHO_SUM,
        "wrong": WRONG_SUM,
    },
    {
        # Call tests; one expects None, legitimately: that null is a value, not an absence.
        "row": {
            "prompt": "Write safe_div(a, b): a // b, or None when b is 0.",
            "tests": [
                {"kind": "call", "fn": "safe_div", "args": [7, 2], "expected": 3},
                {"kind": "call", "fn": "safe_div", "args": [1, 0], "expected": None},
                {"kind": "call", "fn": "safe_div", "args": [9, 3], "expected": 3, "timing": False},
            ],
            "test_list": None,
            "entry_point": "safe_div",
            "reference": None,
            "limits": None,
        },
        "right": SAFE_DIV,
        "wrong": ZERO_DIV,
    },
    {
        # MBPP: assert statements as strings in `test_list`, no `tests` at all.
        "row": {
            "prompt": "Write is_even(n).",
            "tests": None,
            "test_list": ["assert is_even(4)", "assert not is_even(3)", "assert is_even(0)"],
            "entry_point": None,
            "reference": None,
            "limits": None,
        },
        "right": IS_EVEN,
        "wrong": WRONG_EVEN,
    },
    {
        # A special judge, and a float answer with its own tolerance (`compare` is a struct
        # whose other fields Arrow makes null).
        "row": {
            "prompt": "Read n; print two positive integers that sum to n.",
            "tests": [
                {
                    "kind": "stdio",
                    "stdin": "10\n",
                    "stdout": "1 9\n",
                    "checker": "def check(input, output, expected):\n"
                    "    a, b = map(int, output.split())\n"
                    "    return a > 0 and b > 0 and a + b == int(input)\n",
                },
            ],
            "test_list": None,
            "entry_point": None,
            "reference": None,
            "limits": None,
        },
        "right": SPLIT,
        "wrong": WRONG_SPLIT,
    },
    {
        "row": {
            "prompt": "Print 1/3.",
            "tests": [{"kind": "stdio", "stdout": "0.333333333\n", "compare": {"abs_tol": 1e-6}}],
            "test_list": None,
            "entry_point": None,
            "reference": None,
            "limits": None,
        },
        "right": THIRD,
        "wrong": WRONG_THIRD,
    },
]


def _from_json(tmp_path, rows, features=None):
    path = tmp_path / "train.jsonl"
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return datasets.load_dataset(
        "json", data_files=str(path), split="train", features=features, cache_dir=str(tmp_path / "cache")
    )


# How a dataset is made: `from_list`; `load_dataset("json")` with the types it infers (datasets
# 5 reads objects of differing fields as its `Json` type and keeps them as written; earlier
# versions make structs and fill nulls); and `load_dataset("json", features=...)` with the
# struct types of the columns stated, as a dataset card's `features` does, which fills nulls.
LOADERS = ["from_list", "load_dataset_json", "load_dataset_json_features"]


def _dataset(loader, tmp_path, rows):
    if loader == "from_list":
        return datasets.Dataset.from_list(rows)
    features = datasets.Dataset.from_list(rows).features if loader.endswith("_features") else None
    return _from_json(tmp_path, rows, features)


@pytest.fixture(params=LOADERS)
def trl_dataset(request, tmp_path):
    return _dataset(request.param, tmp_path, [p["row"] for p in PROBLEMS])


@pytest.mark.parametrize("loader", ["from_list", "load_dataset_json_features"])
def test_arrow_fills_the_nulls_this_test_is_about(loader, tmp_path):
    ds = _dataset(loader, tmp_path, [p["row"] for p in PROBLEMS])
    add, stdio, call, mbpp = ds[0], ds[1], ds[2], ds[3]
    # An assert test has every field any test has, null where it has none.
    assert add["tests"][0]["timing"] is None and add["tests"][0]["expected"] is None
    assert add["tests"][0]["stdout"] is None and add["tests"][0]["checker"] is None
    assert stdio["tests"][1]["timing"] is True and stdio["tests"][0]["expected"] is None
    # The null verdict must keep: a call test expecting None.
    assert call["tests"][1]["kind"] == "call" and call["tests"][1]["expected"] is None
    assert mbpp["tests"] is None and add["test_list"] is None
    assert add["limits"] == {"time_ms": 10000, "memory_mb": None}


def _assert_judged(rewards, outcomes, caught):
    messages = [str(w.message) for w in caught if "verdict" in str(w.message)]
    assert "invalid_input" not in outcomes, (outcomes, messages)
    assert not messages, messages
    for i, p in enumerate(PROBLEMS):
        right, wrong = rewards[2 * i], rewards[2 * i + 1]
        assert outcomes[2 * i] == "passed", (i, outcomes, rewards)
        assert outcomes[2 * i + 1] == "failed", (i, outcomes, rewards)
        assert right is not None and wrong is not None, (i, rewards)
        assert right > 0.8, (i, rewards)
        assert wrong < right, (i, rewards)


def test_trl_scores_every_row_of_a_dataset(scorer, trl_dataset):
    # As TRL hands a batch over: the rows as the dataset gives them, each column a keyword list.
    rows = [trl_dataset[i] for i in range(len(trl_dataset))]
    completions = []
    for p in PROBLEMS:
        completions += [p["right"], p["wrong"]]
    # call_like_trl repeats each row twice (num_generations): each pair is right, wrong.
    hooks = FakeTrainerHooks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rewards, hooks = call_like_trl(verdict.trl.reward_function(scorer), rows, completions, hooks)
    _assert_judged(rewards, hooks.extra["verdict_outcome"], caught)
    assert not any(math.isnan(r) for r in rewards)


def test_trl_async_variant_on_a_dataset(scorer):
    rows = list(datasets.Dataset.from_list([p["row"] for p in PROBLEMS]))
    completions = [c for p in PROBLEMS for c in (p["right"], p["wrong"])]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rewards, hooks = call_like_trl(
            verdict.trl.reward_function(scorer, asynchronous=True), rows, completions
        )
    _assert_judged(rewards, hooks.extra["verdict_outcome"], caught)


def _verl_rows():
    """The same problems as a verl parquet row: `reward_model.ground_truth` holds the tests (a
    list of test objects; MBPP's assert strings become assert objects, since one Arrow column
    cannot mix strings and structs), `extra_info` the dataset's other fields."""
    out = []
    for i, p in enumerate(PROBLEMS):
        row = p["row"]
        tests = row["tests"] or [{"kind": "assert", "code": c} for c in row["test_list"]]
        extra = {"split": "train", "index": i, "question": row["prompt"]}
        if row["entry_point"] is not None:
            extra["entry_point"] = row["entry_point"]
        if row["reference"] is not None:
            extra["reference"] = row["reference"]
        out.append(
            {
                "data_source": "verdict/mixed",
                "prompt": [{"role": "user", "content": row["prompt"]}],
                "ability": "code",
                "reward_model": {"style": "rule", "ground_truth": tests},
                "extra_info": extra,
            }
        )
    return out


@pytest.fixture(params=LOADERS)
def verl_dataset(request, tmp_path):
    return request.param, _dataset(request.param, tmp_path, _verl_rows())


@pytest.fixture()
def verl_scorer(scorer):
    verdict.verl.use(scorer)
    yield
    verdict.verl.use(None)


def test_verl_scores_every_row_of_a_dataset(verl_scorer, verl_dataset):
    loader, ds = verl_dataset
    rows = [ds[i] for i in range(len(ds))]
    if loader != "load_dataset_json":
        # Arrow filled the gaps: every row's extra_info has an entry_point and a reference,
        # null in most; every test has every field.
        assert any(r["extra_info"]["entry_point"] is None for r in rows)
        assert rows[0]["extra_info"]["reference"] is None
        assert rows[0]["reward_model"]["ground_truth"][0]["timing"] is None
        assert rows[2]["reward_model"]["ground_truth"][1]["expected"] is None
    for i, (row, p) in enumerate(zip(rows, PROBLEMS)):
        source, gt, extra = row["data_source"], row["reward_model"]["ground_truth"], row["extra_info"]
        right = verdict.verl.compute_score(source, p["right"], gt, extra)
        wrong = verdict.verl.compute_score(source, p["wrong"], gt, extra)
        assert right["outcome"] == "passed" and right["acc"] == 1.0, (i, right)
        assert right["score"] > 0.8, (i, right)
        assert wrong["outcome"] == "failed" and wrong["acc"] == 0.0, (i, wrong)
        assert wrong["score"] < right["score"], (i, right, wrong)

    # The batch reward manager's signature, every response of the step at once.
    n = len(rows)
    scores = verdict.verl.compute_score_batch(
        [r["data_source"] for r in rows] * 2,
        [p["right"] for p in PROBLEMS] + [p["wrong"] for p in PROBLEMS],
        [r["reward_model"]["ground_truth"] for r in rows] * 2,
        [r["extra_info"] for r in rows] * 2,
    )
    assert [s["outcome"] for s in scores] == ["passed"] * n + ["failed"] * n, scores
    assert all(scores[i]["score"] > scores[n + i]["score"] for i in range(n)), scores
