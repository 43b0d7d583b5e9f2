"""Plain data across the trust boundary, and the one way a student function is called.

Graded code runs in another process; what crosses back is JSON in which arrays
are ``.npy`` bytes (read with ``allow_pickle=False``), never pickle. The same
``run_call`` is used by the notebook's checks (in the student's kernel) and by the
grader's sandbox harness, so a function is judged the same way in both.

This module depends on NumPy and the standard library only: the grader mounts
this one file into the sandbox, where the rest of ``nnopt`` does not exist.
"""

import base64
import io
import itertools
import linecache
import os
from collections.abc import Iterator

import numpy as np

MAX_ITEMS = 100_000
MAX_DEPTH = 8
MAX_MESSAGE = 400
MAX_FRAMES = 6


class Foreign:
    """Stands for a value that cannot cross the boundary (reported by type name)."""

    def __init__(self, type_name, detail=""):
        self.type_name = type_name
        self.detail = detail

    def __repr__(self):
        return f"<{self.type_name}{': ' + self.detail if self.detail else ''}>"


def _type_name(value):
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", None) else f"{module}.{kind.__qualname__}"


def encode(value, depth=0):
    """Turn a value into JSON-ready plain data (tagged with its kind).

    Kinds are told by ``type(value)``, not ``isinstance``, which an object can fool
    with a ``__class__`` property.
    """
    kind = type(value)
    if depth > MAX_DEPTH:
        return {"t": "other", "type": "nesting deeper than %d levels" % MAX_DEPTH}
    if value is None:
        return {"t": "none"}
    if issubclass(kind, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if issubclass(kind, (int, np.integer)):
        return {"t": "int", "v": int(value), "dtype": np.asarray(value).dtype.str if issubclass(kind, np.integer) else "int"}
    if issubclass(kind, (float, np.floating)):
        dtype = np.asarray(value).dtype.str if issubclass(kind, np.floating) else np.dtype(np.float64).str
        return {"t": "float", "v": float(value), "dtype": dtype}
    if issubclass(kind, str):
        return {"t": "str", "v": value[:MAX_MESSAGE]}
    if kind is np.ndarray:
        if value.dtype.hasobject:
            return {"t": "other", "type": f"numpy array of dtype {value.dtype}"}
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, value, allow_pickle=False)
        return {"t": "array", "npy": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if issubclass(kind, np.ndarray):
        return {"t": "other", "type": _type_name(value), "detail": "a subclass of numpy.ndarray"}
    if issubclass(kind, (tuple, list)):
        items = list(itertools.islice(iter(value), MAX_ITEMS))
        return {"t": "tuple" if issubclass(kind, tuple) else "list", "items": [encode(item, depth + 1) for item in items]}
    if issubclass(kind, Iterator):
        items = list(itertools.islice(value, MAX_ITEMS + 1))
        return {
            "t": "iterator",
            "items": [encode(item, depth + 1) for item in items[:MAX_ITEMS]],
            "truncated": len(items) > MAX_ITEMS,
        }
    return {"t": "other", "type": _type_name(value)}


def decode(data, depth=0):
    """Inverse of :func:`encode`; arrays come back as plain float/int ``np.ndarray``."""
    if depth > MAX_DEPTH + 1 or not isinstance(data, dict):
        raise ValueError("malformed result")
    tag = data.get("t")
    if tag == "none":
        return None
    if tag == "bool":
        return bool(data["v"])
    if tag == "int":
        value = data["v"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("malformed int")
        return value if data.get("dtype", "int") == "int" else np.dtype(_plain_dtype(data["dtype"])).type(value)
    if tag == "float":
        return np.dtype(_plain_dtype(data.get("dtype", "<f8"))).type(float(data["v"]))
    if tag == "str":
        return str(data["v"])
    if tag == "array":
        return _read_npy(base64.b64decode(data["npy"], validate=True))
    if tag in ("tuple", "list", "iterator"):
        items = data["items"]
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise ValueError("malformed sequence")
        decoded = [decode(item, depth + 1) for item in items]
        return tuple(decoded) if tag == "tuple" else decoded
    if tag == "other":
        return Foreign(str(data.get("type", "?"))[:MAX_MESSAGE], str(data.get("detail", ""))[:MAX_MESSAGE])
    raise ValueError("malformed result")


def _read_npy(raw):
    """Read ``.npy`` bytes, checking the header against the bytes that follow it first.

    (``read_array`` allocates what the header declares before reading the data, so a
    forged header of a few bytes could claim terabytes.)
    """
    stream = io.BytesIO(raw)
    version = np.lib.format.read_magic(stream)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in read_header:
        raise ValueError(f".npy version {version} is not allowed")
    shape, _, dtype = read_header[version](stream)
    _plain_dtype(dtype)
    declared = dtype.itemsize * int(np.prod(shape, dtype=object))
    if declared != len(raw) - stream.tell():
        raise ValueError(f"the array header declares {declared} bytes of data; {len(raw) - stream.tell()} were sent")
    return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)


def _plain_dtype(text):
    dtype = np.dtype(str(text))
    if dtype.kind not in "biufc" or dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"dtype {text!r} is not allowed")
    return dtype


def error_message(error):
    try:
        text = str(error)
    except BaseException:  # a student's exception whose __str__ fails
        text = "<message could not be printed>"
    return text[:MAX_MESSAGE]


def _is_cell(filename):
    """Whether code came from a notebook cell (or other code typed in), not from a file on disk.

    IPython names cells ``<ipython-input-...>``; ipykernel names them after a file in a
    temporary folder that is never written.
    """
    if filename.startswith("<frozen "):  # the import machinery
        return False
    return filename.startswith("<") or not os.path.isfile(filename)


def student_frames(error):
    """The innermost frames of ``error``'s traceback that ran code from cells: ``[[function, line, code], ...]``.

    Line numbers count from the first line of the cell; frames of files (NumPy, the
    standard library, this module) are left out.
    """
    frames = []
    traceback = error.__traceback__
    while traceback is not None:
        code = traceback.tb_frame.f_code
        if _is_cell(code.co_filename):
            text = linecache.getline(code.co_filename, traceback.tb_lineno).strip()
            frames.append([str(code.co_name)[:80], int(traceback.tb_lineno), text[:MAX_MESSAGE]])
        traceback = traceback.tb_next
    return frames[-MAX_FRAMES:]


def describe_error(error):
    """An exception as plain data: its type, message and the student's frames."""
    return {"type": type(error).__name__, "message": error_message(error), "trace": student_frames(error)}


def _arrays(value, path="output"):
    """Yield ``(path, array)`` for every ndarray inside a returned value."""
    if issubclass(type(value), np.ndarray):
        yield path, value
    elif issubclass(type(value), (tuple, list)):
        for i, item in enumerate(value):
            yield from _arrays(item, f"{path}[{i}]")


def run_call(function, args, kwargs, names=()):
    """Call ``function(*args, **kwargs)`` and describe what happened as plain data.

    The result records the returned value, any exception, the arguments as they
    are *after* the call (so the caller can tell whether they were modified in
    place) and returned arrays that share memory with an argument. ``names`` are
    the argument names used in messages.
    """
    names = list(names) + [f"argument {i + 1}" for i in range(len(names), len(args))]
    result = {"status": "ok", "aliased": []}
    try:
        output = function(*args, **kwargs)
        if issubclass(type(output), Iterator):
            output = iter(list(itertools.islice(output, MAX_ITEMS + 1)))
        arguments = list(zip(names, args)) + list(kwargs.items())
        for path, array in _arrays(output if not issubclass(type(output), Iterator) else ()):
            for name, argument in arguments:
                if isinstance(argument, np.ndarray) and np.shares_memory(array, argument):
                    result["aliased"].append([path, name])
        result["output"] = encode(output)
    except BaseException as error:  # SystemExit too: the student's code must not end the run
        result = {"status": "raised", "error": describe_error(error)}
    result["args_after"] = [encode(a) for a in args]
    result["kwargs_after"] = {k: encode(v) for k, v in kwargs.items()}
    return result

