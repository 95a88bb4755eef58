"""The verdict harness: what runs inside the WebAssembly sandbox.

componentize-py imports this module at build time and snapshots the initialized interpreter, so
everything at module level (the stdlib imports below included) costs nothing per run. The host
creates a fresh instance from that snapshot for every rollout and calls, for each of its tests:

    prepare(job)   compile program, setup and test; decode arguments; reseed `random`
    execute()      run program, setup, test  (the only call in which candidate code runs)
    collect()      call tests only: canonical JSON of the returned value

The host measures fuel around `execute` to attribute cost to the candidate. Results are
decided on the host: stdout of stdio tests and the canonical value of call tests are compared
there; expected outputs never enter the guest. See PROTOCOL.md.
"""

import ast
import builtins
import json
import os
import sys

import wit_world
from componentize_py_types import Err

# Modules solutions commonly import: importing them here puts them in the snapshot, so an
# `import` in a candidate program is a dictionary lookup rather than a file read.
import array  # noqa: F401
import bisect  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import io
import itertools  # noqa: F401
import math  # noqa: F401
import operator  # noqa: F401
import random
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import textwrap  # noqa: F401
import typing  # noqa: F401
import unicodedata  # noqa: F401
import cmath  # noqa: F401
import numbers  # noqa: F401
import enum  # noqa: F401
import abc  # noqa: F401
import queue  # noqa: F401

_MESSAGE_CAP = 2000
_DEPTH_CAP = 200

# Pristine references, captured before any candidate code can patch anything.
_PRISTINE_BUILTINS = dict(builtins.__dict__)
_type = type
_isinstance = isinstance
_len = len
_repr = repr
_str = str
_BaseException = BaseException
_SystemExit = SystemExit
_AssertionError = AssertionError
_stdout = sys.stdout
_stderr = sys.stderr
_stdin = sys.stdin
_FileIO = io.FileIO
_BufferedReader = io.BufferedReader
_BufferedWriter = io.BufferedWriter
_TextIOWrapper = io.TextIOWrapper
_recursion_limit = sys.getrecursionlimit()
_set_int_max_str_digits = sys.set_int_max_str_digits
_float_repr = float.__repr__
_int_repr = int.__repr__
_json_loads = json.loads
_encode_str = json.encoder.encode_basestring  # the C implementation: no Python globals involved
_dict_items = dict.items
_dict = dict
_exec = exec
_delattr = delattr
_enumerate = enumerate
_ValueError = ValueError
_TypeError = TypeError
_NameError = NameError
_sys_dict = sys.__dict__
_dict_clear = dict.clear
_dict_update = dict.update
_builtins_dict = builtins.__dict__
_sys = sys


_io_open = io.open
_fstat = os.fstat


def _open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,
          opener=None):
    """`open`, except that a file object on fd 0, 1 or 2 never closes the fd: `open(0).read()`
    is a common way to read stdin, and the next test of the rollout needs fd 0 open."""
    if _type(file) is int and 0 <= file <= 2:
        closefd = False
    return _io_open(file, mode, buffering, encoding, errors, newline, closefd, opener)


# The builtins every program sees (and the `builtins` module is reset to before each test).
_RUN_BUILTINS = dict(_PRISTINE_BUILTINS, open=_open)


def _restore_builtins():
    """Undo whatever the program did to the `builtins` module (harness code relies on it)."""
    _dict_clear(_builtins_dict)
    _dict_update(_builtins_dict, _RUN_BUILTINS)


def _stdio_intact():
    """Whether fds 0 and 1 are still open (a program can close them with `os.close`)."""
    try:
        _fstat(0)
        _fstat(1)
        return True
    except _BaseException:
        return False


# The kind of the failure `prepare` reports when an earlier test of the rollout closed fd 0 or
# 1: the host then runs the test again in a fresh instance (see PROTOCOL.md).
_SPENT = "VerdictInstanceSpent"

# Plain data: values of these exact types (not subclasses) have behaviour nobody can override.
_SCALARS = frozenset([type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis)])
_CONTAINERS = frozenset([list, tuple, set, frozenset, dict])

# Hooks a program could use to skip or rewrite the harness's own code; removed from `sys` before
# any candidate code runs (each run is a fresh instance, so nothing has to be put back).
_SYS_HOOKS = ("settrace", "setprofile", "monitoring", "_current_frames")


def _plain(value, depth=0):
    """True when `value` is built only from exact builtin data types (or classes)."""
    t = _type(value)
    if t in _SCALARS:
        return True
    if depth > _DEPTH_CAP:
        return False
    if t is list or t is tuple or t is set or t is frozenset:
        for item in value:
            if not _plain(item, depth + 1):
                return False
        return True
    if t is dict:
        for k, v in _dict_items(value):
            if not _plain(k, depth + 1) or not _plain(v, depth + 1):
                return False
        return True
    if t is type:
        # A class whose metaclass is exactly `type`: comparisons on it are identity.
        return True
    return False


class _Impure(_BaseException):
    """Raised when a test compares or tests a value of a user-defined type.

    Deriving from BaseException keeps `except Exception` in candidate code from swallowing it.
    """


def _need_plain(value):
    if not _plain(value):
        raise _Impure(f"test used a value of non-builtin type {_type(value).__name__}")
    return value


def _v_truth(value):
    return _need_plain(value)


def _v_assert(value, *msg):
    if not _need_plain(value):
        raise _AssertionError(*msg)


def _v_cmp(ops, *operands):
    # Evaluated eagerly (all operands), then compared with builtin semantics.
    left = operands[0]
    for i, op in _enumerate(ops):
        right = operands[i + 1]
        if op == "is":
            r = left is right
        elif op == "is not":
            r = left is not right
        else:
            _need_plain(left)
            _need_plain(right)
            if op == "==":
                r = left == right
            elif op == "!=":
                r = left != right
            elif op == "<":
                r = left < right
            elif op == "<=":
                r = left <= right
            elif op == ">":
                r = left > right
            elif op == ">=":
                r = left >= right
            elif op == "in":
                r = left in right
            else:
                r = left not in right
        if not r:
            return False
        left = right
    return True


def _v_bin(op, a, b):
    _need_plain(a)
    _need_plain(b)
    return _BINOPS[op](a, b)


def _v_unary(op, a):
    _need_plain(a)
    return _UNARY[op](a)


_BINOPS = {
    "Add": operator.add, "Sub": operator.sub, "Mult": operator.mul, "Div": operator.truediv,
    "FloorDiv": operator.floordiv, "Mod": operator.mod, "Pow": operator.pow,
    "LShift": operator.lshift, "RShift": operator.rshift, "BitOr": operator.or_,
    "BitXor": operator.xor, "BitAnd": operator.and_, "MatMult": operator.matmul,
}
_UNARY = {"USub": operator.neg, "UAdd": operator.pos, "Not": operator.not_,
          "Invert": operator.invert}
# --- guard: begin (mirrored on the host by src/sandbox/guard.rs; tests/it/guard.rs compares) ---
_CMP_NAMES = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}


def _helper(name):
    return ast.Name(id=name, ctx=ast.Load())


class _Guard(ast.NodeTransformer):
    """Rewrites test code so user-defined dunders (`__eq__`, `__bool__`, `__sub__`, …) cannot
    decide an assertion: comparisons, arithmetic, `not` and assert conditions only accept plain
    builtin data."""

    def visit_Assert(self, node):
        self.generic_visit(node)
        args = [node.test] + ([node.msg] if node.msg is not None else [])
        call = ast.Call(func=_helper("__verdict_assert"), args=args, keywords=[])
        return ast.copy_location(ast.Expr(value=call), node)

    def visit_Compare(self, node):
        self.generic_visit(node)
        ops = ast.Tuple(elts=[ast.Constant(_CMP_NAMES[type(o)]) for o in node.ops], ctx=ast.Load())
        call = ast.Call(func=_helper("__verdict_cmp"), args=[ops, node.left] + node.comparators,
                        keywords=[])
        return ast.copy_location(call, node)

    def visit_BinOp(self, node):
        self.generic_visit(node)
        call = ast.Call(func=_helper("__verdict_bin"),
                        args=[ast.Constant(type(node.op).__name__), node.left, node.right],
                        keywords=[])
        return ast.copy_location(call, node)

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        call = ast.Call(func=_helper("__verdict_unary"),
                        args=[ast.Constant(type(node.op).__name__), node.operand], keywords=[])
        return ast.copy_location(call, node)

    def _guard_test(self, node):
        self.generic_visit(node)
        node.test = ast.Call(func=_helper("__verdict_truth"), args=[node.test], keywords=[])
        return node

    visit_If = _guard_test
    visit_While = _guard_test
    visit_IfExp = _guard_test

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        node.values = [ast.Call(func=_helper("__verdict_truth"), args=[v], keywords=[])
                       for v in node.values]
        return node


# --- guard: end ---


def _canon(value, out, depth=0):
    """Appends the canonical JSON of a returned value to `out` (see PROTOCOL.md).

    Exact type checks only: an object of a user-defined type (even a subclass of int) has no
    canonical form, so it cannot pass a call test however its `__eq__` behaves. Written without
    the `json` module so nothing the program patched there is involved.
    """
    if depth > _DEPTH_CAP:
        raise _ValueError("value nested too deeply")
    t = _type(value)
    if value is None:
        out.append("null")
    elif t is bool:
        out.append("true" if value else "false")
    elif t is str:
        out.append(_encode_str(value))
    elif t is int:
        out.append('{"int":"')
        out.append(_int_repr(value))
        out.append('"}')
    elif t is float:
        out.append('{"float":"')
        out.append(_float_repr(value))
        out.append('"}')
    elif t is list or t is tuple:
        out.append("[")
        first = True
        for v in value:
            if not first:
                out.append(",")
            first = False
            _canon(v, out, depth + 1)
        out.append("]")
    elif t is dict:
        out.append('{"dict":[')
        first = True
        for k, v in _dict_items(value):
            if not first:
                out.append(",")
            first = False
            out.append("[")
            _canon(k, out, depth + 1)
            out.append(",")
            _canon(v, out, depth + 1)
            out.append("]")
        out.append("]}")
    elif t is set or t is frozenset:
        out.append('{"set":[')
        first = True
        for v in value:
            if not first:
                out.append(",")
            first = False
            _canon(v, out, depth + 1)
        out.append("]}")
    else:
        raise _TypeError(f"returned a value of type {t.__name__}, which has no canonical form")


def _failure(phase, exc):
    try:
        message = _str(exc)
    except _BaseException:
        message = "<unprintable exception>"
    return wit_world.Failure(phase=phase, kind=_type(exc).__name__,
                             message=message[:_MESSAGE_CAP])


def _text_stream(fd, write, like):
    """A new text stream on a WASI fd, configured like the interpreter's own `sys` stream.

    Each test gets new ones, so a program that closes or detaches `sys.stdout` (or leaves input
    in `sys.stdin`'s buffer) does not affect the next test of its rollout.
    """
    raw = _FileIO(fd, "w" if write else "r", closefd=False)
    if write:
        return _TextIOWrapper(_BufferedWriter(raw), encoding=like.encoding, errors=like.errors)
    return _TextIOWrapper(_BufferedReader(raw), encoding=like.encoding, errors=like.errors,
                          newline="\n")


class _State:
    """What `prepare` leaves for `execute` and `collect` (the current test of the instance)."""

    def __init__(self):
        self.job = None
        self.codes = []
        self.args = None
        self.result = None
        self.has_result = False
        self.streams = (_stdout, _stderr, _stdin)


_STATE = _State()



_COMPILED = {}


def _compile(source, name, phase, guard=False):
    # Tests of one rollout may share an instance: compile its program and setup once.
    key = (source, name, guard)
    code = _COMPILED.get(key)
    if code is None:
        code = _COMPILED[key] = _compile_uncached(source, name, phase, guard)
    return code


def _compile_uncached(source, name, phase, guard):
    try:
        if not guard:
            # Straight from source: no round trip through Python AST objects.
            return compile(source, name, "exec", dont_inherit=True)
        tree = ast.parse(source, filename=name, mode="exec")
        tree = ast.fix_missing_locations(_Guard().visit(tree))
        return compile(tree, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise _PrepareError(wit_world.Failure(
            phase=phase, kind=_type(exc).__name__,
            message=f"{exc.msg} (line {exc.lineno}, column {exc.offset})"[:_MESSAGE_CAP]))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise _PrepareError(_failure(phase, exc))


class _PrepareError(Exception):
    def __init__(self, failure):
        self.failure = failure


class WitWorld(wit_world.WitWorld):
    """The component's exports (see sandbox/wit/harness.wit)."""

    def prepare(self, job):
        st = _STATE
        st.job = job
        if not _stdio_intact():
            raise Err(wit_world.Failure(phase=wit_world.Phase.SETUP, kind=_SPENT,
                                        message="an earlier test closed fd 0 or 1"))
        try:
            st.codes = [(wit_world.Phase.PROGRAM, _compile(job.program, "<program>",
                                                           wit_world.Phase.PROGRAM))]
            if job.setup:
                st.codes.append((wit_world.Phase.SETUP, _compile(job.setup, "<setup>",
                                                                 wit_world.Phase.SETUP)))
            test = job.test
            if _isinstance(test, wit_world.Test_Assertion):
                st.codes.append((wit_world.Phase.TEST, _compile(test.value, "<test>",
                                                                wit_world.Phase.TEST, True)))
            elif _isinstance(test, wit_world.Test_Guarded):
                # Rewritten by the host already (src/sandbox/guard.rs): compile as is.
                st.codes.append((wit_world.Phase.TEST, _compile(test.value, "<test>",
                                                                wit_world.Phase.TEST)))
            elif _isinstance(test, wit_world.Test_Call):
                try:
                    args = _json_loads(test.value.args_json)
                except ValueError as exc:
                    raise _PrepareError(_failure(wit_world.Phase.TEST, exc))
                if _type(args) is not list:
                    raise _PrepareError(wit_world.Failure(
                        phase=wit_world.Phase.TEST, kind="TypeError",
                        message="call arguments must be a JSON array"))
                st.args = args
        except _PrepareError as exc:
            raise Err(exc.failure)
        # The host refilled WASI stdin with this test's input (empty unless it is a stdio test).
        stdin = _text_stream(0, False, _stdin) if _isinstance(test, wit_world.Test_Stdio) \
            else _stdin
        st.streams = (_text_stream(1, True, _stdout), _stderr, stdin)
        # Reseeding costs as much as the rest of `prepare`: only when the code names `random`.
        # (Code that reaches the module without naming it sees the snapshot's frozen state,
        # which is just as deterministic.)
        if "random" in job.program or "random" in job.setup or (
                _isinstance(test, (wit_world.Test_Assertion, wit_world.Test_Guarded))
                and "random" in test.value):
            random.seed(job.seed)
        return None

    def execute(self):
        # The tests of a rollout share this instance: first undo the previous program's changes
        # to builtins. From here on the harness uses only names it captured at import (`_dict`,
        # `_exec`, …), never a builtin the program could have replaced.
        _restore_builtins()
        st = _STATE
        job = st.job
        is_stdio = _isinstance(job.test, wit_world.Test_Stdio)
        g = {"__name__": "__main__" if is_stdio else "solution",
             "__builtins__": _dict(_RUN_BUILTINS)}
        _sys.stdout, _sys.stderr, _sys.stdin = st.streams
        _sys.setrecursionlimit(_recursion_limit)
        st.result = None
        st.has_result = False
        for hook in _SYS_HOOKS:
            if hook in _sys_dict:
                _delattr(_sys, hook)
        phase = wit_world.Phase.PROGRAM
        try:
            for phase, code in st.codes:
                if phase == wit_world.Phase.TEST:
                    # Test code sees pristine builtins through its own globals.
                    g = _dict(g)
                    g["__builtins__"] = _dict(_RUN_BUILTINS)
                    g["__verdict_assert"] = _v_assert
                    g["__verdict_cmp"] = _v_cmp
                    g["__verdict_bin"] = _v_bin
                    g["__verdict_unary"] = _v_unary
                    g["__verdict_truth"] = _v_truth
                _exec(code, g)
            if _isinstance(job.test, wit_world.Test_Call):
                phase = wit_world.Phase.TEST
                name = job.test.value.name
                if name not in g:
                    raise _NameError(f"function {name!r} is not defined")
                st.result = g[name](*st.args)
                st.has_result = True
        except _SystemExit as exc:
            code = exc.code
            status = wit_world.Status_Exit(code if _type(code) is int and -2**31 <= code < 2**31
                                           else (0 if code is None else 1))
            return self._flushed(status)
        except _Impure as exc:
            return self._flushed(wit_world.Status_Raised(wit_world.Failure(
                phase=wit_world.Phase.TEST, kind="AssertionError", message=_str(exc))))
        except _BaseException as exc:
            return self._flushed(wit_world.Status_Raised(_failure(phase, exc)))
        return self._flushed(wit_world.Status_Ok())

    @staticmethod
    def _flushed(status):
        # Buffered output must reach WASI stdout before the host reads the pipe.
        for stream in (_sys.stdout, _sys.stderr) + _STATE.streams[:2] + (_stdout, _stderr):
            try:
                stream.flush()
            except _BaseException:
                pass
        return status

    def collect(self):
        st = _STATE
        if not st.has_result:
            raise Err("no value was returned")
        try:
            _set_int_max_str_digits(0)
            out = []
            _canon(st.result, out)
            return "".join(out)
        except _BaseException as exc:
            raise Err(f"{_type(exc).__name__}: {_str(exc)}"[:_MESSAGE_CAP])


def _warm_up():
    """Exercise every path once at build time, so the snapshot holds a warmed interpreter:
    lazily created types (the `ast` node classes, the parser's tables), caches and interned
    strings are then part of the image rather than rebuilt in every run."""
    world = WitWorld()
    program = (
        "import sys, math, collections\n"
        "def f(xs, k=1):\n"
        "    '''doc'''\n"
        "    out = [x * k for x in xs if x % 2 == 0 or not x]\n"
        "    d = {str(i): i / 2 for i in range(3)}\n"
        "    s = {1, 2} | set(xs)\n"
        "    return out + sorted(s) if len(d) > 1 and True else (lambda y: y)(out)\n"
        "class C:\n"
        "    def m(self, a, *b, **c):\n"
        "        try:\n"
        "            return a[0] if a else None\n"
        "        except (IndexError, KeyError) as e:\n"
        "            raise ValueError(f'{e!r}') from e\n"
        "        finally:\n"
        "            pass\n"
    )
    tests = [
        wit_world.Test_Assertion(
            "def check(candidate):\n"
            "    assert candidate([1, 2, 3]) == [2, 1, 2, 3]\n"
            "    assert abs(candidate([4], 2)[0] - 8) < 1e-9, 'message'\n"
            "    assert not (candidate([]) != [1, 2]) and -1 < 0 <= 1\n"
            "    assert candidate([2]) is not None\n"
            "    x = 1 if candidate([0]) else 2\n"
            "check(f)\n"),
        wit_world.Test_Call(wit_world.CallTest(name="f", args_json='[[1, 2.5, "x", null, true], 1]')),
        wit_world.Test_Stdio(),
        wit_world.Test_Guarded("assert __verdict_cmp(('==',), f([2]), [2, 1, 2])\n"),
    ]
    for test in tests:
        try:
            world.prepare(wit_world.Job(program=program, setup="import math", test=test, seed=0))
            world.execute()
            if _isinstance(test, wit_world.Test_Call):
                world.collect()
        except _BaseException:
            pass
    # A value of every canonical kind, and failures of each kind.
    out = []
    _canon([None, True, 1, 2.5, "s", (1,), {"k": {1, 2}}, frozenset([3])], out)
    for bad in ["def f(:\n", "raise ValueError('x')\n", "import sys\nsys.exit(0)\n"]:
        try:
            world.prepare(wit_world.Job(program=bad, setup="", test=tests[2], seed=0))
            world.execute()
        except _BaseException:
            pass
    _COMPILED.clear()
    _STATE.__init__()
    random.seed(0)


_warm_up()
