"""Checks the host-side assertion guard (src/sandbox/guard.rs) against the harness's own.

    python3 tests/python/guard_equivalence.py PAIRS.json

PAIRS.json is a JSON list of [original, rewritten-by-the-host] pairs. For each, the rewritten
code must parse to exactly the AST that the harness's `_Guard` transformer (the code between the
`guard: begin`/`guard: end` markers of sandbox/harness.py) makes of the original. Exits 1 and
prints every mismatch otherwise. Called by tests/it/guard.rs.
"""

import ast
import json
import pathlib
import sys

HARNESS = pathlib.Path(__file__).resolve().parents[2] / "sandbox" / "harness.py"


def load_guard():
    source = HARNESS.read_text()
    begin = source.index("# --- guard: begin")
    end = source.index("# --- guard: end")
    namespace = {"ast": ast}
    exec(compile(source[begin:end], str(HARNESS), "exec"), namespace)
    return namespace["_Guard"]


def main():
    guard = load_guard()
    pairs = json.loads(pathlib.Path(sys.argv[1]).read_text())
    bad = 0
    for original, rewritten in pairs:
        expected = ast.dump(ast.fix_missing_locations(guard().visit(ast.parse(original))))
        actual = ast.dump(ast.parse(rewritten))
        if expected != actual:
            bad += 1
            print(f"MISMATCH\n--- original\n{original}\n--- host\n{rewritten}\n"
                  f"--- expected AST\n{expected}\n--- host AST\n{actual}\n")
        elif len(original.splitlines()) != len(rewritten.splitlines()):
            bad += 1
            print(f"LINE COUNT\n--- original\n{original}\n--- host\n{rewritten}\n")
    print(f"{len(pairs) - bad}/{len(pairs)} equivalent")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
