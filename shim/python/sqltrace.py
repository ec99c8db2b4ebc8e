"""sqltrace — set the current thread's trace id for sqltrace-bpf from Python.

A ctypes binding of libsqltrace (the sqltrace shim, shim/sqltrace.h): nothing
to compile. The id is per OS thread, exactly as in C: statements a thread runs
through sqlite3 after set_trace_id() and before the next set or clear are
attributed to that id by an attached sqltrace-bpf.

    import sqltrace
    with sqltrace.trace_id(request.headers["traceparent"][3:35]):
        db.execute("SELECT ...")          # carries the id
    # the previous id (or none) is back here; nesting works

API
    set_trace_id(id)   id: str, bytes or None (None or "" clears); anything
                       else is converted with str(). Returns 0 when the id
                       was stored as given, 1 when it was altered (cut to
                       TRACE_ID_MAX bytes, or bytes outside printable ASCII
                       replaced by "_"; a str is encoded as UTF-8 first).
    clear_trace_id()   the thread has no id afterwards.
    get_trace_id()     the thread's current id as stored, "" when none.
    trace_id(id)       context manager (also usable as a decorator): sets id,
                       restores the thread's previous id on exit.
    available          True when libsqltrace was loaded.
    library_path       the path or name it was loaded from, None otherwise.

Finding the library, first that loads wins:
    1. $SQLTRACE_LIB (a path);
    2. libsqltrace.so.0 / libsqltrace.so next to this file;
    3. the library directory recorded by `make install`;
    4. the build tree: ../../build/shim/ relative to this file (shim/python/);
    5. ctypes.util.find_library("sqltrace") (the ldconfig cache);
    6. plain "libsqltrace.so.0" (LD_LIBRARY_PATH and the loader's defaults).

Without the library the module does not fail: it warns once (RuntimeWarning)
and keeps working on a pure-Python per-thread id, so get_trace_id() and the
context manager still behave the same — only no tracer can see the ids. A
tracing helper must never break the application that imports it.

Limits: the id belongs to the OS thread, not to an asyncio task or a
contextvars context; in asyncio code set it right before the statements,
with no await in between. A tracer sees only ids set while it is attached:
an id set before it attached is unknown until the thread's next set.
"""

import contextlib
import ctypes
import ctypes.util
import os
import threading
import warnings

__all__ = [
    "TRACE_ID_MAX", "available", "library_path",
    "set_trace_id", "clear_trace_id", "get_trace_id", "trace_id",
]

TRACE_ID_MAX = 64  # SQLTRACE_TRACE_ID_MAX in sqltrace.h

# Set by `make install` to the directory libsqltrace was installed into.
_INSTALL_LIBDIR = None

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    """Yields the paths or names to try, in order (see the module doc)."""
    env = os.environ.get("SQLTRACE_LIB")
    if env:
        yield env
    dirs = [_HERE]
    if _INSTALL_LIBDIR:
        dirs.append(_INSTALL_LIBDIR)
    dirs.append(os.path.normpath(os.path.join(_HERE, "..", "..", "build", "shim")))
    for d in dirs:
        for name in ("libsqltrace.so.0", "libsqltrace.so"):
            path = os.path.join(d, name)
            if os.path.exists(path):
                yield path
    found = ctypes.util.find_library("sqltrace")
    if found:
        yield found
    yield "libsqltrace.so.0"


def _load():
    """Returns (lib, path) for the first candidate that loads and exports
    the API, or (None, None) after one warning saying what was tried."""
    tried = []
    env = os.environ.get("SQLTRACE_LIB")
    for cand in _candidates():
        try:
            # PyDLL keeps the GIL: the calls are a few ns and never block,
            # so releasing and re-taking the GIL would cost more than them.
            lib = ctypes.PyDLL(cand)
            lib.sqltrace_set_trace_id.argtypes = [ctypes.c_char_p]
            lib.sqltrace_set_trace_id.restype = ctypes.c_int
            lib.sqltrace_clear_trace_id.argtypes = []
            lib.sqltrace_clear_trace_id.restype = None
            lib.sqltrace_get_trace_id.argtypes = []
            lib.sqltrace_get_trace_id.restype = ctypes.c_char_p
        except (OSError, AttributeError) as exc:
            tried.append("%s (%s)" % (cand, exc))
            continue
        if env and cand != env:
            warnings.warn("sqltrace: SQLTRACE_LIB=%s could not be loaded (%s); "
                          "using %s" % (env, tried[0] if tried else "?", cand),
                          RuntimeWarning, stacklevel=3)
        return lib, cand
    warnings.warn("sqltrace: libsqltrace not found, trace ids will not reach "
                  "sqltrace-bpf (set SQLTRACE_LIB to its path, or install it "
                  "with `make install`); tried: " + "; ".join(tried),
                  RuntimeWarning, stacklevel=3)
    return None, None


_lib, library_path = _load()
available = _lib is not None


def _to_bytes(value):
    """Converts an id argument to (bytes handed to C, altered). None stays
    None. A NUL byte becomes "_" (C would stop there) and counts as an
    alteration, which C cannot see."""
    if type(value) is str:           # the common case first, strict is fastest
        try:
            raw = value.encode()
        except UnicodeEncodeError:   # lone surrogates: C replaces the bytes
            raw = value.encode("utf-8", "surrogatepass")
    elif value is None:
        return None, False
    elif isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    else:
        raw = str(value).encode("utf-8", "surrogatepass")
    if b"\0" in raw:
        return raw.replace(b"\0", b"_"), True
    return raw, False


if available:
    _set = _lib.sqltrace_set_trace_id
    _clear = _lib.sqltrace_clear_trace_id
    _get = _lib.sqltrace_get_trace_id

    def set_trace_id(id):
        """Makes id the calling thread's trace id; see the module doc."""
        raw, altered = _to_bytes(id)
        return _set(raw) | int(altered)

    def clear_trace_id():
        """Empties the calling thread's trace id."""
        _clear()

    def get_trace_id():
        """Returns the calling thread's trace id, "" when none."""
        return _get().decode("ascii")

else:
    _local = threading.local()

    def set_trace_id(id):
        """No-op for tracing (library missing); keeps the id per thread."""
        raw, altered = _to_bytes(id)
        if not raw:
            _local.id = ""
            return 0
        cut = raw[:TRACE_ID_MAX]
        clean = bytes(c if 0x20 <= c <= 0x7e else 0x5f for c in cut)
        _local.id = clean.decode("ascii")
        return int(altered or clean != raw)

    def clear_trace_id():
        """No-op for tracing (library missing); forgets the thread's id."""
        _local.id = ""

    def get_trace_id():
        """Returns the thread's id kept by set_trace_id, "" when none."""
        return getattr(_local, "id", "")


class trace_id(contextlib.ContextDecorator):
    """Context manager (and decorator): sets id for the block and restores
    the thread's previous id (or none) on exit, exceptions included. `with`
    yields the id as stored. A class rather than @contextmanager: entering
    and leaving costs half as much."""

    def __init__(self, id):
        self._id = id
        self._previous = []  # a stack: the same object may be re-entered

    def _recreate_cm(self):
        # ContextDecorator: a fresh object per decorated call, so threads
        # calling one decorated function never share the stack.
        return trace_id(self._id)

    def __enter__(self):
        self._previous.append(get_trace_id())
        set_trace_id(self._id)
        return get_trace_id()

    def __exit__(self, exc_type, exc, tb):
        previous = self._previous.pop()
        if previous:
            set_trace_id(previous)
        else:
            clear_trace_id()
        return False
