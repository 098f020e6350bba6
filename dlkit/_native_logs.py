"""Keeps the C++ start-up logs of TensorFlow and XLA out of a command's standard error.

TensorFlow's native code logs through absl before absl is initialised, straight to file
descriptor 2, and ignores ``TF_CPP_MIN_LOG_LEVEL`` there: ``import tensorflow`` on a CPU-only
machine prints oneDNN notices, "Could not find cuda drivers" and a ``failed call to cuInit``
error, none of which concerns the user. No Python setting reaches these lines, so
``filter_native_logs`` puts a pipe in place of descriptor 2 and a thread that forwards every
line to the real standard error except the lines in absl's or TensorFlow's native log format
(``I0000 00:00:1796... 5046 port.cc:153] ...``, ``2026-12-07 10:00:00.0: I tensorflow/...``)
and absl's "All log messages before absl::InitializeLog()" notice. Python tracebacks, warnings
and everything else pass through unchanged, and child processes inherit the filter.

The ``dlkit`` command line turns it on unless ``--verbose`` is given or ``DLKIT_VERBOSE`` is
set to a non-empty value other than ``0``.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

__all__ = ["NATIVE_LOG_LINE", "filter_native_logs", "is_native_log_line", "verbose_requested"]

# absl's format (severity, MMDD, time, thread, file:line]) and TensorFlow's older one
# (date, time, severity, file:line]), plus absl's notice that it is not initialised yet.
NATIVE_LOG_LINE = re.compile(
    r"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.\-/]+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [\w.\-/]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR)"
)

_installed = False


def is_native_log_line(line: str) -> bool:
    """Whether `line` is a native library's log line that the filter drops.

    Fatal lines (severity F) are kept: they explain a crash.
    """
    return NATIVE_LOG_LINE.match(line) is not None


def verbose_requested(environment=None) -> bool:
    """Whether ``DLKIT_VERBOSE`` asks for the native logs (set, and not ``0`` or empty)."""
    value = (os.environ if environment is None else environment).get("DLKIT_VERBOSE", "")
    return value.strip() not in ("", "0")


def filter_native_logs() -> bool:
    """Filters native log lines out of file descriptor 2 for the rest of the process.

    Does nothing (and returns False) when standard error has no file descriptor, or when the
    filter is already on. Returns True when it turned the filter on.
    """
    global _installed
    if _installed:
        return False
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (AttributeError, OSError, ValueError):
        return False
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_forward, args=(read_end, original), daemon=True)
    thread.start()
    _installed = True

    def restore() -> None:
        # Runs after Python has printed any final traceback into the pipe: put the real
        # standard error back, which closes the pipe's last writer here, and let the thread
        # drain what is left (children that still hold the pipe may keep it open).
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        thread.join(timeout=2.0)

    atexit.register(restore)
    return True


# How a native log line starts: a partial line that starts otherwise (a progress bar on
# standard error, a prompt) is forwarded at once instead of waiting for its newline.
_LOG_LINE_START = re.compile(rb"^(?:[IWE]\d|\d{4}-|WARNING: All)")


def _forward(read_end: int, destination: int) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending, passing = b"", False  # passing: the start of this line was forwarded already
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if lines:
                if passing:
                    _write_bytes(destination, lines[0] + b"\n")
                    lines, passing = lines[1:], False
                _write(destination, lines)
            if pending and (passing or not _LOG_LINE_START.match(pending[:16])):
                _write_bytes(destination, pending)
                pending, passing = b"", True
        if pending:
            _write_bytes(destination, pending)


def _write(destination: int, lines: list[bytes]) -> None:
    kept = [
        line for line in lines if not is_native_log_line(line.decode("utf-8", errors="replace"))
    ]
    if kept:
        _write_bytes(destination, b"\n".join(kept) + b"\n")


def _write_bytes(destination: int, data: bytes) -> None:
    while data:
        data = data[os.write(destination, data) :]
