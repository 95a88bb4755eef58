"""The verdict harness: what runs inside the WebAssembly sandbox.

componentize-py imports this module at build time and snapshots the initialized interpreter, so
everything at module level (the stdlib imports below included) costs nothing per run. Every
rollout gets two fresh instances of that snapshot, in two roles (see PROTOCOL.md):

    candidate   load(program, setup, main, seed)   run the candidate's program in fresh globals
                serve(request, limit)              one operation on it: call, getattr, next, …
    judge       judge(setup, test, names, ...)     run trusted test code; the names it takes
                                                   from the program are proxies (`_Handle`)
                                                   whose every use goes through the host
                                                   (`peer.forward`) to the candidate's `serve`

Only data crosses between the two (`_encode` / `_decode`): the judge rebuilds every value as a
genuine builtin object in an interpreter the candidate never touched, so its `==`, `abs`,
`math.isclose` and `assert` are the real ones. A candidate may patch anything in its own
instance, this file included: what it sends is a claim about its answer, never a verdict.
"""

import ast
import builtins
import gc
import importlib.machinery
import json
import marshal
import os
import sys
import types

import wit_world
from componentize_py_types import Err
from wit_world.imports import peer

# Modules solutions commonly import: importing them here puts them in the snapshot, so an
# `import` in a candidate program is a dictionary lookup rather than a file read.
import abc  # noqa: F401
import array  # noqa: F401
import bisect  # noqa: F401
import cmath  # noqa: F401
import collections
import copy  # noqa: F401
import dataclasses
import datetime  # noqa: F401
import decimal
import enum  # noqa: F401
import fractions
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import io
import itertools  # noqa: F401
import math
import numbers  # noqa: F401
import operator
import queue  # noqa: F401
import random
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import textwrap
import typing  # noqa: F401
import unicodedata  # noqa: F401
# The rest of the modules the stdlib modules solutions use most import (cheap to keep: they are
# part of the snapshot, not re-made per instance); see PROTOCOL.md, "The standard library".
import _pylong  # noqa: F401  (int <-> str beyond ~9,000 digits)
import base64  # noqa: F401
import calendar  # noqa: F401
import contextlib  # noqa: F401
import csv  # noqa: F401
import difflib  # noqa: F401
import fnmatch  # noqa: F401
import graphlib  # noqa: F401
import html  # noqa: F401
import pickle  # noqa: F401
import pprint  # noqa: F401
import secrets  # noqa: F401
import shlex  # noqa: F401
import struct  # noqa: F401
import traceback  # noqa: F401
import urllib.parse  # noqa: F401
import uuid  # noqa: F401
import warnings

# componentize-py snapshots the interpreter after this module is imported, and the instance has
# no filesystem: a module not imported by then could not be imported at all. So every other
# pure-Python stdlib module is compiled now, its bytecode (marshal) kept in the snapshot, and
# run on first import by `_StdlibFinder` (first on `sys.meta_path`).
_SKIPPED_PACKAGES = frozenset([
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "venv",
    "__phello__", "site-packages",
])


def _stdlib_sources():
    # Where the build mounts the stdlib (`os` is frozen: its `__file__` is not a real path).
    root = os.path.dirname(textwrap.__file__)
    sources = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == "." else rel.split(os.sep)
        if parts and (parts[0] in _SKIPPED_PACKAGES or "tests" in parts or "test" in parts
                      or not os.path.exists(os.path.join(dirpath, "__init__.py"))):
            dirnames[:] = []
            continue
        dirnames.sort()
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            stem = filename[:-3]
            package = stem == "__init__"
            name = ".".join(parts if package else parts + [stem])
            if (not name or name in sys.modules or "-" in name
                    or name.partition(".")[0] not in sys.stdlib_module_names):
                continue
            path = os.path.join(dirpath, filename)
            with open(path, "rb") as f:
                source = f.read()
            try:
                code = compile(source, f"<stdlib {name}>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                continue
            sources[name] = (marshal.dumps(code), package)
    return sources


_STDLIB_SOURCES = _stdlib_sources()
if len(_STDLIB_SOURCES) < 200:
    raise RuntimeError(f"found the source of only {len(_STDLIB_SOURCES)} stdlib modules")


class _StdlibLoader:
    """Runs a stdlib module from the bytecode kept in the snapshot."""

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        name = module.__spec__.name
        compiled, _ = _STDLIB_SOURCES[name]
        exec(marshal.loads(compiled), module.__dict__)
        adapt = _WASI_ADAPTATIONS.get(name)
        if adapt is not None:
            adapt(module)


class _VirtualWait:
    """An event loop's selector in a sandbox without sockets: with no file registered, a wait
    for `timeout` seconds returns at once and moves the loop's clock on by `timeout` (its
    `time()` is the deterministic monotonic clock plus what it has waited), so `asyncio.sleep`
    is exact and costs no wall time. A wait with no timeout and nothing registered would block
    forever natively; here the loop spins until its fuel runs out (`timeout`, as natively)."""

    __slots__ = ("_selector", "_loop")

    def __init__(self, selector, loop):
        self._selector = selector
        self._loop = loop

    def select(self, timeout=None):
        if self._selector.get_map():
            return self._selector.select(timeout)
        if timeout is not None and timeout > 0:
            self._loop._verdict_waited = self._loop.__dict__.get("_verdict_waited", 0.0) + timeout
        return []

    def __getattr__(self, name):
        return getattr(self._selector, name)


def _loop_without_self_pipe(selector_events):
    """asyncio's event loop wakes itself from other threads and signal handlers through a
    socketpair, which WASI denies (sockets are host sockets, never granted). A WASI program has
    neither threads nor signals, so nothing needs waking: the loop runs without the pipe, and
    its waits are virtual (`_VirtualWait`), so `asyncio.run` works and sleeps are instant."""
    loop = selector_events.BaseSelectorEventLoop
    loop._make_self_pipe = lambda self: None
    loop._close_self_pipe = lambda self: None
    loop._write_to_self = lambda self: None
    init = loop.__init__

    def __init__(self, selector=None):
        init(self, selector)
        self._selector = _VirtualWait(self._selector, self)

    loop.__init__ = __init__
    import time as _time
    loop.time = lambda self: _time.monotonic() + self.__dict__.get("_verdict_waited", 0.0)


# Stdlib modules adjusted to WASI as they are first imported (by either role).
_WASI_ADAPTATIONS = {"asyncio.selector_events": _loop_without_self_pipe}


class _StdlibFinder:
    """Finds the stdlib modules whose source the snapshot keeps (see `_stdlib_sources`)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        entry = _STDLIB_SOURCES.get(name)
        if entry is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, _StdlibLoader, origin=f"<stdlib {name}>",
                                              is_package=entry[1])
        return spec

    @staticmethod
    def invalidate_caches():
        pass


sys.meta_path.insert(0, _StdlibFinder)

_MESSAGE_CAP = 2000
_DEPTH_CAP = 200

# `int` ↔ `str` of any size, in both roles (big integers cross as decimal strings).
sys.set_int_max_str_digits(0)

_PRISTINE_BUILTINS = dict(builtins.__dict__)
_BUILTIN_NAMES = frozenset(_PRISTINE_BUILTINS)
_STDLIB = frozenset(sys.stdlib_module_names)
_recursion_limit = sys.getrecursionlimit()
_PRISTINE_DECIMAL_CONTEXT = decimal.getcontext().copy()
_PRISTINE_WARNING_FILTERS = list(warnings.filters)


def _reset_interpreter():
    """Interpreter-wide settings code may change, back to the snapshot's, so that one test's
    changes (a decimal precision, a recursion limit, warning filters, the int digit limit) never
    reach the next test's judge."""
    sys.setrecursionlimit(_recursion_limit)
    sys.set_int_max_str_digits(0)
    # The types rebuilt for the last test's answers (namedtuples, dataclasses, exceptions).
    _NAMEDTUPLES.clear()
    _DATACLASSES.clear()
    _SUBCLASSES.clear()
    decimal.setcontext(_PRISTINE_DECIMAL_CONTEXT.copy())
    warnings.filters[:] = _PRISTINE_WARNING_FILTERS
    mutated = getattr(warnings, "_filters_mutated_lock_held", None) or \
        getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        try:
            mutated()
        except BaseException:
            pass
_stdout = sys.stdout
_stderr = sys.stderr
_stdin = sys.stdin
_encode_str = json.encoder.encode_basestring_ascii  # ASCII: no lone surrogate can break a WIT string
_ModuleType = types.ModuleType
_Counter = collections.Counter
_OrderedDict = collections.OrderedDict
_defaultdict = collections.defaultdict
_deque = collections.deque
_Fraction = fractions.Fraction
_Decimal = decimal.Decimal
_io_open = io.open

# Exceptions the judge re-raises by name when the candidate raised them (a test may expect one).
_EXCEPTIONS = {
    name: cls for name, cls in _PRISTINE_BUILTINS.items()
    if isinstance(cls, type) and issubclass(cls, Exception)
}
# Exceptions the judge never re-raises as themselves (they steer iteration, not errors).
_CONTROL_FLOW = frozenset(["StopIteration", "StopAsyncIteration", "GeneratorExit"])
# Factories of a `defaultdict` that cross by name.
_FACTORIES = {t.__name__: t for t in (int, float, str, list, dict, set, frozenset, tuple, bool)}


def _open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,
          opener=None):
    """`open`, except that a file object on fd 0, 1 or 2 never closes the fd: `open(0).read()`
    is a common way to read stdin, and the next test of the rollout needs fd 0 open."""
    if type(file) is int and 0 <= file <= 2:
        closefd = False
    return _io_open(file, mode, buffering, encoding, errors, newline, closefd, opener)


# The builtins every program sees (and the `builtins` module is reset to before each load).
_RUN_BUILTINS = dict(_PRISTINE_BUILTINS, open=_open)

# The kind of the failure `load` reports when an earlier test of the rollout closed fd 0 or 1:
# the host then runs the test again in a fresh instance (see PROTOCOL.md).
_SPENT = "VerdictInstanceSpent"


class _Refused(Exception):
    """A value that cannot cross: too deep, too large, or not data where data is required."""


# --------------------------------------------------------------------------------------------
# The codec: plain data as tagged JSON (PROTOCOL.md, "What crosses").
# --------------------------------------------------------------------------------------------

class _Writer:
    """Appends JSON text to a list, refusing to grow past `limit` characters. With `refs` (a
    dict), it keeps identity: each list, dict, set and bytearray is numbered as it is first
    written, and written again as `{"alias": index}` (PROTOCOL.md, "Identity")."""

    __slots__ = ("out", "size", "limit", "handle", "graph", "refs", "objects")

    def __init__(self, limit, handle, refs=None):
        self.out = []
        self.size = 0
        self.limit = limit
        self.handle = handle
        # While a graph of setup objects is written: [index by id, objects in order].
        self.graph = None
        # Index by id of the mutable containers written so far, and the containers.
        self.refs = refs
        self.objects = [] if refs is not None else None

    def seen(self, value):
        """With identity kept: writes the alias of a container already written and says so,
        else numbers it."""
        at = self.refs.get(id(value))
        if at is not None:
            self.put('{"alias":' + str(at) + "}")
            return True
        self.refs[id(value)] = len(self.refs)
        self.objects.append(value)
        return False

    def put(self, text):
        self.size += len(text)
        if self.size > self.limit:
            raise _Refused(f"the value is larger than the {self.limit}-byte cap")
        self.out.append(text)

    def text(self):
        return "".join(self.out)


def _items(w, pairs, depth):
    w.put("[")
    first = True
    for k, v in pairs:
        if not first:
            w.put(",")
        first = False
        w.put("[")
        _enc(w, k, depth)
        w.put(",")
        _enc(w, v, depth)
        w.put("]")
    w.put("]")


def _seq(w, values, depth):
    w.put("[")
    first = True
    for v in values:
        if not first:
            w.put(",")
        first = False
        _enc(w, v, depth)
    w.put("]")


def _enc(w, value, depth=0):
    """Appends the tagged JSON of `value`. Exact types only (`type(x) is int`): an object of any
    other type, a subclass of a builtin included, is not data and goes to `w.handle`."""
    if depth > _DEPTH_CAP:
        raise _Refused(f"the value is nested more than {_DEPTH_CAP} levels deep")
    depth += 1
    t = type(value)
    if value is None:
        w.put("null")
    elif t is bool:
        w.put("true" if value else "false")
    elif t is int:
        if -(1 << 53) < value < (1 << 53):
            w.put(int.__repr__(value))
        else:
            w.put('{"int":"' + int.__repr__(value) + '"}')
    elif t is float:
        if value != value or value in (float("inf"), float("-inf")):
            w.put('{"float":"' + float.__repr__(value) + '"}')
        else:
            w.put(float.__repr__(value))
    elif t is str:
        w.put(_encode_str(value))
    elif t is list:
        if w.refs is None or not w.seen(value):
            _seq(w, value, depth)
    elif t is tuple:
        w.put('{"tuple":')
        _seq(w, value, depth)
        w.put("}")
    elif t is dict:
        if w.refs is None or not w.seen(value):
            w.put('{"dict":')
            _items(w, dict.items(value), depth)
            w.put("}")
    elif (t is set or t is bytearray) and w.refs is not None and w.seen(value):
        pass
    elif t is set or t is frozenset:
        w.put('{"set":' if t is set else '{"frozenset":')
        _seq(w, value, depth)
        w.put("}")
    elif t is bytes or t is bytearray:
        w.put('{"bytes":"' if t is bytes else '{"bytearray":"')
        w.put((bytes.hex if t is bytes else bytearray.hex)(value))
        w.put('"}')
    elif t is complex:
        w.put('{"complex":')
        _seq(w, (value.real, value.imag), depth)
        w.put("}")
    elif t is range:
        w.put('{"range":')
        _seq(w, (value.start, value.stop, value.step), depth)
        w.put("}")
    elif t is slice:
        w.put('{"slice":')
        _seq(w, (value.start, value.stop, value.step), depth)
        w.put("}")
    elif t is _Counter or t is _OrderedDict:
        w.put('{"counter":' if t is _Counter else '{"ordereddict":')
        _items(w, dict.items(value), depth)
        w.put("}")
    elif t is _defaultdict:
        factory = value.default_factory
        name = factory.__name__ if _FACTORIES.get(getattr(factory, "__name__", None)) is factory \
            else None
        w.put('{"defaultdict":[')
        _enc(w, name, depth)
        w.put(",")
        _items(w, dict.items(value), depth)
        w.put("]}")
    elif t is _deque:
        w.put('{"deque":[')
        _enc(w, value.maxlen, depth)
        w.put(",")
        _seq(w, value, depth)
        w.put("]}")
    elif t is _Fraction and value.denominator > 0 and \
            math.gcd(value.numerator, value.denominator) == 1:
        # Only a reduced Fraction: the judge's rebuild reduces, and an unreduced one (built
        # with private constructors) compares otherwise, so it stays the program's object.
        w.put('{"fraction":')
        _seq(w, (value.numerator, value.denominator), depth)
        w.put("}")
    elif t is _Decimal:
        w.put('{"decimal":' + _encode_str(str(value)) + "}")
    elif t in _TIME_TYPES and _crossing_tz(value):
        # `datetime`, `date`, `time`, `timedelta`: their fields, a fixed-offset time zone
        # included (`timezone.utc`); rebuilt by the genuine constructors.
        w.put('{"' + _TIME_TYPES[t] + '":')
        _seq(w, _time_fields(value), depth)
        w.put("}")
    elif isinstance(value, enum.Enum) and _enum_path(t) is not None:
        # A member of an enum of the setup or of the stdlib (`Color.RED`, `HTTPStatus.OK`): the
        # other side's member of that name in its own class.
        w.put('{"enum":[')
        _seq(w, _enum_path(t), depth)
        w.put("," + _encode_str(value.name) + "]}")
    elif t.__dict__.get("__getattr__") is _read_from_origin and \
            "_verdict_origin" in getattr(value, "__dict__", ()):
        # A copy of the other side's record with methods, going back: the original itself.
        w.put(w.handle(value.__dict__["_verdict_origin"]))
    elif t.__dict__.get("__getattr__") is _read_from_origin and _is_namedtuple(t.__bases__[0]):
        # A new record made from such a copy (`p._replace(x=1)`): its data, as a namedtuple.
        w.put('{"namedtuple":[')
        _enc(w, t.__name__, depth)
        w.put(",")
        _seq(w, t._fields, depth)
        w.put(",")
        _seq(w, tuple.__iter__(value), depth)
        w.put("]}")
    elif _is_namedtuple(t):
        w.put('{"namedtuple":[')
        _enc(w, t.__name__, depth)
        w.put(",")
        _seq(w, t._fields, depth)
        w.put(",")
        _seq(w, tuple.__iter__(value), depth)
        if _has_methods(t, t._fields):
            # Its methods stay reachable: the copy reads what it lacks from the original.
            w.put("," + w.handle(value))
        w.put("]}")
    elif t in _SHARED_TYPES and type(getattr(value, "__dict__", None)) is dict:
        # An object of a class the rollout's setup defines (`ListNode`): both sides ran the
        # setup, so it crosses by value and is rebuilt as the other side's class of that name.
        if w.graph is None:
            _enc_graph(w, value, depth)
        else:
            index, order = w.graph
            at = index.get(id(value))
            if at is None:
                at = index[id(value)] = len(order)
                order.append(value)
            w.put('{"ref":' + str(at) + "}")
    elif isinstance(value, type) and _SETUP_CLASS_NAMES.get(value) is not None:
        # A class the setup defines (`TreeNode` itself, an exception class of the setup): the
        # other side's own class of that name.
        w.put('{"shared":' + _encode_str(_SETUP_CLASS_NAMES[value]) + "}")
    elif _plain_dataclass(t):
        fields = dataclasses.fields(t)
        params = t.__dict__["__dataclass_params__"]
        w.put('{"dataclass":[')
        _enc(w, t.__name__, depth)
        w.put(",")
        _items(w, [(f.name, getattr(value, f.name)) for f in fields], depth)
        # Its `order` (only the generated one), `frozen`, the fields `==` compares, and the
        # original when it has methods (the copy reads what it lacks from it).
        w.put(",[" + ("true" if _generated_order(t) else "false") + "," +
              ("true" if params.frozen else "false") + ",")
        _seq(w, tuple(f.name for f in fields if f.compare), depth)
        w.put("," + (w.handle(value) if _has_methods(t, [f.name for f in fields]) else "null"))
        w.put("]]}")
    elif _BUILTIN_BY_NAME.get(_BUILTIN_NAME_OF.get(id(value))) is value:
        # A builtin function, type or method (`key=len`, `key=str.lower`, `map(int, …)`):
        # it crosses by name and is the other side's own builtin of that name.
        w.put('{"builtin":' + _encode_str(_BUILTIN_NAME_OF[id(value)]) + "}")
    else:
        w.put(w.handle(value))


# Builtins that act on the caller's frame, the interpreter or the outside world: they never
# cross by name (a candidate naming one would have the judge run it).
_NOT_CROSSING = frozenset(["eval", "exec", "compile", "open", "input", "print", "breakpoint",
                           "globals", "locals", "vars", "exit", "quit", "help", "copyright",
                           "credits", "license", "setattr", "delattr", "getattr", "super",
                           "memoryview", "aiter", "anext", "dir", "id", "hash", "type",
                           "object", "classmethod", "staticmethod", "property"])


_TIME_TYPES = {datetime.datetime: "datetime", datetime.date: "date", datetime.time: "time",
               datetime.timedelta: "timedelta"}


def _crossing_tz(value):
    """Whether a time value's zone crosses: none, or a fixed offset (`datetime.timezone`)."""
    tz = getattr(value, "tzinfo", None)
    return tz is None or type(tz) is datetime.timezone


def _time_fields(value):
    t = type(value)
    if t is datetime.timedelta:
        return (value.days, value.seconds, value.microseconds)
    if t is datetime.date:
        return (value.year, value.month, value.day)
    tz = value.tzinfo
    offset = None if tz is None else tz.utcoffset(None)
    zone = None if tz is None else (offset.days * 86400 + offset.seconds, offset.microseconds,
                                    tz.tzname(None))
    if t is datetime.time:
        return (value.hour, value.minute, value.second, value.microsecond, value.fold, zone)
    return (value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, value.fold, zone)


def _rebuild_time(tag, fields):
    """A `datetime`, `date`, `time` or `timedelta` from its fields (the constructors check
    every range)."""
    if any(type(f) is not int for f in fields[:-1] if f is not None) or len(fields) > 9:
        raise _Refused(f"malformed value: {tag}")
    if tag == "timedelta":
        if len(fields) != 3 or type(fields[2]) is not int:
            raise _Refused("malformed value: timedelta")
        return datetime.timedelta(days=fields[0], seconds=fields[1], microseconds=fields[2])
    if tag == "date":
        if len(fields) != 3 or type(fields[2]) is not int:
            raise _Refused("malformed value: date")
        return datetime.date(*fields)
    *parts, zone = fields
    tz = None
    if zone is not None:
        if type(zone) is not tuple or len(zone) != 3 or type(zone[0]) is not int or \
                type(zone[1]) is not int or (zone[2] is not None and type(zone[2]) is not str):
            raise _Refused(f"malformed value: {tag} zone")
        offset = datetime.timedelta(seconds=zone[0], microseconds=zone[1])
        tz = datetime.timezone(offset) if zone[2] is None else datetime.timezone(offset, zone[2])
    if tag == "time":
        if len(parts) != 5:
            raise _Refused("malformed value: time")
        return datetime.time(*parts[:4], tzinfo=tz, fold=parts[4])
    if len(parts) != 8:
        raise _Refused("malformed value: datetime")
    return datetime.datetime(*parts[:7], tzinfo=tz, fold=parts[7])


def _enum_path(t):
    """Where both sides find an enum class: `["setup", name]` for one the setup defines,
    `["stdlib", module, qualified name]` for one of the standard library, else None (a class
    of the program's or of the test's own stays an object)."""
    name = _SETUP_CLASS_NAMES.get(t)
    if name is not None:
        return ("setup", name)
    module = getattr(t, "__module__", None)
    qualname = getattr(t, "__qualname__", None)
    if type(module) is str and type(qualname) is str and module.partition(".")[0] in _STDLIB \
            and "<" not in qualname and _stdlib_object(module + "." + qualname) is t:
        return ("stdlib", module, qualname)
    return None


def _rebuild_enum(v):
    """The member `[where, name]` names (see `_enum_path`), in this side's own class."""
    parts = _need_list(v)
    if len(parts) != 2 or type(parts[1]) is not str:
        raise _Refused("malformed value: enum")
    where = _need_list(parts[0])
    if len(where) == 2 and where[0] == "setup":
        cls = _SHARED_CLASSES.get(_need_str(where[1]))
    elif len(where) == 3 and where[0] == "stdlib" and type(where[1]) is str and \
            type(where[2]) is str and where[1].partition(".")[0] in _STDLIB:
        # Only a module this side has imported already: a test that names `HTTPStatus.OK`
        # imported `http` itself, and the candidate's claim imports nothing in the judge.
        cls = sys.modules.get(where[1])
        for attr in where[2].split(".")[:8]:
            cls = getattr(cls, attr, None)
    else:
        cls = None
    if not isinstance(cls, type) or not issubclass(cls, enum.Enum):
        raise _Refused("malformed value: no such enum here")
    member = cls.__members__.get(parts[1])
    if member is None:
        raise _Refused("malformed value: no such enum member")
    return member


def _builtin_table():
    """Builtin functions and types by name, and the methods of the builtin data types
    (`str.lower`), as the snapshot has them (never as a program patched them)."""
    table = {n: v for n, v in _PRISTINE_BUILTINS.items()
             if callable(v) and not n.startswith("_") and n not in _NOT_CROSSING
             and not (isinstance(v, type) and issubclass(v, BaseException))}
    for t in (str, bytes, list, dict, set, frozenset, tuple, int, float, complex):
        for attr, v in vars(t).items():
            if not attr.startswith("_") and callable(v):
                table[f"{t.__name__}.{attr}"] = getattr(t, attr)
    return table


_BUILTIN_BY_NAME = _builtin_table()
_BUILTIN_NAME_OF = {}
for _name, _value in _BUILTIN_BY_NAME.items():
    _BUILTIN_NAME_OF.setdefault(id(_value), _name)
del _name, _value


# The classes the rollout's setup defined in this instance, by name and by type (set after the
# setup runs: the candidate's `load`, the judge's test run).
_SHARED_CLASSES = {}
_SHARED_TYPES = {}
# The exception classes the setup defined (`class InvalidInput(ValueError)`): a program's raise
# of one is re-raised in the judge as the judge's class of that name.
_SHARED_EXCEPTIONS = {}
# Both, by class: the name a setup class crosses by.
_SETUP_CLASS_NAMES = {}


def _setup_classes(source):
    """The names the setup's source defines by a top-level `class` statement."""
    try:
        tree = ast.parse(source)
    except BaseException:
        return frozenset()
    return frozenset(node.name for node in tree.body if type(node) is ast.ClassDef)


def _share_setup_classes(g, before, defined):
    """Records the classes the setup defined (a top-level `class` statement of its source, bound
    by it in `g`) as the ones that cross by value; never an imported class, never one of the
    judge-only setup."""
    _SHARED_CLASSES.clear()
    _SHARED_TYPES.clear()
    _SHARED_EXCEPTIONS.clear()
    _SETUP_CLASS_NAMES.clear()
    for name in defined:
        value = g.get(name)
        if not isinstance(value, type) or before.get(name) is value:
            continue
        if issubclass(value, (StopIteration, StopAsyncIteration)):
            continue  # control flow never crosses as itself (see `_candidate_exception`)
        if issubclass(value, Exception):
            _SHARED_EXCEPTIONS[name] = value
            _SETUP_CLASS_NAMES[value] = name
        elif not issubclass(value, BaseException):
            _SHARED_CLASSES[name] = value
            _SHARED_TYPES[value] = name
            _SETUP_CLASS_NAMES[value] = name


def _enc_graph(w, root, depth):
    """`{"graph": [[class name, [[attribute, value], …]], …]}`: the setup objects reachable from
    `root` (entry 0), each once, an object inside another as `{"ref": index}`. Written entry by
    entry, so a linked list of any length nests no deeper than one node, and a cycle (the
    `hasCycle` problems) or a node shared by two others crosses as it is."""
    w.graph = ({id(root): 0}, [root])
    # Identity inside a graph is the graph's own (`ref`): nothing in it is numbered.
    refs, w.refs = w.refs, None
    try:
        w.put('{"graph":[')
        order = w.graph[1]
        i = 0
        while i < len(order):
            obj = order[i]
            if i:
                w.put(",")
            w.put("[")
            _enc(w, _SHARED_TYPES[type(obj)], depth)
            w.put(",")
            _items(w, [(k, v) for k, v in obj.__dict__.items() if type(k) is str], depth)
            w.put("]")
            i += 1
        w.put("]}")
    finally:
        w.graph = None
        w.refs = refs


# The objects of the graphs being rebuilt, innermost last (a `{"ref": i}` is the i-th).
_GRAPHS = []
# While a value written with identity kept is rebuilt: its lists, dicts, sets and bytearrays
# in the order they were first written (an `{"alias": i}` is the i-th), else None.
_ALIASES = None


def _numbered(container):
    """Numbers a rebuilt container, before its contents (the writer's order)."""
    if _ALIASES is not None:
        _ALIASES.append(container)
    return container


def _shared_graph(v, resolve, depth):
    """A graph of setup objects, rebuilt as this side's classes of those names, attributes set
    without running `__init__`; entry 0 is the value."""
    entries = _need_list(v)
    if not entries:
        raise _Refused("malformed value: an empty graph")
    objects = []
    for entry in entries:
        name, _ = _two(entry)
        cls = _SHARED_CLASSES.get(_need_str(name))
        if cls is None:
            raise _Refused(f"malformed value: no setup class named {str(name)[:100]!r} here")
        obj = cls.__new__(cls)
        if type(getattr(obj, "__dict__", None)) is not dict:
            raise _Refused("malformed value: a setup object without attributes")
        objects.append(obj)
    global _ALIASES
    _GRAPHS.append(objects)
    aliases, _ALIASES = _ALIASES, None
    try:
        for obj, entry in zip(objects, entries):
            for k, value in _pairs(_two(entry)[1], resolve, depth):
                if type(k) is not str:
                    raise _Refused("malformed value: an attribute name is not a str")
                obj.__dict__[k] = value
    finally:
        _GRAPHS.pop()
        _ALIASES = aliases
    return objects[0]


_GENERATED_EQ = {}


def _plain_dataclass(t):
    """A dataclass whose `==` is the generated field equality, which the judge's rebuild
    reproduces: its `__eq__` has the very code `dataclasses` generates for its compared fields.
    One with `eq=False`, an `__eq__` of the program's (however it was made), or an inherited one
    stays the program's object (a copy would compare otherwise)."""
    params = t.__dict__.get("__dataclass_params__")
    eq = getattr(t.__dict__.get("__eq__"), "__code__", None)
    if params is None or not params.eq or eq is None:
        return False
    try:
        compared = tuple(f.name for f in dataclasses.fields(t) if f.compare)
    except BaseException:
        return False
    reference = _GENERATED_EQ.get(compared)
    if reference is None:
        if len(_GENERATED_EQ) > 256:
            _GENERATED_EQ.clear()
        made = dataclasses.make_dataclass("_Reference", list(compared), eq=True)
        reference = _GENERATED_EQ[compared] = made.__eq__.__code__
    return (eq.co_code == reference.co_code and eq.co_consts == reference.co_consts
            and eq.co_names == reference.co_names and eq.co_varnames == reference.co_varnames)


_GENERATED_LT = {}


def _generated_order(t):
    """Whether a dataclass's `<` is the one `order=True` generates for its compared fields."""
    lt = getattr(t.__dict__.get("__lt__"), "__code__", None)
    params = t.__dict__.get("__dataclass_params__")
    if lt is None or params is None or not params.order:
        return False
    try:
        compared = tuple(f.name for f in dataclasses.fields(t) if f.compare)
    except BaseException:
        return False
    reference = _GENERATED_LT.get(compared)
    if reference is None:
        if len(_GENERATED_LT) > 256:
            _GENERATED_LT.clear()
        made = dataclasses.make_dataclass("_Reference", list(compared), eq=True, order=True)
        reference = _GENERATED_LT[compared] = made.__lt__.__code__
    return (lt.co_code == reference.co_code and lt.co_consts == reference.co_consts
            and lt.co_names == reference.co_names and lt.co_varnames == reference.co_varnames)


def _has_methods(t, fields):
    """Whether a record class defines public attributes besides its fields (methods,
    properties): then its copies keep a way back to the original."""
    try:
        return any(type(k) is str and not k.startswith("_") and k not in fields
                   for k in t.__dict__)
    except BaseException:
        return False


def _read_from_origin(self, name):
    """`__getattr__` of a rebuilt record whose class has methods: what the copy lacks (a
    method, a property) is read from the original, on its side of the boundary."""
    if name.startswith("__") or name == "_verdict_origin":
        raise AttributeError(name)
    try:
        origin = object.__getattribute__(self, "_verdict_origin")
    except AttributeError:
        raise AttributeError(name) from None
    return getattr(origin, name)


def _is_namedtuple(t):
    return (t.__bases__ == (tuple,) and type(getattr(t, "_fields", None)) is tuple
            and all(type(f) is str for f in t._fields))


def _need_str(v):
    if type(v) is not str:
        raise _Refused("malformed value: expected a string")
    return v


def _need_list(v):
    if type(v) is not list:
        raise _Refused("malformed value: expected an array")
    return v


def _pairs(raw, resolve, depth):
    out = []
    for pair in _need_list(raw):
        if type(pair) is not list or len(pair) != 2:
            raise _Refused("malformed value: expected a [key, value] pair")
        out.append((_rebuild(pair[0], resolve, depth), _rebuild(pair[1], resolve, depth)))
    return out


_NAMEDTUPLES = {}
_DATACLASSES = {}


def _namedtuple_type(name, fields, methods=False):
    key = (name, fields, methods)
    t = _NAMEDTUPLES.get(key)
    if t is None:
        t = collections.namedtuple(name, fields)
        if methods:
            t = type(name, (t,), {"__getattr__": _read_from_origin})
        _NAMEDTUPLES[key] = t
    return t


def _dataclass_type(name, fields, order=False, frozen=False, compared=None, methods=False):
    compared = fields if compared is None else compared
    key = (name, fields, order, frozen, compared, methods)
    t = _DATACLASSES.get(key)
    if t is None:
        spec = [(f, typing.Any, dataclasses.field(compare=f in compared)) for f in fields]
        t = _DATACLASSES[key] = dataclasses.make_dataclass(
            name, spec, eq=True, order=order, frozen=frozen,
            namespace={"__getattr__": _read_from_origin} if methods else None)
    return t


def _rebuild(raw, resolve, depth=0):
    """The genuine builtin value a tagged JSON tree stands for; `resolve` turns a `handle` or
    `global` tag into an object (or refuses it)."""
    if depth > _DEPTH_CAP:
        raise _Refused(f"the value is nested more than {_DEPTH_CAP} levels deep")
    depth += 1
    t = type(raw)
    if raw is None or t is bool or t is int or t is float or t is str:
        return raw
    if t is list:
        out = _numbered([])
        for v in raw:
            out.append(_rebuild(v, resolve, depth))
        return out
    if t is not dict or len(raw) != 1:
        raise _Refused("malformed value: an object must have exactly one tag")
    ((tag, v),) = raw.items()
    if tag == "int":
        return int(_need_str(v))
    if tag == "float":
        return float(_need_str(v))
    if tag == "tuple":
        return tuple(_rebuild(x, resolve, depth) for x in _need_list(v))
    if tag == "graph":
        return _shared_graph(v, resolve, depth)
    if tag == "ref":
        if not _GRAPHS or type(v) is not int or not 0 <= v < len(_GRAPHS[-1]):
            raise _Refused("malformed value: a reference outside its graph")
        return _GRAPHS[-1][v]
    if tag == "builtin":
        if _need_str(v) not in _BUILTIN_BY_NAME:
            raise _Refused("malformed value: no such builtin")
        return resolve(tag, v)
    if tag == "dict":
        out = _numbered({})
        out.update(_pairs(v, resolve, depth))
        return out
    if tag == "set":
        out = _numbered(set())
        out.update([_rebuild(x, resolve, depth) for x in _need_list(v)])
        return out
    if tag == "alias":
        if _ALIASES is None or type(v) is not int or not 0 <= v < len(_ALIASES):
            raise _Refused("malformed value: an alias of nothing written before")
        return _ALIASES[v]
    if tag == "frozenset":
        return frozenset(_rebuild(x, resolve, depth) for x in _need_list(v))
    if tag == "bytes":
        return bytes.fromhex(_need_str(v))
    if tag == "bytearray":
        return _numbered(bytearray.fromhex(_need_str(v)))
    if tag == "complex":
        re_, im = _need_list(v) if len(_need_list(v)) == 2 else (None, None)
        return complex(_need_real(_rebuild(re_, resolve, depth)),
                       _need_real(_rebuild(im, resolve, depth)))
    if tag == "range":
        args = [_rebuild(x, resolve, depth) for x in _need_list(v)]
        if len(args) != 3 or any(type(a) is not int for a in args):
            raise _Refused("malformed value: range")
        return range(*args)
    if tag == "slice":
        args = [_rebuild(x, resolve, depth) for x in _need_list(v)]
        if len(args) != 3:
            raise _Refused("malformed value: slice")
        return slice(*args)
    if tag == "counter":
        return _Counter(dict(_pairs(v, resolve, depth)))
    if tag == "ordereddict":
        return _OrderedDict(_pairs(v, resolve, depth))
    if tag == "defaultdict":
        name, pairs = _two(v)
        factory = None if name is None else _FACTORIES.get(name)
        if name is not None and factory is None:
            raise _Refused("malformed value: defaultdict factory")
        return _defaultdict(factory, _pairs(pairs, resolve, depth))
    if tag == "deque":
        maxlen, items = _two(v)
        if maxlen is not None and type(maxlen) is not int:
            raise _Refused("malformed value: deque maxlen")
        return _deque([_rebuild(x, resolve, depth) for x in _need_list(items)], maxlen)
    if tag == "fraction":
        num, den = _two(v)
        num, den = _rebuild(num, resolve, depth), _rebuild(den, resolve, depth)
        if type(num) is not int or type(den) is not int:
            raise _Refused("malformed value: fraction")
        return _Fraction(num, den)
    if tag == "decimal":
        return _Decimal(_need_str(v))
    if tag == "namedtuple":
        parts = _need_list(v)
        if len(parts) not in (3, 4):
            raise _Refused("malformed value: namedtuple")
        fields = tuple(_need_str(f) for f in _need_list(parts[1]))
        values = [_rebuild(x, resolve, depth) for x in _need_list(parts[2])]
        origin = _origin(parts[3], resolve, depth) if len(parts) == 4 else None
        record = _namedtuple_type(_need_str(parts[0]), fields, origin is not None)(*values)
        if origin is not None:
            record.__dict__["_verdict_origin"] = origin
        return record
    if tag == "dataclass":
        parts = _need_list(v)
        if len(parts) not in (2, 3):
            raise _Refused("malformed value: dataclass")
        items = _pairs(parts[1], resolve, depth)
        fields = tuple(_need_str(k) for k, _ in items)
        order, frozen, compared, origin = False, False, fields, None
        if len(parts) == 3:
            params = _need_list(parts[2])
            if len(params) != 4 or type(params[0]) is not bool or type(params[1]) is not bool:
                raise _Refused("malformed value: dataclass parameters")
            order, frozen = params[0], params[1]
            compared = tuple(_need_str(f) for f in _need_list(params[2]))
            origin = None if params[3] is None else _origin(params[3], resolve, depth)
        cls = _dataclass_type(_need_str(parts[0]), fields, order, frozen, compared,
                              origin is not None)
        record = cls.__new__(cls)
        for k, x in items:
            object.__setattr__(record, k, x)
        if origin is not None:
            object.__setattr__(record, "_verdict_origin", origin)
        return record
    if tag in _TIME_TAGS:
        return _rebuild_time(tag, [_rebuild(x, resolve, depth) for x in _need_list(v)])
    if tag == "enum":
        return _rebuild_enum(v)
    if tag in _RESOLVED_TAGS:
        return resolve(tag, v)
    raise _Refused(f"malformed value: unknown tag {tag[:40]!r}")


# Tags only the receiving side can turn into an object: the candidate's objects (`handle`,
# `global`), the test's objects (`jhandle`, `jexception`: see "Callbacks" in PROTOCOL.md) and
# the setup's classes (`shared`).
_TIME_TAGS = frozenset(["datetime", "date", "time", "timedelta"])
_RESOLVED_TAGS = frozenset(["handle", "global", "jhandle", "jexception", "shared"])


def _origin(raw, resolve, depth):
    """A record's way back to its original: only a handle of the other side (never data)."""
    origin = _rebuild(raw, resolve, depth)
    if type(origin) is not _Handle and type(origin) is not _TestObject:
        raise _Refused("malformed value: a record's origin is not a handle")
    return origin


def _two(v):
    v = _need_list(v)
    if len(v) != 2:
        raise _Refused("malformed value: expected two parts")
    return v


def _need_real(x):
    if type(x) is not float and type(x) is not int:
        raise _Refused("malformed value: complex")
    return x


def _decode(text, resolve):
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _Refused(f"malformed value: {exc}"[:_MESSAGE_CAP])
    try:
        return _rebuild(raw, resolve)
    except _Refused:
        raise
    except Exception as exc:  # any error of a rebuild (ZeroDivisionError, InvalidOperation)
        raise _Refused(f"malformed value: {type(exc).__name__}: {exc}"[:_MESSAGE_CAP])


def _message(exc):
    try:
        return str(exc)[:_MESSAGE_CAP]
    except BaseException:
        return "<unprintable exception>"


def _failure(phase, exc):
    return wit_world.Failure(phase=phase, kind=type(exc).__name__, message=_message(exc))


def _syntax_failure(phase, exc):
    return wit_world.Failure(
        phase=phase, kind=type(exc).__name__,
        message=f"{exc.msg} (line {exc.lineno}, column {exc.offset})"[:_MESSAGE_CAP])


_COMPILED = {}


def _compile(source, name):
    """Compiles once per instance (the tests of a rollout share it); raises SyntaxError,
    ValueError, RecursionError or MemoryError."""
    key = (source, name)
    code = _COMPILED.get(key)
    if code is None:
        code = _COMPILED[key] = compile(source, name, "exec", dont_inherit=True)
    return code


# --------------------------------------------------------------------------------------------
# The candidate role.
# --------------------------------------------------------------------------------------------

class _Candidate:
    """The loaded program of the current test, the objects handed out as handles, and the
    test's objects it holds (by the judge's index)."""

    def __init__(self):
        self.globals = {}
        self.objects = []
        self.ids = {}
        self.judge_objects = {}
        self.judge_classes = {}
        self.judge_class_ids = {}
        self.limit = 1 << 20
        # The data globals the judge holds copies of: name -> (id, size) when fetched.
        self.watched = {}


_CAND = _Candidate()


def _shared_class(name):
    """The setup's class of that name on this side."""
    cls = _SHARED_CLASSES.get(_need_str(name)) or _SHARED_EXCEPTIONS.get(name)
    if cls is None:
        raise _Refused(f"malformed value: no setup class named {name[:100]!r} here")
    return cls


class _TestObject:
    """In the candidate: an object of the test (a `key=` function, a visitor, a comparator, a
    test's iterator). Calling it, reading a method of it, `iter` and `next` run the test's own
    code in the judge (a callback: see "Callbacks" in PROTOCOL.md); nothing else of it is
    reachable from here."""

    __slots__ = ("_verdict_index", "_verdict_type")

    def __init__(self, index, type_name):
        object.__setattr__(self, "_verdict_index", index)
        object.__setattr__(self, "_verdict_type", type_name)

    def __call__(self, *args, **kwargs):
        return _call_test(["call", self, list(args), kwargs])

    def __getattr__(self, name):
        if name.startswith("__") or name.startswith("_verdict"):
            raise AttributeError(name)
        return _call_test(["getattr", self, name])

    def __iter__(self):
        return _call_test(["iter", self])

    def __next__(self):
        return _call_test(["next", self])

    def __getitem__(self, key):
        return _call_test(["getitem", self, key])

    def __repr__(self):
        return f"<test {self._verdict_type} object>"


def _test_object(v):
    parts = _need_list(v)
    if len(parts) != 2 or type(parts[0]) is not int or type(parts[1]) is not str:
        raise _Refused("malformed value: a test object")
    obj = _CAND.judge_objects.get(parts[0])
    if obj is None:
        obj = _CAND.judge_objects[parts[0]] = _TestObject(parts[0], parts[1][:100])
    return obj


def _test_exception_class(v):
    """A test's exception class, as a class of this side deriving from the builtin exception
    the test's class derives from, so the program can raise and catch it."""
    parts = _need_list(v)
    if len(parts) != 3 or type(parts[0]) is not int or type(parts[1]) is not str:
        raise _Refused("malformed value: a test exception class")
    cls = _CAND.judge_classes.get(parts[0])
    if cls is None:
        base = next((_EXCEPTIONS[b] for b in _need_list(parts[2])
                     if type(b) is str and b in _EXCEPTIONS and b not in _CONTROL_FLOW),
                    Exception)
        cls = type(parts[1][:100] or "TestError", (base,), {"__module__": "test"})
        _CAND.judge_classes[parts[0]] = cls
        _CAND.judge_class_ids[id(cls)] = parts[0]
    return cls


def _call_test(op):
    """A callback: one operation on a test object, run by the judge, while this side waits in
    its import (serving any call of the test into the program that comes first)."""
    w = _Writer(_CAND.limit, _handle_of)
    _enc(w, op)
    message = "Q" + w.text()
    while True:
        try:
            reply = peer.forward(message)
        except Err as exc:
            why = str(exc.value)
            raise (RecursionError if why.startswith("RecursionError") else RuntimeError)(why)
        if reply[:1] != "Q":
            break
        message = "R" + _serve(reply[1:], _CAND.limit)
    try:
        raw = json.loads(reply[1:])
    except (ValueError, RecursionError):
        raw = None
    if type(raw) is not dict or len(raw) not in (1, 2):
        raise RuntimeError("the test sent a malformed answer")
    if "stop" in raw:
        if "value" in raw:
            raise StopIteration(_rebuild(raw["value"], _resolve_candidate))
        raise StopIteration
    if "raised" in raw:
        raise _test_exception(raw["raised"])
    if "ok" not in raw:
        raise RuntimeError("the test sent a malformed answer")
    return _rebuild(raw["ok"], _resolve_candidate)


def _test_exception(raised):
    """The exception the test's code raised in a callback, as the program sees it."""
    if type(raised) is not list or len(raised) < 2:
        return RuntimeError("the test raised an exception")
    kind, message = str(raised[0])[:100], str(raised[1])
    bases = raised[2] if len(raised) > 2 and type(raised[2]) is list else []
    index = raised[4] if len(raised) > 4 else None
    cls = _CAND.judge_classes.get(index) if type(index) is int else None
    if cls is None and type(index) is int:
        # The test's own exception class, met for the first time: one class of this side for
        # it, which carries its index back if the program lets it propagate.
        try:
            cls = _test_exception_class([index, kind, [b for b in bases if type(b) is str]])
        except BaseException:
            cls = None
    if cls is None:
        cls = _EXCEPTIONS.get(kind)
    if cls is None:
        base = next((_EXCEPTIONS[b] for b in bases if type(b) is str and b in _EXCEPTIONS),
                    Exception)
        try:
            cls = type(kind, (base,), {"__module__": "test"})
        except BaseException:
            cls = base
    args = None
    if len(raised) > 3 and type(raised[3]) is list:
        try:
            args = _rebuild(raised[3], _resolve_candidate)
        except BaseException:
            args = None
    try:
        return cls(*args) if type(args) is list else cls(message)
    except BaseException:
        return RuntimeError(f"{kind}: {message}")


def _handle_of(obj):
    t = type(obj)
    if t is _TestObject:
        return ('{"jhandle":[' + str(object.__getattribute__(obj, "_verdict_index")) + "," +
                _encode_str(object.__getattribute__(obj, "_verdict_type")) + "]}")
    index = _CAND.judge_class_ids.get(id(obj))
    if index is not None and _CAND.judge_classes.get(index) is obj:
        return '{"jhandle":[' + str(index) + "," + _encode_str(obj.__name__[:100]) + "]}"
    key = id(obj)
    h = _CAND.ids.get(key)
    if h is None:
        h = _CAND.ids[key] = len(_CAND.objects)
        _CAND.objects.append(obj)
    return '{"handle":[' + str(h) + "," + _encode_str(type(obj).__name__[:100]) + "]}"


def _resolve_candidate(tag, v):
    if tag == "jhandle":
        return _test_object(v)
    if tag == "jexception":
        return _test_exception_class(v)
    if tag == "shared":
        return _shared_class(v)
    if tag == "builtin":
        # The judge's builtin (`key=len`): the candidate's own snapshot builtin of that name.
        return _BUILTIN_BY_NAME[v]
    if tag == "global":
        name = _need_str(v)
        if name not in _CAND.globals:
            raise NameError(f"name {name!r} is not defined")
        return _CAND.globals[name]
    parts = _need_list(v)
    if not parts or type(parts[0]) is not int or not 0 <= parts[0] < len(_CAND.objects):
        raise _Refused("malformed value: unknown handle")
    return _CAND.objects[parts[0]]


def _stdio_intact():
    """Whether fds 0 and 1 are still open (a program can close them with `os.close`)."""
    try:
        os.fstat(0)
        os.fstat(1)
        return True
    except BaseException:
        return False


def _text_stream(fd, write, like):
    """A new text stream on a WASI fd, configured like the interpreter's own `sys` stream, so a
    program that closed or detached `sys.stdout` in one test does not affect the next."""
    raw = io.FileIO(fd, "w" if write else "r", closefd=False)
    if write:
        return io.TextIOWrapper(io.BufferedWriter(raw), encoding=like.encoding,
                                errors=like.errors)
    return io.TextIOWrapper(io.BufferedReader(raw), encoding=like.encoding, errors=like.errors,
                            newline="\n")


def _flush():
    for stream in (sys.stdout, sys.stderr, _stdout, _stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _exit_code(exc):
    code = exc.code
    if type(code) is int and -2**31 <= code < 2**31:
        return code
    return 0 if code is None else 1


def _kind_of(value):
    if type(value) is _ModuleType:
        return "m:" + str(getattr(value, "__name__", ""))[:200]
    if callable(value):
        return "f"
    return "d"


def _load(program, setup, main, seed):
    if not _stdio_intact():
        return wit_world.Failure(phase=wit_world.Phase.SETUP, kind=_SPENT,
                                 message="an earlier test closed fd 0 or 1"), {}
    builtins.__dict__.clear()
    builtins.__dict__.update(_RUN_BUILTINS)
    g = {"__name__": "__main__" if main else "solution", "__builtins__": dict(_RUN_BUILTINS)}
    _CAND.__init__()
    _CAND.globals = g
    sys.stdout = _text_stream(1, True, _stdout)
    sys.stderr = _stderr
    sys.stdin = _text_stream(0, False, _stdin) if main else _stdin
    sys.setrecursionlimit(_recursion_limit)
    # Reseeding costs as much as the rest of `load`: only when the code names `random`.
    if "random" in program or "random" in setup:
        random.seed(seed)
    _share_setup_classes({}, {}, ())
    for phase, source, name in ((wit_world.Phase.PROGRAM, program, "<program>"),
                                (wit_world.Phase.SETUP, setup, "<setup>")):
        if not source:
            continue
        try:
            code = _compile(source, name)
        except SyntaxError as exc:
            return _syntax_failure(phase, exc), {}
        except (ValueError, RecursionError, MemoryError) as exc:
            return _failure(phase, exc), {}
        before = dict(g)
        try:
            exec(code, g)
        except SystemExit as exc:
            return _exit_code(exc), {}
        except BaseException as exc:
            return _failure(phase, exc), {}
        if phase == wit_world.Phase.SETUP:
            _share_setup_classes(g, before, _setup_classes(source))
    return None, g


def _raised_answer(exc, limit, handle=None, test_class=None):
    """`{"raised": [type name, message, [builtin bases], args, test class]}`: the builtin
    exception classes the type derives from (so the judge's `except ValueError` catches a
    program's own subclass), its `args` as data where they are (`KeyError('b').args`,
    `UnicodeDecodeError`'s five), and the judge's index of the test's exception class it is an
    instance of (a class the test handed over: see "Callbacks" in PROTOCOL.md), else null."""
    t = type(exc)
    bases = [c.__name__ for c in t.__mro__[1:]
             if _EXCEPTIONS.get(c.__name__) is c][:16]
    try:
        w = _Writer(min(limit, 1 << 16), handle or _handle_of)
        _enc(w, list(exc.args))
        args = w.text()
    except BaseException:
        args = "null"
    if test_class is None:
        index = _CAND.judge_class_ids.get(id(t))
        test_class = index if index is not None and _CAND.judge_classes.get(index) is t else None
    return ('{"raised":[' + _encode_str(t.__name__) + "," + _encode_str(_message(exc)) + ",[" +
            ",".join(_encode_str(b) for b in bases) + "]," + args + "," +
            ("null" if test_class is None else str(test_class)) + "]}")


def _enc_op(w, op):
    """Writes an operation. With identity kept, the operation's own envelope (its list, a
    call's argument list and keyword dict) is not numbered: only the values in it are."""
    w.put("[")
    call = op[0] == "call"
    for i, part in enumerate(op):
        if i:
            w.put(",")
        if call and i == 2:
            _seq(w, part, 1)
        elif call and i == 3:
            w.put('{"dict":')
            _items(w, dict.items(part), 1)
            w.put("}")
        else:
            _enc(w, part, 1)
    w.put("]")


def _decode_op(text, resolve):
    """An operation written by `_enc_op`, its containers numbered as they are rebuilt (so an
    `alias` in it is the same object): the operation and the containers, in order."""
    global _ALIASES
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _Refused(f"malformed value: {exc}"[:_MESSAGE_CAP])
    if type(raw) is not list or not raw or type(raw[0]) is not str:
        raise _Refused("malformed operation")
    call = raw[0] == "call"
    saved, _ALIASES = _ALIASES, []
    try:
        op = [raw[0]]
        for i, part in enumerate(raw[1:], 1):
            if call and i == 2:
                op.append([_rebuild(x, resolve, 1) for x in _need_list(part)])
            elif call and i == 3:
                if type(part) is not dict or len(part) != 1 or "dict" not in part:
                    raise _Refused("malformed operation: keyword arguments")
                op.append(dict(_pairs(part["dict"], resolve, 1)))
            else:
                op.append(_rebuild(part, resolve, 1))
        return op, _ALIASES
    except _Refused:
        raise
    except Exception as exc:  # any error of a rebuild (ZeroDivisionError, InvalidOperation)
        raise _Refused(f"malformed value: {type(exc).__name__}: {exc}"[:_MESSAGE_CAP])
    finally:
        _ALIASES = saved


def _contents(w, obj):
    """The contents of a container the call received, written for the judge to copy back."""
    t = type(obj)
    if t is list or t is set:
        _seq(w, obj, 1)
    elif t is dict:
        _items(w, dict.items(obj), 1)
    else:
        w.put('"' + bytearray.hex(obj) + '"')


_NEXT_PREFIX = '["next",{"handle":['


def _serve_next(request, limit):
    """`next` of one of the program's iterators (the operation a test iterating a generator
    sends for every item) answered without the general codec where the item is a plain scalar:
    an honest `next` costs little more than the cheapest answer a patched harness could give,
    so fuel baselines that are lower bounds overcharge honest programs little (PROTOCOL.md,
    "Fuel"). None when the request is not exactly that shape (the general path serves it)."""
    end = request.find(",", 19)
    if end < 0 or not request.endswith("]}]"):
        return None
    digits = request[19:end]
    if not digits.isdigit() or len(digits) > 9:
        return None
    index = int(digits)
    if index >= len(_CAND.objects):
        return None
    try:
        value = next(_CAND.objects[index])
    except StopIteration as stop:
        if stop.value is None:
            return '{"stop":true}'
        return _answer(stop.value, True, limit)
    except SystemExit as exc:
        return '{"exit":' + str(_exit_code(exc)) + "}"
    except BaseException as exc:
        return _raised_answer(exc, limit)
    t = type(value)
    if t is int and -9007199254740992 < value < 9007199254740992:
        return '{"ok":' + int.__repr__(value) + "}"
    if t is str and len(value) < limit // 6:
        return '{"ok":' + _encode_str(value) + "}"
    return _answer(value, False, limit)


def _answer(value, stopped, limit):
    """`{"ok": value}` (or a generator's `{"stop": true, "value": …}`) by the general codec."""
    try:
        w = _Writer(limit, _handle_of, {})
        w.put('{"stop":true,"value":' if stopped else '{"ok":')
        _enc(w, value)
        w.put("}")
        return w.text()
    except BaseException as exc:
        return '{"raised":["VerdictValue",' + _encode_str(_message(exc)) + "]}"


def _size(value):
    t = type(value)
    return len(value) if t is list or t is dict or t is set or t is bytearray else -1


def _watch(request, value):
    """Remembers which object a data global the judge fetched is, and its size."""
    try:
        name = json.loads(request)[1]["global"]
    except BaseException:
        return
    if type(name) is str:
        _CAND.watched[name] = (id(value), _size(value))


def _stale_globals():
    """The watched data globals now bound to another object, or resized; watched anew."""
    g = _CAND.globals
    stale = []
    for name, (ident, size) in _CAND.watched.items():
        value = g.get(name)
        if id(value) != ident or _size(value) != size:
            stale.append(name)
    for name in stale:
        value = g.get(name)
        _CAND.watched[name] = (id(value), _size(value))
    return stale


def _serve(request, limit):
    """One operation of the judge on the loaded program; always answers with JSON."""
    if request.startswith(_NEXT_PREFIX):
        answer = _serve_next(request, limit)
        if answer is not None:
            return answer
    try:
        op, received = _decode_op(request, _resolve_candidate)
    except _Refused as exc:
        return '{"raised":["VerdictBadRequest",' + _encode_str(_message(exc)) + "]}"
    except BaseException as exc:
        return '{"raised":[' + _encode_str(type(exc).__name__) + "," + \
            _encode_str(_message(exc)) + "]}"
    if type(op) is not list or not op or type(op[0]) is not str:
        return '{"raised":["VerdictBadRequest","malformed operation"]}'
    what = op[0]
    mutable = ()
    # The judge's operations keep identity both ways (PROTOCOL.md, "Identity"); the host's own
    # call tests (a fifth element `false`) read a plain value and nothing back.
    identity = not (what == "call" and len(op) == 5 and op[4] is False)
    stopped = False
    try:
        if what == "call" and len(op) in (4, 5) and type(op[2]) is list and \
                type(op[3]) is dict:
            # Positional, then keyword arguments, in order: setup objects among them travel
            # back (the judge copies them); every container in them travels back by identity.
            if identity:
                mutable = op[2] + list(op[3].values())
            result = op[1](*op[2], **op[3])
        elif what == "getattr" and len(op) == 3 and type(op[2]) is str:
            result = getattr(op[1], op[2])
        elif what == "setattr" and len(op) == 4 and type(op[2]) is str:
            setattr(op[1], op[2], op[3])
            result = None
        elif what == "iter" and len(op) == 2:
            result = iter(op[1])
        elif what == "next" and len(op) == 2:
            try:
                result = next(op[1])
            except StopIteration as stop:
                if stop.value is None:
                    return '{"stop":true}'
                # A generator's `return v`: the value travels with the stop.
                result, stopped = stop.value, True
        elif what in _COMPARISONS and len(op) == 3:
            # Two of the program's objects: the program's own comparison decides, as natively.
            result = bool(_COMPARISONS[what](op[1], op[2]))
        elif what == "bool" and len(op) == 2:
            result = bool(op[1])
        elif what == "contains" and len(op) == 3:
            # `x in obj` on the program's object: its own membership decides, as natively.
            result = op[2] in op[1]
        elif what == "hash" and len(op) == 2:
            result = hash(op[1])
        elif what == "len" and len(op) == 2:
            result = len(op[1])
        elif what == "getitem" and len(op) == 3:
            result = op[1][op[2]]
        elif what == "str" and len(op) == 2:
            result = str(op[1])
        elif what == "repr" and len(op) == 2:
            result = repr(op[1])
        elif what == "global" and len(op) == 2:
            result = op[1]
            _watch(request, result)
        elif what == "capture" and len(op) == 1:
            # A test module's `capsys`: the program's prints from now on are kept for it.
            sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
            result = None
        elif what == "captured" and len(op) == 1:
            out, err = sys.stdout, sys.stderr
            if type(out) is io.StringIO and type(err) is io.StringIO:
                result = (out.getvalue()[:limit // 2], err.getvalue()[:limit // 2])
                for stream in (out, err):
                    stream.seek(0)
                    stream.truncate()
            else:
                result = ("", "")
        else:
            return '{"raised":["VerdictBadRequest","unknown operation"]}'
    except SystemExit as exc:
        return '{"exit":' + str(_exit_code(exc)) + "}"
    except BaseException as exc:
        return _raised_answer(exc, limit)
    try:
        # Arguments that travel back may be as large as they came (the host allows it).
        w = _Writer(limit + len(request) if identity else limit, _handle_of,
                    {id(o): i for i, o in enumerate(received)} if identity else None)
        if identity:
            w.objects.extend(received)
        w.put('{"stop":true,"value":' if stopped else '{"ok":')
        _enc(w, result)
        if what == "call" and identity and received:
            # The contents of every container the call received (a list in a tuple, a dict's
            # values: what it may have changed in place), in the order they came.
            w.put(',"refs":[')
            for i, obj in enumerate(received):
                if i:
                    w.put(",")
                _contents(w, obj)
            w.put("]")
        if what == "call" and identity and _CAND.watched:
            stale = _stale_globals()
            if stale:
                # Data globals of the program the call rebound or resized (a memo, a
                # counter): the judge fetches them again (PROTOCOL.md, "Coherence").
                w.put(',"stale":[' + ",".join(_encode_str(n) for n in stale) + "]")
        if any(type(arg) in _SHARED_TYPES for arg in mutable):
            # Setup objects the call may have changed in place (`reorderList(head)`).
            w.put(',"args":[')
            for i, arg in enumerate(mutable):
                if i:
                    w.put(",")
                if type(arg) in _SHARED_TYPES:
                    _enc(w, arg)
                else:
                    w.put("null")
            w.put("]")
        w.put("}")
        return w.text()
    except BaseException as exc:
        return '{"raised":["VerdictValue",' + _encode_str(_message(exc)) + "]}"


# --------------------------------------------------------------------------------------------
# The judge role.
# --------------------------------------------------------------------------------------------

class _Judge:
    """What the current test found about the candidate, whatever the test code caught."""

    def __init__(self):
        self.incident = None
        self.handles = {}
        # Whether the operation being encoded goes to an object the program returned (not to
        # one of its top-level names).
        self.to_returned = False
        self.answering_global = False
        self.limit = 1 << 20
        # The test's objects handed to the candidate in this test (callbacks), by index; the
        # indices the test itself sent (as arguments of its calls).
        self.objects = []
        self.ids = {}
        self.sent = set()
        # The classes trusted code made with a `class` statement in this test (by id, and the
        # classes themselves, kept alive): only their instances come back from the program
        # as themselves when the test did not send them.
        self.class_ids = set()
        self.classes = []
        # The test's globals, and the program's data globals bound in them (by name): a call
        # that changes one makes the judge fetch it again (PROTOCOL.md, "Coherence").
        self.globals = None
        self.data_globals = {}
        # The program's data a test module read through `solution`: name -> (copy, module).
        self.module_globals = {}
        self.refetches = 0


_JUDGE = _Judge()


class _Gone(BaseException):
    """The candidate cannot answer any more (it trapped, exited or ran out of budget)."""


class CandidateError(Exception):
    """The candidate raised an exception that is not a builtin one."""


def _incident(kind, message):
    if _JUDGE.incident is None:
        _JUDGE.incident = (kind, str(message)[:_MESSAGE_CAP])


def _opaque(handle, what):
    _incident("VerdictOpaque",
              f"the test used {what} on a {handle._type} object from the candidate, which is "
              "not data: only data (numbers, strings, containers, …) can be compared")
    raise _Gone("opaque value")


def _crosses_as_test_object(value):
    """Whether a value of the test that is not data crosses as a test object (a callback): a
    callable (function, lambda, bound method, class), an iterator, or an object of a class the
    trusted code defines (a visitor)."""
    t = type(value)
    return callable(value) or hasattr(t, "__next__") or t.__module__ == "__main__"


def _test_object_tag(value, sent=False):
    """`{"jhandle": [index, type name]}` for a test object, or `{"jexception": [index, name,
    builtin bases]}` for a test's exception class; registered so that a candidate's reference
    to it is checked against what this test handed over."""
    index = _register(value)
    if sent:
        _JUDGE.sent.add(index)
    if isinstance(value, type) and issubclass(value, Exception) and \
            not issubclass(value, (StopIteration, StopAsyncIteration)):
        bases = [c.__name__ for c in value.__mro__
                 if _EXCEPTIONS.get(c.__name__) is c and c.__name__ not in _CONTROL_FLOW][:16]
        return ('{"jexception":[' + str(index) + "," + _encode_str(value.__name__[:100]) + ",[" +
                ",".join(_encode_str(b) for b in bases) + "]]}")
    name = value.__name__ if isinstance(value, type) else type(value).__name__
    return '{"jhandle":[' + str(index) + "," + _encode_str(str(name)[:100]) + "]}"


def _register(value):
    """The index of a test object handed to the candidate in this test."""
    index = _JUDGE.ids.get(id(value))
    if index is None:
        index = _JUDGE.ids[id(value)] = len(_JUDGE.objects)
        _JUDGE.objects.append(value)
    return index


def _trusted_build_class(func, name, *bases, **kwargs):
    """`__build_class__` of the trusted code's globals: records each class a `class` statement
    of the setup or the test makes (the program cannot run a `class` statement here: classes it
    has the judge build through a test object, with `type(...)` or an enum's functional API,
    never pass through this)."""
    cls = _BUILD_CLASS(func, name, *bases, **kwargs)
    _JUDGE.class_ids.add(id(cls))
    _JUDGE.classes.append(cls)
    return cls


_BUILD_CLASS = builtins.__build_class__
_TRUSTED_FILES = frozenset(["<setup>", "<judge_setup>", "<test>"])


def _trusted(value):
    """Whether a test object the test did not send may still come back as itself: an instance
    of a class of the trusted code's own `class` statements, or a function the trusted code
    defines. Anything else the program made the judge build (a class from `type(...)`, an
    enum from the functional API, their instances) is not the test's."""
    t = type(value)
    if id(t) in _JUDGE.class_ids or (isinstance(value, type) and id(value) in _JUDGE.class_ids):
        return True
    if t is types.FunctionType:
        return value.__code__.co_filename in _TRUSTED_FILES
    if t is types.MethodType:
        return _trusted(value.__func__) and _trusted(value.__self__)
    return False


def _judge_handle(value):
    """What a value of the test that is not data becomes when the test sends it."""
    if type(value) is _Handle:
        return value._target
    if _crosses_as_test_object(value):
        return _test_object_tag(value, True)
    if _JUDGE.to_returned:
        # The program returned an object where data would do (a list subclass), and the test
        # uses it with a value that cannot cross: the program's choice, so its failure.
        _incident("VerdictOpaque",
                  f"the test passes a value of type {type(value).__name__} to an object the "
                  "program returned instead of data, which cannot cross to it")
        raise _Gone("uncrossable argument")
    _incident("VerdictUnjudgeable",
              f"the test passes a value of type {type(value).__name__} to the candidate, which "
              "cannot cross to it (only data and the candidate's own objects can)")
    raise _Gone("unjudgeable argument")


def _judge_handle_derived(value):
    """What a value the test's code made in a callback becomes on its way to the candidate:
    data crosses as data, anything else as a test object."""
    if type(value) is _Handle:
        return value._target
    if _crosses_as_test_object(value):
        return _test_object_tag(value)
    raise _Refused(f"a value of type {type(value).__name__} of the test cannot cross")


def _resolve_judge(tag, v):
    if tag == "jhandle":
        # The candidate hands back a test object (`f(key) is key`): accepted as itself only
        # if this test handed it over, as an argument or as what a callback returned. Every
        # object the program can reach this way is one the test's own code made.
        parts = _need_list(v)
        if not parts or type(parts[0]) is not int or \
                not 0 <= parts[0] < len(_JUDGE.objects):
            _incident("VerdictOpaque", "the program sent back an object of the test that the "
                      "test never gave it")
            raise _Gone("unknown test object")
        obj = _JUDGE.objects[parts[0]]
        if parts[0] not in _JUDGE.sent and not _trusted(obj):
            _incident("VerdictOpaque", "the program sent back an object it had the test's code "
                      f"build (a {type(obj).__name__[:100]}), which is not the test's")
            raise _Gone("untrusted test object")
        return obj
    if tag == "shared":
        return _shared_class(v)
    if tag == "builtin":
        # A builtin the candidate answered with (`solve = sorted`): the program's object, so it
        # stays in the candidate, reached through a proxy (its work is the program's, and what
        # it makes is the program's too).
        h = _Handle('{"builtin":' + _encode_str(v) + "}", v)
        # Answered by one of the program's objects (`items()` returning `list`, or `xs.sort`
        # read from it), not a top-level name's value: a value the test cannot pass to it is
        # the program's choice, as for any object it returned.
        object.__setattr__(h, "_returned", not _JUDGE.answering_global)
        return h
    if tag != "handle":
        raise _Refused("malformed value: a global from the candidate")
    parts = _need_list(v)
    if len(parts) != 2 or type(parts[0]) is not int or type(parts[1]) is not str:
        raise _Refused("malformed value: handle")
    h = _JUDGE.handles.get(parts[0])
    if h is None:
        h = _JUDGE.handles[parts[0]] = _Handle(
            '{"handle":[' + str(parts[0]) + "," + _encode_str(parts[1][:100]) + "]}",
            parts[1][:100])
    return h


def _forward(op, args=None):
    """Sends one operation to the candidate through the host and returns the answer's value."""
    w = _Writer(_JUDGE.limit, _judge_handle, {})
    target = op[1] if len(op) > 1 else None
    _JUDGE.to_returned = type(target) is _Handle and (
        target._target.startswith('{"handle"') or target._returned)
    to_returned = _JUDGE.to_returned
    _JUDGE.answering_global = op[0] == "global"
    _enc_op(w, op)
    sent = w.objects
    message = "Q" + w.text()
    while True:
        try:
            reply = peer.forward(message)
        except Err as exc:
            _incident("VerdictCandidateGone", exc.value)
            raise _Gone(exc.value)
        if reply[:1] != "Q":
            break
        # A callback: the program calls a test object while this request is open.
        message = "R" + _serve_callback(reply[1:])
    _JUDGE.to_returned = to_returned
    _JUDGE.answering_global = op[0] == "global"
    try:
        raw = json.loads(reply[1:])
    except (ValueError, RecursionError):
        raw = None
    if type(raw) is not dict or not _answer_fits(op[0], raw, args is not None):
        _incident("VerdictBadAnswer", "the candidate sent a malformed answer, or an answer "
                  f"that {op[0]!r} cannot have (see PROTOCOL.md, the state machine)")
        raise _Gone("malformed answer")
    if "stop" in raw:
        if "value" not in raw:
            raise StopIteration
        try:
            value = _rebuild(raw["value"], _resolve_judge)
        except Exception as exc:  # _Refused, or any error of a rebuild
            _incident("VerdictBadAnswer", f"malformed value: {type(exc).__name__}: {exc}")
            raise _Gone("malformed answer")
        raise StopIteration(value)
    if "exit" in raw:
        _incident("VerdictCandidateExit",
                  f"the program raised SystemExit({raw['exit']!r}) inside a call")
        raise _Gone("exit")
    if "raised" in raw:
        raise _candidate_exception(raw["raised"])
    if "ok" not in raw:
        _incident("VerdictBadAnswer", "the candidate sent a malformed answer")
        raise _Gone("malformed answer")
    global _ALIASES
    saved, _ALIASES = _ALIASES, list(sent)
    try:
        value = _rebuild(raw["ok"], _resolve_judge)
        if "refs" in raw:
            _copy_refs(sent, raw["refs"])
        if args is not None and "args" in raw:
            _copy_back(args, raw["args"])
        stale = raw.get("stale")
    except _Refused as exc:
        _incident("VerdictBadAnswer", exc)
        raise _Gone("malformed answer")
    except Exception as exc:  # any error of a rebuild (ZeroDivisionError, InvalidOperation)
        _incident("VerdictBadAnswer", f"malformed value: {type(exc).__name__}: {exc}")
        raise _Gone("malformed answer")
    finally:
        _ALIASES = saved
    if stale is not None:
        try:
            _refresh(stale)
        except _Refused as exc:
            _incident("VerdictBadAnswer", exc)
            raise _Gone("malformed answer")
    return value


_SUBCLASSES = {}
_COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
                "gt": operator.gt, "ge": operator.ge}


def _serve_callback(text):
    """One operation of the program on a test object (PROTOCOL.md, "Callbacks"): a call, a
    method read (`visitor.visit`: callables only, never a dunder or data), `iter` or `next`. The
    test's own code runs here, under the judge's budget; what it returns crosses back as data or
    as another test object; what it raises reaches the program as an exception."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raw = None
    target = None
    if type(raw) is list and len(raw) >= 2 and type(raw[0]) is str:
        ref = raw[1]
        if type(ref) is dict and len(ref) == 1 and type(ref.get("jhandle")) is list and \
                ref["jhandle"] and type(ref["jhandle"][0]) is int and \
                0 <= ref["jhandle"][0] < len(_JUDGE.objects):
            target = _JUDGE.objects[ref["jhandle"][0]]
            ok = True
        else:
            ok = False
    else:
        ok = False
    if not ok:
        _incident("VerdictBadAnswer", "the program sent a malformed call into the test")
        return '{"raised":["RuntimeError","a malformed call into the test"]}'
    what = raw[0]
    try:
        rest = [_rebuild(x, _resolve_judge) for x in raw[2:]]
    except _Gone:
        return '{"raised":["RuntimeError","the test cannot go on"]}'
    except BaseException as exc:
        # Whatever rebuilding the program's arguments raised (a `Fraction` with a zero
        # denominator, a `Decimal` of no number), it never reaches the test's frames.
        _incident("VerdictBadAnswer", f"a malformed call into the test: {_message(exc)}")
        return '{"raised":["RuntimeError","a malformed call into the test"]}'
    stopped = False
    try:
        if what == "call" and len(rest) == 2 and type(rest[0]) is list and \
                type(rest[1]) is dict and all(type(k) is str for k in rest[1]):
            result = target(*rest[0], **rest[1])
        elif what == "getattr" and len(rest) == 1 and type(rest[0]) is str:
            result = _test_method(target, rest[0])
        elif what == "getitem" and len(rest) == 1 and _trusted(target):
            result = target[rest[0]]
        elif what == "iter" and not rest:
            result = iter(target)
        elif what == "next" and not rest:
            try:
                result = next(target)
            except StopIteration as stop:
                if stop.value is None:
                    return '{"stop":true}'
                result, stopped = stop.value, True
        else:
            _incident("VerdictBadAnswer", "the program sent an unknown operation into the test")
            return '{"raised":["RuntimeError","an unknown operation on a test object"]}'
    except _Gone:
        return '{"raised":["RuntimeError","the test cannot go on"]}'
    except BaseException as exc:
        if isinstance(exc, AssertionError):
            # An assertion of the test's own code failed: the test fails, whatever the
            # program does with the exception.
            _incident("VerdictAssertion", f"AssertionError: {_message(exc)}".rstrip(": "))
        index = _JUDGE.ids.get(id(type(exc)))
        if index is None and _trusted(type(exc)):
            # The test's own exception class: the program that lets it propagate gives it
            # back as itself (`except Boom` in the test catches it).
            index = _register(type(exc))
        return _raised_answer(exc, _JUDGE.limit, _judge_handle_derived, index)
    try:
        w = _Writer(_JUDGE.limit, _judge_handle_derived)
        w.put('{"stop":true,"value":' if stopped else '{"ok":')
        _enc(w, result)
        w.put("}")
        return w.text()
    except BaseException as exc:
        return '{"raised":["TypeError",' + _encode_str(_message(exc)) + "]}"


def _test_method(target, name):
    """`target.name` for the program: only a public method bound to the object itself — one
    of the trusted code's own functions, or a builtin method of a test's object (a `StringIO`'s
    `write`). Never a class's attribute (no `mro`, no enum machinery), a private or special
    name, a module's function, or data."""
    if name.startswith("_"):
        raise AttributeError(f"the program may not read {name[:100]!r} of a test object")
    if isinstance(target, (type, types.ModuleType)):
        raise AttributeError(f"the program may not read attributes of the test's {target!r:.100}"
                             " (only call it)")
    value = getattr(target, name)
    t = type(value)
    if t is types.MethodType and value.__self__ is target and \
            getattr(value.__func__, "__code__", None) is not None and \
            value.__func__.__code__.co_filename in _TRUSTED_FILES:
        return value
    if t is types.BuiltinMethodType and getattr(value, "__self__", None) is target:
        return value
    raise AttributeError(f"{name[:100]!r} of a test object is not one of its methods: the "
                         "program may call a test object and its methods, never read its data")


def _candidate_exception(raised):
    """The exception the candidate raised, as the judge raises it: a builtin one by name, a
    program's own class as a class of that name deriving from the first builtin exception among
    its bases (so `except ValueError` catches it, `type(e).__name__` is its name), with its
    `args` rebuilt where they are data. Exceptions that steer control flow (a StopIteration from
    a mapped function would end a `map` early, so `all(map(...))` would hold) never cross as
    themselves: they become the next builtin base, or `CandidateError`."""
    if type(raised) is not list or len(raised) not in (2, 4, 5) or \
            type(raised[0]) is not str or type(raised[1]) is not str:
        _incident("VerdictBadAnswer", "the candidate sent a malformed exception")
        return _Gone("malformed answer")
    kind, message = raised[0][:100], raised[1][:_MESSAGE_CAP]
    if kind.startswith("Verdict"):
        _incident("VerdictBadAnswer", f"{kind}: {message}")
        return _Gone(kind)
    bases = raised[2] if len(raised) >= 4 and type(raised[2]) is list else []
    names = [kind] + [b for b in bases[:16] if type(b) is str]
    test_class = _test_exception_class_of(raised[4] if len(raised) == 5 else None)
    base = test_class or _SHARED_EXCEPTIONS.get(kind) or next(
        (_EXCEPTIONS[n] for n in names if n in _EXCEPTIONS and n not in _CONTROL_FLOW), None)
    if base is None:
        return CandidateError(f"{kind}: {message}")
    cls = base
    if base.__name__ != kind and test_class is None:
        cls = _SUBCLASSES.get((kind, base))
        if cls is None:
            if len(_SUBCLASSES) > 256:
                _SUBCLASSES.clear()
            try:
                cls = type(kind, (base,), {"__module__": "candidate"})
            except BaseException:  # a name `type` refuses (a NUL): the class cannot be named
                return CandidateError(f"{kind!r}: {message}")
            _SUBCLASSES[(kind, base)] = cls
    args = None
    if len(raised) >= 4 and raised[3] is not None:
        try:
            args = _rebuild(raised[3], _resolve_judge)
        except BaseException:
            args = None
    for make in ((lambda: cls(*args)) if type(args) is list else None, lambda: cls(message)):
        if make is None:
            continue
        try:
            return make()
        except BaseException:
            pass
    return CandidateError(f"{kind}: {message}")


def _test_exception_class_of(index):
    """The test's exception class the candidate claims it raised: only one this test handed
    over, or one of the trusted code's own classes that reached the program (raising it is what
    the program could do anyway, so the claim gains nothing)."""
    if type(index) is not int or not 0 <= index < len(_JUDGE.objects):
        return None
    cls = _JUDGE.objects[index]
    if index not in _JUDGE.sent and not _trusted(cls):
        return None
    if isinstance(cls, type) and issubclass(cls, Exception) and \
            not issubclass(cls, (StopIteration, StopAsyncIteration)):
        return cls
    return None


def _answer_fits(what, raw, copies_back):
    """Whether `raw` is an answer the operation `what` may have: `{"stop": true}` (with the
    generator's return `value`, or without) only for `next`, `refs` and `args` only beside the
    `ok` of a call whose arguments travel back, one key else."""
    if what == "call" and copies_back and "ok" in raw and 1 < len(raw) <= 4:
        return all(k in ("ok", "refs", "args", "stale") for k in raw)
    if "stop" in raw and len(raw) <= 2:
        return (what == "next" and raw["stop"] is True
                and (len(raw) == 1 or "value" in raw))
    if len(raw) == 1:
        if "stop" in raw:
            return what == "next" and raw["stop"] is True
        if "exit" in raw:
            return type(raw["exit"]) is int
        return "ok" in raw or "raised" in raw
    return False


def _copy_refs(sent, raw):
    """Replaces the contents of every container the test sent with what the call left in the
    candidate's copy of it (in-place changes at any depth), in the order they were sent."""
    if type(raw) is not list or len(raw) != len(sent):
        raise _Refused("malformed value: the contents of the arguments")
    for obj, new in zip(sent, raw):
        t = type(obj)
        if t is bytearray:
            obj[:] = bytes.fromhex(_need_str(new))
        elif t is dict:
            pairs = _pairs(new, _resolve_judge, 1)
            obj.clear()
            obj.update(pairs)
        else:
            items = [_rebuild(x, _resolve_judge, 1) for x in _need_list(new)]
            if t is list:
                obj[:] = items
            else:
                obj.clear()
                obj.update(items)


def _copy_back(args, raw):
    """Replaces the attributes of the setup objects among the judge's arguments with what the
    call left in the candidate's copies (`reorderList(head)`; containers travel back by
    identity, `_copy_refs`)."""
    if type(raw) is not list or len(raw) != len(args):
        raise _Refused("malformed value: arguments")
    for arg, new in zip(args, raw):
        if new is None:
            continue
        t = type(arg)
        value = _rebuild(new, _resolve_judge)
        if type(value) is not t or t not in _SHARED_TYPES:
            raise _Refused("malformed value: an argument changed type")
        # Its attributes become the rebuilt ones, so the test walking from it sees the change.
        arg.__dict__.clear()
        arg.__dict__.update(value.__dict__)


def _compare(handle, other, op, symbol):
    """A comparison with a program's object: between two of them the program's own comparison
    decides (as natively); against the judge's data it is an incident (the test fails), so an
    always-equal object gains nothing against an expected value."""
    if type(other) is not _Handle:
        _opaque(handle, symbol)
    value = _forward([op, handle, other])
    if type(value) is not bool:
        _incident("VerdictBadAnswer", f"{symbol} is not a bool")
        raise _Gone("bad comparison")
    return value


class _Handle:
    """A proxy in the judge for an object living in the candidate instance (a function, a
    class, an instance, a generator). Calls, attribute reads, iteration, truth, `len`, `str`
    and indexing are forwarded, and their results come back as data. Two handles compare by
    the program's own comparison; a handle never decides an equality or an ordering against
    the judge's data (that is an incident: the test fails)."""

    __slots__ = ("_target", "_type", "_returned")

    def __init__(self, target, type_name):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_type", type_name)
        # A builtin the program's object answered with (see `_resolve_judge`).
        object.__setattr__(self, "_returned", False)

    def __call__(self, *args, **kwargs):
        return _forward(["call", self, list(args), kwargs], list(args) + list(kwargs.values()))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _forward(["getattr", self, name])

    def __setattr__(self, name, value):
        _forward(["setattr", self, name, value])

    def __iter__(self):
        return _forward(["iter", self])

    def __next__(self):
        return _forward(["next", self])

    def __bool__(self):
        value = _forward(["bool", self])
        if type(value) is not bool:
            _incident("VerdictBadAnswer", "truth value is not a bool")
            raise _Gone("bad bool")
        return value

    def __contains__(self, item):
        if type(item) is not _Handle:
            # The judge's data in the program's object: decided here, by the judge's own `==`
            # over the object's elements (as natively for an object without `__contains__`).
            # Forwarded, an object "containing everything", or one element equal to anything,
            # would decide that the expected value is in the answer.
            try:
                elements = iter(self)
            except TypeError:
                _opaque(self, "`in` with the test's data (it cannot be iterated)")
            for element in elements:
                if element is item or element == item:
                    return True
            return False
        # Two of the program's objects: its own membership decides, as natively.
        value = _forward(["contains", self, item])
        if type(value) is not bool:
            _incident("VerdictBadAnswer", "membership is not a bool")
            raise _Gone("bad contains")
        return value

    def __len__(self):
        value = _forward(["len", self])
        if type(value) is not int or value < 0:
            _incident("VerdictBadAnswer", "length is not a non-negative int")
            raise _Gone("bad len")
        return value

    def __getitem__(self, key):
        return _forward(["getitem", self, key])

    def __str__(self):
        value = _forward(["str", self])
        if type(value) is not str:
            _incident("VerdictBadAnswer", "str() is not a str")
            raise _Gone("bad str")
        return value

    def __repr__(self):
        return f"<candidate {self._type} object>"

    def __eq__(self, other):
        if other is self:
            return True
        return _compare(self, other, "eq", "==")

    def __ne__(self, other):
        if other is self:
            return False
        return _compare(self, other, "ne", "!=")

    def __lt__(self, other):
        return _compare(self, other, "lt", "<")

    def __le__(self, other):
        return _compare(self, other, "le", "<=")

    def __gt__(self, other):
        return _compare(self, other, "gt", ">")

    def __ge__(self, other):
        return _compare(self, other, "ge", ">=")

    def __hash__(self):
        # Two of the program's objects in one of the test's sets or dicts: its own `__hash__`
        # (and `__eq__`) decide, as natively. The harness never keys anything by a handle.
        value = _forward(["hash", self])
        if type(value) is not int:
            _incident("VerdictBadAnswer", "hash() is not an int")
            raise _Gone("bad hash")
        return value


def _opaque_operator(symbol):
    def operator_(self, *other):
        _opaque(self, symbol)
    return operator_


# Arithmetic, conversions and the rest: a handle takes part in none of them (each is an
# incident), so an object whose `__sub__` always returns 0 cannot satisfy `abs(f(x) - y) < eps`.
for _name, _symbol in (
        ("add", "+"), ("sub", "-"), ("mul", "*"), ("truediv", "/"), ("floordiv", "//"),
        ("mod", "%"), ("pow", "**"), ("matmul", "@"), ("and", "&"), ("or", "|"), ("xor", "^"),
        ("lshift", "<<"), ("rshift", ">>"), ("divmod", "divmod")):
    for _prefix in ("__", "__r", "__i"):
        setattr(_Handle, f"{_prefix}{_name}__", _opaque_operator(_symbol))
for _name in ("neg", "pos", "abs", "invert", "int", "float", "complex", "index", "round",
              "trunc", "floor", "ceil"):
    setattr(_Handle, f"__{_name}__", _opaque_operator(_name))
del _name, _symbol, _prefix


def _names_in(codes):
    """Every name the code objects (and the code objects nested in them) refer to."""
    names = set()
    stack = list(codes)
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if type(c) is types.CodeType)
    return names


def _plain_imports(program):
    """What the program's source says of its stdlib names: ({name: dotted}, functions). The
    first maps each name a top-level `import m`, `import m as a` or `from p import x` binds to
    a stdlib module or object, and that is never rebound anywhere (no `def`, `class`,
    assignment, `del`, `global`, other import, `except … as`, pattern capture of that name); the
    second holds the names of the program's top-level functions. What the candidate says of
    its globals is not read here."""
    try:
        tree = ast.parse(program)
    except BaseException:
        return {}, set()
    functions = {node.name for node in tree.body
                 if type(node) in (ast.FunctionDef, ast.AsyncFunctionDef)}
    found = {}
    rebound = set()
    top = set()
    for node in tree.body:
        if type(node) is ast.Import:
            pairs = [(a.asname or a.name.partition(".")[0], a.name if a.asname else
                      a.name.partition(".")[0]) for a in node.names]
        elif type(node) is ast.ImportFrom and not node.level and node.module:
            pairs = [(a.asname or a.name, node.module + "." + a.name)
                     for a in node.names if a.name != "*"]
        else:
            continue
        top.add(id(node))
        for name, module in pairs:
            if found.get(name, module) != module:
                rebound.add(name)
            found[name] = module
    if not found:
        return {}, functions
    for node in ast.walk(tree):
        t = type(node)
        if t is ast.Name and type(node.ctx) is not ast.Load:
            rebound.add(node.id)
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            rebound.add(node.name)
        elif t in (ast.Global, ast.Nonlocal):
            rebound.update(node.names)
        elif t in (ast.ExceptHandler, ast.MatchAs, ast.MatchStar) and node.name:
            rebound.add(node.name)
        elif t is ast.MatchMapping and node.rest:
            rebound.add(node.rest)
        elif t in (ast.Import, ast.ImportFrom) and id(node) not in top:
            rebound.update(a.asname or a.name.partition(".")[0] for a in node.names)
    return {name: m for name, m in found.items()
            if name not in rebound and m.partition(".")[0] in _STDLIB}, functions


_MISSING = object()


def _stdlib_object(dotted):
    """The judge's own import of a stdlib module or of an object of one (`datetime.datetime`),
    or `_MISSING`."""
    try:
        __import__(dotted)
        return sys.modules[dotted]
    except BaseException:
        pass
    parent, _, attr = dotted.rpartition(".")
    try:
        __import__(parent)
        return getattr(sys.modules[parent], attr)
    except BaseException:
        return _MISSING


def _attribute_bases(sources):
    """The names the trusted code reads an attribute of (`math` in `math.isclose(...)`)."""
    found = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except BaseException:
            continue
        for node in ast.walk(tree):
            if type(node) is ast.Attribute and type(node.value) is ast.Name:
                found.add(node.value.id)
    return found


def _bind(g, names, referenced, program, trusted):
    """Binds the names the test refers to and the program defines: what the program plainly
    imports from the stdlib to the judge's own import of it; a stdlib module's name to the
    judge's module unless the program defines a function of that name that the test does not
    use as a module (`trace(m)` is the program's, `math.isclose` never is); builtins never
    (they stay the judge's); the rest to proxies of the candidate's objects."""
    source = None
    for name in sorted(referenced):
        kind = names.get(name)
        if type(kind) is not str or name.startswith("__") or name in _BUILTIN_NAMES:
            continue
        if kind == "m" or name in _STDLIB:
            if source is None:
                source = _plain_imports(program)
            imports, _ = source
            obj = _stdlib_object(imports[name]) if name in imports else _MISSING
            if obj is _MISSING and name in _STDLIB and name in _attribute_bases(trusted):
                obj = _stdlib_object(name)
            if obj is not _MISSING:
                g[name] = obj
                continue
        g[name] = _program_global(name, kind)


def _program_global(name, kind):
    """A global of the program in the judge: data fetched once and rebuilt, else a proxy."""
    target = '{"global":' + _encode_str(name) + "}"
    if kind == "d":
        value = _forward(["global", _Handle(target, name)])
        _JUDGE.data_globals[name] = value
        return value
    return _Handle(target, name)


_MAX_REFETCHES = 10_000


def _refresh(stale):
    """Fetches again the data globals a call changed, into the test's globals: a container
    the test already holds is updated in place (its aliases in the test see the change), any
    other value is rebound. At most `_MAX_REFETCHES` per test (then the copy stays as it was)."""
    if type(stale) is not list or _JUDGE.globals is None:
        raise _Refused("malformed value: stale globals")
    g = _JUDGE.globals
    for name in stale[:64]:
        if type(name) is not str or (name not in _JUDGE.data_globals and
                                     name not in _JUDGE.module_globals):
            raise _Refused("malformed value: a stale global the test does not hold")
        if name in _JUDGE.module_globals:
            _refresh_module_global(name)
        if name not in _JUDGE.data_globals:
            continue
        fetched = _JUDGE.data_globals[name]
        if g.get(name, _MISSING) is not fetched:
            # The test's code rebound the name (`EXPECTED = 3`, a `def`, a fixture): it is the
            # test's own now, never refreshed with the program's data.
            continue
        new = _refetch(name)
        if new is _MISSING:
            return
        if not _update_in_place(fetched, new):
            g[name] = new
            _JUDGE.data_globals[name] = new


def _refetch(name):
    """The program's data global `name` fetched again, or `_MISSING` past the per-test cap."""
    if _JUDGE.refetches >= _MAX_REFETCHES:
        return _MISSING
    _JUDGE.refetches += 1
    return _forward(["global", _Handle('{"global":' + _encode_str(name) + "}", name)])


def _update_in_place(old, new):
    """Gives a list, bytearray, dict or set the contents of `new`, a value of its own type (so
    every alias of it sees them); whether it did."""
    t = type(old)
    if type(new) is not t:
        return False
    if t is list or t is bytearray:
        old[:] = new
    elif t is dict or t is set:
        old.clear()
        old.update(new)
    else:
        return False
    return True


def _refresh_module_global(name):
    """A stale data global a test module read through `solution`: the module's attribute
    follows the program (rebound or updated in place); a name `from solution import` bound in
    the module keeps the object it got, whose contents follow only if it is a container."""
    fetched, module = _JUDGE.module_globals[name]
    new = _refetch(name)
    if new is _MISSING or _update_in_place(fetched, new):
        return
    if module.__dict__.get(name, _MISSING) is fetched:
        module.__dict__[name] = new
        _JUDGE.module_globals[name] = (new, module)


def _namespaces_in_doubt(names, referenced, program, trusted):
    """Names of stdlib modules the program binds to objects of its own (not plain imports) and
    the trusted code reads attributes of."""
    candidates = [n for n in referenced if n in _STDLIB and not n.startswith("__")
                  and n not in _BUILTIN_NAMES and names.get(n) in ("f", "d", "m")]
    if not candidates:
        return ()
    imports, _ = _plain_imports(program)
    attributes = _attribute_bases(trusted)
    return tuple(sorted(n for n in candidates if n not in imports and n in attributes))


def _run_test(codes, names, referenced, program, trusted, seed, shadowed):
    """One run of the setup and test codes in fresh globals, with the program's names bound
    (and, for `shadowed`, the program's objects in place of the builtins or stdlib modules of
    those names). `codes` are (phase, code, classes the code shares) in order."""
    # Tests are trusted, but one test's changes to builtins must not reach the next.
    _reset_interpreter()
    builtins.__dict__.clear()
    builtins.__dict__.update(_PRISTINE_BUILTINS)
    g = {"__name__": "__main__",
         "__builtins__": dict(_PRISTINE_BUILTINS, __build_class__=_trusted_build_class)}
    if any("random" in source for source in trusted):
        random.seed(seed)
    phase = wit_world.Phase.SETUP
    _share_setup_classes({}, {}, ())
    _JUDGE.globals = g
    _JUDGE.data_globals = {}
    _JUDGE.module_globals = {}
    try:
        # Names the trusted code binds itself (`EXPECTED = 3`, its own imports, its `def`s)
        # are its own from the start: never bound to (nor refreshed with) the program's data.
        _bind(g, names, _free_names(referenced, trusted), program, trusted)
        for name in shadowed:
            g[name] = _program_global(name, names[name])
        for phase, code, shares in codes:
            before = dict(g)
            exec(code, g)
            if shares:
                _share_setup_classes(g, before, shares)
        status = wit_world.Status_Ok()
    except SystemExit as exc:
        status = wit_world.Status_Exit(_exit_code(exc))
    except BaseException as exc:
        status = wit_world.Status_Raised(_failure(phase, exc))
    _flush()
    return status


def _report(names_json):
    """What the host wrote for the judge: the candidate's names (checked there), the program's
    source and the judge-only setup."""
    try:
        report = json.loads(names_json) if names_json else {}
    except (ValueError, RecursionError):
        report = {}
    if type(report) is not dict:
        report = {}
    names = report.get("names")
    program = report.get("program")
    judge_setup = report.get("judge_setup")
    return (names if type(names) is dict else {}, program if type(program) is str else "",
            judge_setup if type(judge_setup) is str else "")


def _judge(setup, test, names_json, seed, limit):
    _JUDGE.__init__()
    _JUDGE.limit = limit
    names, program, judge_setup = _report(names_json)
    codes = []
    for phase, source, name in ((wit_world.Phase.SETUP, setup, "<setup>"),
                                (wit_world.Phase.SETUP, judge_setup, "<judge_setup>"),
                                (wit_world.Phase.TEST, test, "<test>")):
        if not source:
            continue
        try:
            # Only the shared setup's own classes cross by value (both sides define them).
            shares = _setup_classes(source) if name == "<setup>" else ()
            codes.append((phase, _compile(source, name), shares))
        except SyntaxError as exc:
            return wit_world.Status_Raised(_syntax_failure(phase, exc))
        except (ValueError, RecursionError, MemoryError) as exc:
            return wit_world.Status_Raised(_failure(phase, exc))
    trusted = (setup, judge_setup, test)
    referenced = _names_in([c for _, c, _ in codes])
    status = _run_test(codes, names, referenced, program, trusted, seed, ())
    # A name the program defines that is also a builtin (`def max`, tested as `check(max)` or
    # `max([1, 2]) == 2`): the builtin cannot stand in for the program's code, nor the
    # program's for the builtin the test relies on. So the test passes only if it passes both
    # ways: with the builtin, then with the program's object.
    # The same for a stdlib module's name the program binds to an object of its own (not a
    # plain import) that the test uses as a namespace (`statistics.mean(...)`): the judge's
    # module first, then the program's object.
    shadowed = tuple(sorted(n for n in referenced
                            if n in _BUILTIN_NAMES and not n.startswith("__")
                            and names.get(n) in ("f", "d", "m")))
    shadowed += _namespaces_in_doubt(names, referenced, program, trusted)
    if shadowed and type(status) is wit_world.Status_Ok and _JUDGE.incident is None:
        status = _run_test(codes, names, referenced, program, trusted, seed, shadowed)
    if _JUDGE.incident is not None:
        kind, message = _JUDGE.incident
        return wit_world.Status_Raised(wit_world.Failure(phase=wit_world.Phase.TEST, kind=kind,
                                                         message=message))
    return status


# --------------------------------------------------------------------------------------------
# Test modules: pytest- and unittest-style suites (PROTOCOL.md, "Test modules").
# --------------------------------------------------------------------------------------------

class _Skipped(BaseException):
    """`pytest.skip(...)` or a skip mark: the item did not run."""


class _PytestFailed(BaseException):
    """`pytest.fail(...)`, or a `pytest.raises` block that raised nothing."""


class _Unsupported(BaseException):
    """An item needs what the sandbox cannot give it (a fixture with a filesystem)."""


class _MarkDecorator:
    """`pytest.mark.<name>` and `pytest.mark.<name>(*args, **kwargs)`: records the mark on the
    function it decorates (in the order they apply, closest to the function first)."""

    def __init__(self, name, args=(), kwargs=None):
        self.name = name
        self.args = args
        self.kwargs = kwargs or {}

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):
            target = args[0]
            # A function's or a class's own marks (a class's `__dict__` is read-only).
            marks = vars(target).get("_verdict_marks") if hasattr(target, "__dict__") else None
            if marks is None:
                marks = []
                try:
                    setattr(target, "_verdict_marks", marks)
                except (AttributeError, TypeError):
                    pass
            marks.append(self)
            return target
        return _MarkDecorator(self.name, args, kwargs)


class _MarkFactory:
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _MarkDecorator(name)


class _Param:
    """`pytest.param(*values, id=..., marks=...)`."""

    def __init__(self, values, id=None, marks=()):
        self.values = values
        self.id = id
        self.marks = marks if isinstance(marks, (list, tuple)) else (marks,)


class _Approx:
    """`pytest.approx`: numbers within `rel` (default 1e-6) of the expected value or within
    `abs` (default 1e-12), element by element through lists, tuples and dicts."""

    def __init__(self, expected, rel=None, abs=None):
        self.expected = expected
        self.rel = rel
        self.abs = abs

    def _close(self, actual, expected):
        if isinstance(expected, dict):
            return (isinstance(actual, dict) and actual.keys() == expected.keys()
                    and all(self._close(actual[k], expected[k]) for k in expected))
        if isinstance(expected, (list, tuple)) and not isinstance(expected, str):
            return (isinstance(actual, (list, tuple)) and len(actual) == len(expected)
                    and all(self._close(a, e) for a, e in zip(actual, expected)))
        if type(expected) in (int, float, complex, _Decimal, _Fraction) and \
                type(actual) in (int, float, complex, _Decimal, _Fraction) and \
                type(expected) is not bool and type(actual) is not bool:
            if actual == expected:
                return True
            if expected != expected or expected in (float("inf"), float("-inf")):
                return False
            rel = 1e-6 if self.rel is None else self.rel
            absolute = 1e-12 if self.abs is None else self.abs
            # Only `abs` given: no relative tolerance at all (pytest's rule).
            tol = absolute if self.rel is None and self.abs is not None else \
                max(rel * abs(expected), absolute)
            return abs(actual - expected) <= tol
        return actual == expected

    def __eq__(self, actual):
        return self._close(actual, self.expected)

    def __ne__(self, actual):
        return not self.__eq__(actual)

    __hash__ = None

    def __repr__(self):
        return f"approx({self.expected!r})"


class _RaisesInfo:
    """What `pytest.raises` caught: `.value`, `.type`, `.match(pattern)`."""

    def __init__(self):
        self.value = None
        self.type = None

    def match(self, pattern):
        if not re.search(pattern, str(self.value)):
            raise AssertionError(f"Regex pattern {pattern!r} does not match {str(self.value)!r}")
        return True


class _Raises:
    def __init__(self, expected, match):
        self.expected = expected
        self.match = match
        self.info = _RaisesInfo()

    def __enter__(self):
        return self.info

    def __exit__(self, t, value, tb):
        if t is None:
            raise _PytestFailed(f"DID NOT RAISE {self.expected!r:.200}")
        if not _raised_as(t, self.expected):
            return False
        self.info.value, self.info.type = value, t
        if self.match is not None:
            self.info.match(self.match)
        return True


def _raised_as(t, expected):
    """`issubclass(t, expected)`, where `expected` may also name the program's own exception
    class (a proxy: `pytest.raises(solution.InvalidInput)`): the program's exception crosses
    as a class of that name (`_candidate_exception`), so its name decides, as the program
    decides its own exceptions natively."""
    wanted = expected if type(expected) is tuple else (expected,)
    for e in wanted:
        if type(e) is _Handle:
            if t.__name__ == e._type and t.__module__ == "candidate":
                return True
        elif isinstance(e, type) and issubclass(t, e):
            return True
    return False


def _pytest_raises(expected, *args, match=None, **kwargs):
    if not args:
        return _Raises(expected, match)
    with _Raises(expected, match) as info:
        args[0](*args[1:], **kwargs)
    return info


def _pytest_fixture(function=None, *, scope="function", params=None, autouse=False, ids=None,
                    name=None):
    def mark(f):
        f._verdict_fixture = {"name": name or f.__name__, "autouse": autouse,
                              "params": params}
        return f
    return mark(function) if function is not None else mark


def _pytest_fail(reason="", pytrace=True):
    raise _PytestFailed(reason)


def _pytest_skip(reason="", allow_module_level=False):
    raise _Skipped(reason)


def _pytest_importorskip(name, minversion=None, reason=None):
    try:
        return __import__(name)
    except ImportError:
        raise _Skipped(reason or f"could not import {name!r}")


def _make_pytest():
    """The `pytest` a test module imports in the judge: the API test modules use (`raises`,
    `approx`, `mark.parametrize`, `mark.skip`/`skipif`, `fixture`, `param`, `fail`, `skip`,
    `importorskip`), run by `_judge_suite`'s collector (PROTOCOL.md, "Test modules")."""
    m = types.ModuleType("pytest")
    m.raises = _pytest_raises
    m.approx = _Approx
    m.mark = _MarkFactory()
    m.fixture = _pytest_fixture
    m.param = lambda *values, id=None, marks=(): _Param(values, id, marks)
    m.fail = _pytest_fail
    m.skip = _pytest_skip
    m.importorskip = _pytest_importorskip
    m.__version__ = "verdict"
    return m


_PYTEST = _make_pytest()
# Fixtures the sandbox provides; any other (`tmp_path`, `monkeypatch`) makes the item `error`.
_BUILTIN_FIXTURES = frozenset(["capsys", "capfd"])


class _Capture:
    """`capsys` / `capfd`: what the program printed (stdout, stderr) since the fixture was made
    or last read, fetched from the candidate (the test's own prints are not captured)."""

    def __init__(self):
        _forward(["capture"])

    def readouterr(self):
        value = _forward(["captured"])
        if type(value) is not tuple or len(value) != 2 or type(value[0]) is not str or \
                type(value[1]) is not str:
            _incident("VerdictBadAnswer", "captured output is not two strings")
            raise _Gone("bad capture")
        return _CaptureResult(*value)


_CaptureResult = collections.namedtuple("CaptureResult", ["out", "err"])


def _idval(value, argname, index):
    t = type(value)
    if value is None or t in (bool, int, float, complex):
        return str(value)
    if t is str:
        return value.encode("unicode_escape").decode("ascii") if value.isascii() is False \
            else value
    if isinstance(value, enum.Enum):
        return str(value)
    if isinstance(value, (type, types.FunctionType)):
        return value.__name__
    return f"{argname}{index}"


def _parametrized(name, function, outer=()):
    """The items of one test function: `[(item name, arguments, marks)]`, one per combination
    of its `parametrize` marks and then its class's (`outer`; the mark closest to the function
    varies slowest)."""
    cases = [("", {}, [])]
    for mark in list(vars(function).get("_verdict_marks", ())) + list(outer):
        if mark.name != "parametrize":
            continue
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames")
        argvalues = mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("argvalues", [])
        ids = mark.kwargs.get("ids")
        if isinstance(argnames, str):
            argnames = [a.strip() for a in argnames.split(",") if a.strip()]
        argnames = list(argnames)
        rows = []
        for i, row in enumerate(list(argvalues)):
            row_id, marks = None, []
            if type(row) is _Param:
                row_id, marks, row = row.id, list(row.marks), row.values
            elif len(argnames) == 1:
                row = (row,)
            row = tuple(row)
            if row_id is None and isinstance(ids, (list, tuple)) and i < len(ids):
                row_id = ids[i]
            elif row_id is None and callable(ids):
                made = [ids(v) for v in row]
                row_id = "-".join(str(m) if m is not None else _idval(v, a, i)
                                  for m, v, a in zip(made, row, argnames))
            if row_id is None:
                row_id = "-".join(_idval(v, a, i) for v, a in zip(row, argnames))
            rows.append((str(row_id), dict(zip(argnames, row)), marks))
        cases = [((c_id + "-" if c_id else "") + r_id, {**c_args, **r_args}, c_marks + r_marks)
                 for c_id, c_args, c_marks in cases for r_id, r_args, r_marks in rows]
    return [(name + (f"[{c_id}]" if c_id else ""), args, marks) for c_id, args, marks in cases]


def _skip_reason(marks):
    for mark in marks:
        if mark.name == "skip":
            return mark.kwargs.get("reason", mark.args[0] if mark.args else "skipped")
        if mark.name == "skipif" and mark.args and mark.args[0]:
            return mark.kwargs.get("reason", "skipped")
    return None


def _call_with_fixtures(function, given, g, teardown, capture):
    """Calls a test function with its parametrized arguments and the fixtures its other
    parameters name (the module's own `@pytest.fixture` functions, `capsys`/`capfd`)."""
    import inspect
    kwargs = {}
    for pname, param in inspect.signature(function).parameters.items():
        if pname == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if pname in given:
            kwargs[pname] = given[pname]
        else:
            value = _fixture(pname, g, teardown, capture, 0)
            if value is not _MISSING or param.default is param.empty:
                kwargs[pname] = value
    return function(**kwargs)


def _fixture(name, g, teardown, capture, depth):
    if name in capture:
        return capture[name]
    if name in _BUILTIN_FIXTURES:
        capture[name] = _Capture()
        return capture[name]
    for value in list(g.values()):
        spec = _fixture_spec(value)
        if spec is not None and spec.get("name") == name:
            if spec.get("params") is not None or depth > 32:
                raise _Unsupported(f"fixture {name!r} with params is not supported")
            result = _call_with_fixtures(value, {}, g, teardown, capture)
            if type(result) is types.GeneratorType:
                teardown.append(result)
                result = next(result)
            capture[name] = result
            return result
    raise _Unsupported(f"fixture {name!r} is not available in the sandbox (it has no "
                       "filesystem, environment or plugins; capsys and capfd are)")


def _fixture_spec(value):
    """A fixture the trusted code defines (never a program's object claiming to be one: its
    attributes are the program's answers)."""
    if type(value) is not types.FunctionType or \
            value.__code__.co_filename not in _TRUSTED_FILES:
        return None
    spec = value.__dict__.get("_verdict_fixture")
    return spec if type(spec) is dict else None


def _autouse(g, teardown, capture):
    for value in list(g.values()):
        spec = _fixture_spec(value)
        if spec is not None and spec.get("autouse"):
            _fixture(spec["name"], g, teardown, capture, 0)


def _run_item(run, g):
    """One item: `run(teardown, capture)` with fresh fixtures; its status (the item's own
    incident first, as for an assert test)."""
    _JUDGE.incident = None
    teardown, capture = [], {}
    saved = sys.stdout
    status = wit_world.Status_Ok()
    try:
        _autouse(g, teardown, capture)
        run(teardown, capture)
    except _Skipped as exc:
        status = _item_failure("VerdictSkipped", f"skipped: {_message(exc)}")
    except _PytestFailed as exc:
        status = _item_failure("AssertionError", _message(exc))
    except _Unsupported as exc:
        status = _item_failure("VerdictUnjudgeable", _message(exc))
    except SystemExit as exc:
        status = wit_world.Status_Exit(_exit_code(exc))
    except BaseException as exc:
        status = wit_world.Status_Raised(_failure(wit_world.Phase.TEST, exc))
    finally:
        sys.stdout = saved
    for gen in reversed(teardown):
        try:
            next(gen)
        except StopIteration:
            pass
        except BaseException as exc:
            if type(status) is wit_world.Status_Ok:
                status = wit_world.Status_Raised(_failure(wit_world.Phase.TEST, exc))
    if _JUDGE.incident is not None:
        kind, message = _JUDGE.incident
        status = _item_failure(kind, message)
    _JUDGE.incident = None
    return status


def _item_failure(kind, message):
    return wit_world.Status_Raised(wit_world.Failure(phase=wit_world.Phase.TEST, kind=kind,
                                                     message=str(message)[:_MESSAGE_CAP]))


def _function_item(function, given, marks, g, instance=None):
    def run(teardown, capture):
        reason = _skip_reason(marks + list(vars(function).get("_verdict_marks", ())))
        if reason is not None:
            raise _Skipped(reason)
        if instance is None:
            _call_with_fixtures(function, given, g, teardown, capture)
            return
        # A test class: a fresh instance per item, with its xunit-style `setup_method` and
        # `teardown_method` around the test, as pytest runs them.
        obj = instance()
        target = types.MethodType(function, obj)
        setup = getattr(obj, "setup_method", None)
        if callable(setup):
            setup(target)
        try:
            _call_with_fixtures(target, given, g, teardown, capture)
        finally:
            down = getattr(obj, "teardown_method", None)
            if callable(down):
                down(target)
    return run


def _unittest_items(cls, names, style):
    """The items of a `unittest.TestCase` class, run as one suite (so `setUpClass` runs once,
    as natively), each test's outcome (and its own incident) recorded on its own."""
    import unittest
    prefix = cls.__name__ + ("::" if style == "pytest" else ".")
    statuses = {}

    class Result(unittest.TestResult):
        def startTest(self, test):
            _JUDGE.incident = None
            super().startTest(test)

        def stopTest(self, test):
            super().stopTest(test)
            name = getattr(test, "_testMethodName", None)
            if name is None:
                return
            status = statuses.get(name, wit_world.Status_Ok())
            if _JUDGE.incident is not None:
                status = _item_failure(*_JUDGE.incident)
            statuses[name] = status
            _JUDGE.incident = None

        def _record(self, test, status):
            # A subtest's outcome belongs to its test (`_SubTest.test_case`).
            test = getattr(test, "test_case", test)
            name = getattr(test, "_testMethodName", None)
            if name is not None and type(statuses.get(name)) is not wit_world.Status_Raised:
                statuses[name] = status
            elif name is None:
                # setUpClass and friends: every item of the class shares the failure.
                for n in names:
                    statuses.setdefault(n, status)

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._record(test, _item_failure("AssertionError", _message(err[1])))

        def addError(self, test, err):
            super().addError(test, err)
            exc = err[1]
            if isinstance(exc, _Unsupported):
                self._record(test, _item_failure("VerdictUnjudgeable", _message(exc)))
            else:
                self._record(test, wit_world.Status_Raised(
                    _failure(wit_world.Phase.TEST, exc)))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            self._record(test, _item_failure("VerdictSkipped", f"skipped: {reason}"))

        def addExpectedFailure(self, test, err):
            # An expected failure is judged by what happened: the test's own assertion is a
            # failed item, anything else the program raised is its runtime error (never a
            # pass: a crash would satisfy it).
            super().addExpectedFailure(test, err)
            exc = err[1]
            self._record(test, _item_failure("AssertionError", _message(exc))
                         if isinstance(exc, AssertionError) else
                         wit_world.Status_Raised(_failure(wit_world.Phase.TEST, exc)))

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._record(test, _item_failure("AssertionError", "unexpected success"))

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                exc = err[1]
                failure = _item_failure("AssertionError", _message(exc)) \
                    if isinstance(exc, AssertionError) else \
                    wit_world.Status_Raised(_failure(wit_world.Phase.TEST, exc))
                self._record(test, failure)

    suite = unittest.TestSuite(cls(n) for n in names)
    try:
        suite.run(Result())
    except BaseException as exc:
        for n in names:
            statuses.setdefault(n, wit_world.Status_Raised(_failure(wit_world.Phase.TEST, exc)))
    _JUDGE.incident = None
    return [(prefix + n, statuses.get(n, wit_world.Status_Ok())) for n in names]


def _suite_import(module, solution):
    """`__import__` of a test module's code: its `solution` (or declared module name) is the
    program, reached through proxies; `pytest` is the judge's own; any other module the
    standard library has is imported as usual; anything else is `ModuleNotFoundError`, as
    natively (never the program: it could define the very helpers a test imports)."""
    real = _PRISTINE_BUILTINS["__import__"]

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == solution or name.startswith(solution + ".")):
            if name != solution:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            if fromlist and "*" in fromlist and type(globals) is dict:
                # A star import never replaces a name the module already has (whatever bound
                # it: a `match` capture, `globals()[...]`, the judge's hidden tables).
                module.__all__ = [n for n in module.__dict__["_verdict_all"]
                                  if n not in globals]
            return module
        if level == 0 and name == "pytest" or name.startswith("pytest."):
            return _PYTEST
        top = name.partition(".")[0]
        if level != 0 or top not in _STDLIB:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, globals, locals, fromlist, level)
    return __import__


def _solution_module(name, names, bound):
    """The program as a module of the test's: its names, fetched on first use. What
    `from solution import *` binds (`__all__`) leaves out every name that is a builtin, a
    stdlib module or `pytest`, and every name the test module binds itself: a star import
    never puts the program's objects in place of the test's `abs`, `math`, `approx` or
    `pytest` (an explicit `from solution import max` is the test asking for the program's)."""
    module = types.ModuleType(name)
    kinds = {n: k for n, k in names.items() if type(n) is str and type(k) is str
             and not n.startswith("__")}
    module.__all__ = [n for n in kinds if not n.startswith("_") and n not in _BUILTIN_NAMES
                      and n not in _STDLIB and n != "pytest" and n not in bound]
    module._verdict_all = tuple(module.__all__)

    def __getattr__(attr):
        kind = kinds.get(attr)
        if kind is None:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        target = '{"global":' + _encode_str(attr) + "}"
        if kind == "d":
            # Data: the module's attribute is refreshed when a call changes it (`solution.BASE`
            # is live, as natively); a name a `from solution import BASE` bound is a snapshot,
            # of which only a container's contents follow the program (PROTOCOL.md,
            # "Coherence").
            value = _forward(["global", _Handle(target, attr)])
            _JUDGE.module_globals[attr] = (value, module)
        else:
            value = _Handle(target, attr)
        module.__dict__[attr] = value
        return value
    module.__getattr__ = __getattr__
    return module


_BOUND_CACHE = {}


def _imports_module(source, name):
    """Whether a module's source imports `name` (`import name`, `from name import …`)."""
    try:
        tree = ast.parse(source)
    except BaseException:
        return False
    for node in ast.walk(tree):
        if type(node) is ast.Import and any(a.name == name or a.name.startswith(name + ".")
                                             for a in node.names):
            return True
        if type(node) is ast.ImportFrom and not node.level and node.module and \
                (node.module == name or node.module.startswith(name + ".")):
            return True
    return False


def _free_names(referenced, trusted):
    """The names the trusted code refers to without binding them anywhere itself."""
    key = tuple(trusted)
    bound = _BOUND_CACHE.get(key)
    if bound is None:
        if len(_BOUND_CACHE) > 64:
            _BOUND_CACHE.clear()
        bound = _BOUND_CACHE[key] = frozenset().union(*(_bound_names(t) for t in trusted))
    return {n for n in referenced if n not in bound}


def _bound_names(source):
    """The names a module's code binds anywhere (assignments, imports, definitions)."""
    try:
        tree = ast.parse(source)
    except BaseException:
        return frozenset()
    bound = set()
    for node in ast.walk(tree):
        t = type(node)
        if t is ast.Name and type(node.ctx) is not ast.Load:
            bound.add(node.id)
        elif t in (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef):
            bound.add(node.name)
        elif t in (ast.Import, ast.ImportFrom):
            bound.update((a.asname or a.name).partition(".")[0] for a in node.names
                         if a.name != "*")
        elif t in (ast.MatchAs, ast.MatchStar, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif t is ast.MatchMapping and node.rest:
            bound.add(node.rest)
        elif t in (ast.Global, ast.Nonlocal):
            bound.update(node.names)
    return frozenset(bound)


def _static_items(source, style):
    """The items a module would have, read from its source (for a module that fails before
    its items run: it fails as many items as it has, so a program that breaks collection never
    raises its pass fraction). Parametrized functions count the cases of literal lists."""
    try:
        tree = ast.parse(source)
    except BaseException:
        return []
    items = []
    # Top-level tables a `parametrize` may name (`CASES = [...]`).
    tables = {}
    marks = {}

    def count(values):
        """The rows of a `parametrize` table: a literal, a named table, a concatenation."""
        if type(values) in (ast.List, ast.Tuple):
            return len(values.elts)
        if type(values) is ast.Name:
            return tables.get(values.id)
        if type(values) is ast.BinOp and type(values.op) is ast.Add:
            left, right = count(values.left), count(values.right)
            return None if left is None or right is None else left + right
        return None

    for node in tree.body:
        target = value = None
        if type(node) is ast.Assign and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif type(node) is ast.AnnAssign and node.value is not None:
            target, value = node.target, node.value
        if type(target) is not ast.Name:
            continue
        n = count(value)
        if n is not None:
            tables[target.id] = n
        elif type(value) is ast.Call and type(value.func) is ast.Attribute and \
                value.func.attr == "parametrize":
            marks[target.id] = value  # `cases = pytest.mark.parametrize(...)`, then `@cases`

    def cases(fn):
        n = 1
        for d in fn.decorator_list:
            if type(d) is ast.Name and d.id in marks:
                d = marks[d.id]
            if type(d) is not ast.Call or type(d.func) is not ast.Attribute or \
                    d.func.attr != "parametrize":
                continue
            values = d.args[1] if len(d.args) >= 2 else next(
                (k.value for k in d.keywords if k.arg == "argvalues"), None)
            n *= max(1, count(values) or 1)
        return n

    # Classes deriving from `TestCase`, directly or through the module's own classes.
    unit_classes = {"TestCase"}

    def named(name, n):
        return [name] if n == 1 else [f"{name}[{i}]" for i in range(n)]

    for node in tree.body:
        if type(node) in (ast.FunctionDef, ast.AsyncFunctionDef) and style == "pytest" and \
                node.name.startswith("test"):
            items.extend(named(node.name, cases(node)))
        elif type(node) is ast.ClassDef:
            unit = any((type(b) is ast.Name and b.id in unit_classes) or
                       (type(b) is ast.Attribute and b.attr == "TestCase") for b in node.bases)
            if unit:
                unit_classes.add(node.name)
            if not unit and (style != "pytest" or not node.name.startswith("Test")):
                continue
            sep = "::" if style == "pytest" else "."
            per_class = cases(node)
            for f in node.body:
                if type(f) in (ast.FunctionDef, ast.AsyncFunctionDef) and \
                        f.name.startswith("test"):
                    items.extend(named(f"{node.name}{sep}{f.name}", cases(f) * per_class))
    return items[:10_000]


def _judge_suite(setup, code, names_json, seed, limit, style, module_name):
    """A test module: compiled and run (collection), then each item in order, in one judge
    interpreter and against one candidate (items share module state, as natively). Returns the
    items, each with its status; a module that does not compile, or raises while collected, is
    one item named `<module>`."""
    _JUDGE.__init__()
    _JUDGE.limit = limit
    names, program, judge_setup = _report(names_json)
    style = "pytest" if style == wit_world.SuiteStyle.PYTEST else "unittest"
    module_name = module_name or "solution"
    codes = []
    for phase, source, name in ((wit_world.Phase.SETUP, setup, "<setup>"),
                                (wit_world.Phase.SETUP, judge_setup, "<judge_setup>"),
                                (wit_world.Phase.TEST, code, "<test>")):
        if not source:
            continue
        try:
            shares = _setup_classes(source) if name == "<setup>" else ()
            codes.append((phase, _compile(source, name), shares))
        except SyntaxError as exc:
            return [wit_world.Item(name="<module>",
                                   status=wit_world.Status_Raised(_syntax_failure(phase, exc)))]
        except (ValueError, RecursionError, MemoryError) as exc:
            return [wit_world.Item(name="<module>",
                                   status=wit_world.Status_Raised(_failure(phase, exc)))]
    trusted = (setup, judge_setup, code)
    referenced = _names_in([c for _, c, _ in codes])
    items = _run_suite(codes, names, referenced, program, trusted, code, seed, style,
                       module_name, ())
    # As for an assert test: a name the program defines that is also a builtin (`def max`) or
    # a stdlib module's the module reads attributes of, read by a module that does not import
    # it explicitly (BigCodeBench's appended tests): each item passes only if it passes both
    # with the judge's object and with the program's.
    shadowed = tuple(sorted(n for n in referenced
                            if n in _BUILTIN_NAMES and not n.startswith("__")
                            and names.get(n) in ("f", "d", "m")))
    shadowed += _namespaces_in_doubt(names, referenced, program, trusted)
    if shadowed and not _imports_module(code, module_name):
        again = dict(_run_suite(codes, names, referenced, program, trusted, code, seed, style,
                                module_name, shadowed))
        items = [(n, status if type(status) is not wit_world.Status_Ok
                  else again.get(n, _item_failure("VerdictOpaque", "the item did not run with "
                                                  "the program's own " + ", ".join(shadowed))))
                 for n, status in items]
    _flush()
    return [wit_world.Item(name=n[:500], status=status) for n, status in items[:10_000]]


def _run_suite(codes, names, referenced, program, trusted, code, seed, style, module_name,
               shadowed):
    """One run of a module: collection, then its items in order; `[(item name, status)]`."""
    _reset_interpreter()
    builtins.__dict__.clear()
    builtins.__dict__.update(_PRISTINE_BUILTINS)
    # What the trusted code binds itself (the module, the setup, the judge's hidden tables)
    # never comes from a star import of the program.
    solution = _solution_module(module_name, names,
                                frozenset().union(*(_bound_names(t) for t in trusted)))
    g = {"__name__": "test_" + module_name.replace(".", "_"),
         "__builtins__": dict(_PRISTINE_BUILTINS, __build_class__=_trusted_build_class,
                              __import__=_suite_import(solution, module_name))}
    if any("random" in source for source in trusted):
        random.seed(seed)
    _share_setup_classes({}, {}, ())
    _JUDGE.globals = g
    _JUDGE.data_globals = {}
    _JUDGE.module_globals = {}
    phase = wit_world.Phase.SETUP
    try:
        # A module that does not import the program (BigCodeBench) sees its names as globals,
        # bound as for an assert test.
        # A module that imports the program reaches it only through that import (a `from`
        # import is a snapshot, as natively); one that does not (BigCodeBench appends its
        # tests to the solution) sees the program's names as globals, except names the
        # trusted code binds itself.
        if not _imports_module(code, module_name):
            _bind(g, names, _free_names(referenced, trusted), program, trusted)
        for name in shadowed:
            g[name] = _program_global(name, names[name])
        for phase, compiled, shares in codes:
            before = dict(g)
            exec(compiled, g)
            if shares:
                _share_setup_classes(g, before, shares)
    except BaseException as exc:
        status = wit_world.Status_Exit(_exit_code(exc)) if isinstance(exc, SystemExit) \
            else wit_world.Status_Raised(_failure(phase, exc))
        if _JUDGE.incident is not None:
            status = _item_failure(*_JUDGE.incident)
        _JUDGE.incident = None
        return [(n, status) for n in (_static_items(code, style) or ["<module>"])]
    import unittest
    collected = []
    for name, value in list(g.items()):
        if type(name) is not str:
            continue
        if isinstance(value, type) and issubclass(value, unittest.TestCase) and \
                id(value) in _JUDGE.class_ids:
            methods = unittest.defaultTestLoader.getTestCaseNames(value)
            if methods:
                collected.append(("unittest", (value, list(methods))))
        elif style != "pytest":
            continue
        elif type(value) is types.FunctionType and name.startswith("test") and \
                value.__code__.co_filename == "<test>":
            collected.extend(("call", (n, _function_item(value, a, m, g), None))
                             for n, a, m in _parametrized(name, value))
        elif isinstance(value, type) and name.startswith("Test") and \
                id(value) in _JUDGE.class_ids and "__init__" not in vars(value):
            outer = list(vars(value).get("_verdict_marks", ()))
            for attr, method in vars(value).items():
                if attr.startswith("test") and type(method) is types.FunctionType:
                    collected.extend(
                        ("call", (f"{name}::{n}",
                                  _function_item(method, a, m + outer, g, value), value))
                        for n, a, m in _parametrized(attr, method, outer))
    out = []
    # pytest's xunit hooks: `setup_module`/`teardown_module` around the module's items,
    # `setup_class`/`teardown_class` around a `Test…` class's (the trusted code's own only).
    failed = _xunit(g, "setup_module")
    current, class_failed = None, None
    for kind, spec in collected:
        if kind == "unittest":
            out.extend(_unittest_items(spec[0], spec[1], style))
        else:
            item_name, run, cls = spec
            if cls is not current:
                _after(out, _xunit(current, "teardown_class") if current is not None else None)
                current = cls
                class_failed = _xunit(cls, "setup_class") if cls is not None else None
            failure = failed or class_failed
            out.append((item_name, failure if failure is not None else _run_item(run, g)))
        if len(out) >= 10_000:
            break
    if current is not None:
        _after(out, _xunit(current, "teardown_class"))
    _after(out, _xunit(g, "teardown_module"))
    return out


def _xunit(owner, name):
    """Runs a pytest xunit hook of the trusted code (`setup_module` of the module's globals,
    `setup_class` of a `Test…` class), if there is one: the failure it raised, or None."""
    hook = owner.get(name) if type(owner) is dict else vars(owner).get(name)
    if type(hook) in (classmethod, staticmethod):
        hook = hook.__func__
        bound = type(vars(owner).get(name)) is classmethod
    else:
        bound = type(owner) is not dict
    if type(hook) is not types.FunctionType or hook.__code__.co_filename not in _TRUSTED_FILES:
        return None
    _JUDGE.incident = None
    try:
        if bound:
            hook(owner)
        elif hook.__code__.co_argcount:
            hook(types.ModuleType(owner.get("__name__", "test")))
        else:
            hook()
        status = None
    except BaseException as exc:
        status = wit_world.Status_Raised(_failure(wit_world.Phase.TEST, exc))
    if _JUDGE.incident is not None:
        status = _item_failure(*_JUDGE.incident)
        _JUDGE.incident = None
    return status


def _after(out, failure):
    """A teardown's failure belongs to the last item it follows (pytest reports it there)."""
    if failure is not None and out and type(out[-1][1]) is wit_world.Status_Ok:
        out[-1] = (out[-1][0], failure)


class WitWorld(wit_world.WitWorld):
    """The component's exports (see sandbox/wit/harness.wit)."""

    def load(self, program, setup, main, seed):
        failure, g = _load(program, setup, main, seed)
        _flush()
        if failure is None:
            status = wit_world.Status_Ok()
        elif type(failure) is int:
            status = wit_world.Status_Exit(failure)
        else:
            status = wit_world.Status_Raised(failure)
        names = {}
        if not main:  # only assert tests use them
            for name, value in list(g.items()):
                if type(name) is str and not name.startswith("__"):
                    names[name] = _kind_of(value)
        return wit_world.Loaded(status=status, names=json.dumps(names))

    def serve(self, request, limit):
        _CAND.limit = limit
        try:
            return _serve(request, limit)
        finally:
            # The program's own streams, written through to the host's capped capture (the
            # interpreter's original ones are flushed when their buffer fills and at `load`).
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass

    def judge(self, setup, test, names, seed, limit):
        return _judge(setup, test, names, seed, limit)

    def judge_suite(self, setup, code, names, seed, limit, style, module):
        return _judge_suite(setup, code, names, seed, limit, style, module)


def _warm_up():
    """Exercise every path once at build time, so the snapshot holds a warmed interpreter:
    lazily created types, caches and interned strings are then part of the image rather than
    rebuilt in every run. (No import is called here: the host is not there at build time.)"""
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
    for main in (False, True):
        try:
            world.load(program, "import math", main, 0)
            world.serve('["call",{"global":"f"},[[1,2.5,"x",null,true],1],{"dict":[]}]', 1 << 20)
            world.serve('["call",{"global":"C"},[],{"dict":[]}]', 1 << 20)
            world.serve('["getattr",{"handle":[0,"C"]},"m"]', 1 << 20)
        except BaseException:
            pass
    value = [None, True, 1, 2.5, "s", (1,), {"k": {1, 2}}, frozenset([3]), 10 ** 30,
             float("nan"), b"x", _Counter("ab"), _deque([1]), _Fraction(1, 3), 1j]
    w = _Writer(1 << 20, _handle_of)
    _enc(w, value)
    _decode(w.text(), _resolve_candidate)
    try:
        world.judge("import math", "def check(c):\n    assert abs(1 - 1.0) < 1e-9\ncheck(1)\n",
                    "{}", 0, 1 << 20)
    except BaseException:
        pass
    for bad in ["def f(:\n", "raise ValueError('x')\n", "import sys\nsys.exit(0)\n"]:
        try:
            world.load(bad, "", True, 0)
        except BaseException:
            pass
    _COMPILED.clear()
    _CAND.__init__()
    _JUDGE.__init__()
    random.seed(0)
    # Everything alive now is the snapshot's: move it out of the collector's reach, so a
    # collection during a run never walks (and so never faults in) the snapshot's pages.
    gc.collect()
    gc.freeze()


_warm_up()
