"""Selects the per-backend implementation module of ``dlkit.training``."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import keras

_BACKEND_MODULES = {
    "tensorflow": "dlkit.training._tensorflow",
    "jax": "dlkit.training._jax",
    "torch": "dlkit.training._torch",
}


def backend_module():
    """Returns the dlkit module implementing autodiff for the active Keras backend."""
    name = keras.backend.backend()
    if name not in _BACKEND_MODULES:
        raise ValueError(
            "dlkit supports the tensorflow, jax and torch backends. "
            f"Received: KERAS_BACKEND={name!r}"
        )
    return importlib.import_module(_BACKEND_MODULES[name])


def list_devices() -> list[str]:
    """Lists the devices the active backend computes on, such as ``["cpu:0", "cuda:0"]``."""
    return backend_module().list_devices()


def enable_compilation_cache(
    directory: str | os.PathLike | None = None, min_compile_seconds: float = 0.01
) -> str | None:
    """Keeps compiled programs on disk, so that a new process or a new model of the same shape
    loads them instead of compiling again.

    On JAX this turns on XLA's persistent compilation cache for every program that took at
    least ``min_compile_seconds`` to compile. JAX's own threshold, 1 s, leaves out everything a
    small network compiles: its fused training steps (0.3-0.8 s on CPU), its acting functions
    (about 45 ms) and the zero-filled optimizer moments (about 20 ms per shape). A second run of
    an agent with the same network and settings then loads them instead of compiling.
    TensorFlow and PyTorch keep no such cache: their traced steps compile in well under a
    second, and the call does nothing.

    Args:
        directory: where to keep the programs. Defaults to ``$DLKIT_CACHE_DIR/jax``, or
            ``~/.cache/dlkit/jax`` without that variable.
        min_compile_seconds: programs that compiled faster than this are not written.
            Defaults to 0.01.

    Returns:
        The cache directory on JAX; None on TensorFlow and PyTorch.

    Raises:
        ValueError: if ``min_compile_seconds`` is negative.

    Example:

    >>> import dlkit.training
    >>> location = dlkit.training.enable_compilation_cache("runs/.jax-cache")  # doctest: +SKIP
    """
    if not min_compile_seconds >= 0:
        raise ValueError(
            "Expected min_compile_seconds >= 0. "
            f"Received: min_compile_seconds={min_compile_seconds!r}"
        )
    if directory is None:
        root = os.environ.get("DLKIT_CACHE_DIR") or Path.home() / ".cache" / "dlkit"
        directory = Path(root) / "jax"
    return backend_module().enable_compilation_cache(Path(directory), float(min_compile_seconds))
