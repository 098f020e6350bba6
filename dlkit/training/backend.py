"""Selects the per-backend implementation module of ``dlkit.training``."""

from __future__ import annotations

import importlib

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
