"""One fresh initializer per weight."""

from __future__ import annotations

import keras

__all__ = ["clone_initializer"]


def clone_initializer(
    initializer: keras.initializers.Initializer,
) -> keras.initializers.Initializer:
    """Returns a new initializer with the configuration of `initializer`.

    A layer that takes one initializer argument and creates several weights with it must give
    each weight its own instance: an unseeded Keras initializer fixes its seed when it is
    created, so one instance used twice draws the same values for both weights (two identical
    attention heads, two identical dense kernels). The copy, built from the configuration, draws
    a new seed when the configuration had none; a seeded configuration stays seeded.
    """
    return initializer.__class__.from_config(initializer.get_config())
