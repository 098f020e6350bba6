"""Saving RL state to `.npz` files: the file-name rule and the exact state of NumPy generators.

Buffers, tabular agents and deep agents save their random generators with their arrays, so
that a restored object draws exactly what the saved one would have drawn next.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["generator_from_json", "generator_to_json", "npz_path"]


def npz_path(path) -> str:
    """`path` as a string ending in `.npz`, the name `numpy.savez` writes."""
    path = str(path)
    return path if path.endswith(".npz") else path + ".npz"


def generator_to_json(generator: np.random.Generator) -> str:
    """The state of `generator`'s bit generator as JSON (its 128-bit integers stay exact)."""
    return json.dumps(generator.bit_generator.state)


def generator_from_json(text: str) -> np.random.Generator:
    """A generator in the state `generator_to_json` wrote."""
    state = json.loads(text)
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
