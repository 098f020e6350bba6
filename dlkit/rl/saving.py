"""Saving RL state to `.npz` files: the file-name rule, the exact state of NumPy generators,
and verified checkpoints.

Buffers, tabular agents and deep agents save their random generators with their arrays, so
that a restored object draws exactly what the saved one would have drawn next.

A verified checkpoint (`write_verified`) is an `.npz` file with an integrity record beside it
(`checkpoint.npz` and `checkpoint.json`: the format version, the file's size and its SHA-256).
Both are written to temporary names and moved into place, so a crash while writing leaves the
earlier files as they were. Asked to, the writer first moves the current checkpoint to
`checkpoint.previous.npz` (with its record), so that the last two are kept. `latest_verified`
picks the newest of them whose record matches its file, warning once when it has to fall back
to the previous one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "checkpoint_problem",
    "generator_from_json",
    "generator_to_json",
    "latest_verified",
    "npz_path",
    "read_checkpoint_arrays",
    "read_saved_object",
    "write_verified",
]

# The layout of verified checkpoints; a record of another version is not read.
CHECKPOINT_FORMAT_VERSION = 2


def npz_path(path) -> str:
    """`path` as a string ending in `.npz`, the name `numpy.savez` writes."""
    path = str(path)
    return path if path.endswith(".npz") else path + ".npz"


def generator_to_json(generator: np.random.Generator) -> str:
    """The state of `generator`'s bit generator as JSON (its 128-bit integers stay exact)."""
    return json.dumps(generator.bit_generator.state)


# The bit generators a saved generator state may name (NumPy's own, nothing else is looked up).
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def generator_from_json(text: str) -> np.random.Generator:
    """A generator in the state `generator_to_json` wrote.

    Raises:
        ValueError: if the state names anything but one of NumPy's bit generators
            (`_BIT_GENERATORS`), or is not such a state.
    """
    try:
        state = json.loads(text)
        name = state["bit_generator"]
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(
            f"Expected a saved NumPy generator state. Received: {str(text)[:80]!r}"
        ) from error
    if name not in _BIT_GENERATORS:
        raise ValueError(
            f"Expected a generator state of one of NumPy's bit generators {_BIT_GENERATORS}. "
            f"Received: bit_generator={name!r}"
        )
    bit_generator = getattr(np.random, name)()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def record_path(path) -> Path:
    """The integrity record of checkpoint `path`: `checkpoint.npz` → `checkpoint.json`."""
    return Path(path).with_suffix(".json")


def previous_path(path) -> Path:
    """Where the checkpoint before `path` is kept: `checkpoint.npz` → `checkpoint.previous.npz`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def _digest(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def write_verified(path, arrays: dict, keep_previous: bool = False) -> str:
    """Writes `arrays` to the `.npz` file `path` with its integrity record, atomically.

    Args:
        path: the checkpoint file (`.npz`).
        arrays: name → array, as `numpy.savez` takes them.
        keep_previous: first move the checkpoint at `path` (and its record) to
            `previous_path(path)`, so that the last two checkpoints are kept.

    Returns:
        The path written, as a string.

    Raises:
        OSError: when the directory cannot be written (a full disk, no permission), with the
            original error number; the message names the directory and says that the
            checkpoint already there is intact.
    """
    path = Path(path)
    record = record_path(path)
    temporary = path.with_name(f"{path.stem}.partial.npz")
    temporary_record = path.with_name(f"{path.stem}.partial.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(temporary, **arrays)
        digest, size = _digest(temporary)
        temporary_record.write_text(
            json.dumps(
                {"format_version": CHECKPOINT_FORMAT_VERSION, "bytes": size, "sha256": digest}
            )
        )
        if keep_previous and path.exists():
            previous = previous_path(path)
            os.replace(path, previous)
            if record.exists():
                os.replace(record, record_path(previous))
            else:
                record_path(previous).unlink(missing_ok=True)
        os.replace(temporary, path)
        os.replace(temporary_record, record)
    except OSError as error:
        for leftover in (temporary, temporary_record):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass
        number = error.errno if error.errno is not None else errno.EIO
        raise OSError(
            number,
            f"Could not write the checkpoint {path.name!r} in the directory "
            f"{str(path.parent)!r} ({error.strerror or error}); the checkpoint already there, "
            "if any, is intact",
        ) from error
    return str(path)


def checkpoint_problem(path) -> str | None:
    """What makes checkpoint `path` unusable (missing, no or an unreadable integrity record,
    another format version, truncated, altered), or None when its record matches it."""
    path = Path(path)
    if not path.exists():
        return "the file is missing"
    record = record_path(path)
    if not record.exists():
        return f"its integrity record {record.name!r} is missing"
    try:
        expected = json.loads(record.read_text())
        version, size, digest = expected["format_version"], expected["bytes"], expected["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"its integrity record {record.name!r} is unreadable"
    if version != CHECKPOINT_FORMAT_VERSION:
        return f"it has format version {version!r}; this dlkit reads {CHECKPOINT_FORMAT_VERSION}"
    actual_digest, actual_size = _digest(path)
    if actual_size != size:
        return f"it has {actual_size} bytes where its record says {size} (truncated?)"
    if actual_digest != digest:
        return "its SHA-256 does not match its record (the file was altered)"
    return None


def latest_verified(path) -> Path | None:
    """The checkpoint to resume from: `path` when its record matches it, else the previous
    checkpoint (with one warning naming `path` and what is wrong with it); None when neither
    file exists.

    A lone checkpoint without any record (written before records existed) is returned as it
    is, with a warning.

    Raises:
        ValueError: when checkpoint files exist but none can be used; the message names the
            directory and how to start over.
    """
    path = Path(path)
    previous = previous_path(path)
    if not path.exists() and not previous.exists():
        return None
    problem = checkpoint_problem(path)
    if problem is None:
        return path
    previous_problem = checkpoint_problem(previous) if previous.exists() else "it does not exist"
    if previous_problem is None:
        warnings.warn(
            f"The checkpoint {str(path)!r} is unusable: {problem}. Resuming from the previous "
            f"checkpoint, {str(previous)!r}.",
            RuntimeWarning,
            stacklevel=3,
        )
        return previous
    legacy = path.exists() and not record_path(path).exists() and not previous.exists()
    if legacy:
        warnings.warn(
            f"The checkpoint {str(path)!r} has no integrity record (written before checkpoint "
            f"format {CHECKPOINT_FORMAT_VERSION}); loading it unverified.",
            RuntimeWarning,
            stacklevel=3,
        )
        return path
    raise ValueError(
        f"No usable checkpoint in the directory {str(path.parent)!r}: {path.name!r}: {problem}; "
        f"{previous.name!r}: {previous_problem}. To start over, remove these files or give "
        "`learn` another checkpoint_dir."
    )


class CheckpointArrays(dict):
    """The arrays of a checkpoint read into memory, by name; `files` lists the names (as
    `numpy.load`'s file object does)."""

    @property
    def files(self) -> list[str]:
        return list(self)


def read_checkpoint_arrays(path) -> CheckpointArrays:
    """Every array of the `.npz` checkpoint `path`, read whole and checked first.

    A checkpoint with an integrity record must match it. Nothing in the file is run as code:
    pickled (object) arrays are refused.

    Raises:
        ValueError: if the record does not match the file, or the file is not an intact
            `.npz` of plain arrays (truncated, garbled, holding object arrays); the message
            names the file.
    """
    path = Path(path)
    if record_path(path).exists():
        problem = checkpoint_problem(path)
        if problem is not None:
            raise ValueError(
                f"Expected a checkpoint that matches its integrity record. "
                f"Received: path={str(path)!r}: {problem}"
            )
    try:
        with np.load(path, allow_pickle=False) as file:
            return CheckpointArrays({name: file[name] for name in file.files})
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ValueError(
            f"Expected an intact .npz checkpoint of plain arrays. Received: path={str(path)!r}, "
            f"which cannot be read ({type(error).__name__}: {error})"
        ) from error


def read_saved_object(path, cls) -> tuple[dict, CheckpointArrays]:
    """The constructor arguments and the arrays of an object of class `cls` written with a
    JSON ``config`` array naming its class (a buffer's or tabular agent's `save`), read with
    `read_checkpoint_arrays`.

    Raises:
        ValueError: if the file was written by another class (or see
            `read_checkpoint_arrays`).
    """
    state = read_checkpoint_arrays(npz_path(path))
    config = json.loads(str(state["config"]))
    saved_class = config.pop("class")
    if saved_class != cls.__name__:
        raise ValueError(
            f"Expected a file saved by {cls.__name__}. Received: saved class={saved_class}"
        )
    return config, state
