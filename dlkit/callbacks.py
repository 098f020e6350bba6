"""Keras callbacks that write figures while a generative model trains.

They work with any model and backend: each asks the model for numpy arrays through a function
the user passes (or the model's own ``sample`` / ``encode`` methods) and draws them with
``dlkit.plotting``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from dlkit import plotting
from dlkit.validation import check_int

__all__ = ["LatentScatter", "LossCurves", "SampleGrid"]


class SampleGrid(keras.callbacks.Callback):
    """Writes a grid of generated images every ``every`` epochs.

    Args:
        sample_fn: ``sample_fn(model) -> images`` of shape (N, H, W[, C]); by default
            ``model.sample(num_images)``.
        output_dir: folder of the PNG files ``samples_epoch_001.png``, ...
        num_images: images per grid when ``sample_fn`` is not given.
        every: epochs between grids.
        value_range: the range of the generated pixels, e.g. (-1, 1) for a tanh generator.

    Example:

        >>> callback = SampleGrid(output_dir="runs/gan/samples", value_range=(-1.0, 1.0))
    """

    def __init__(
        self,
        sample_fn: Callable | None = None,
        output_dir: str | Path = "samples",
        num_images: int = 32,
        every: int = 1,
        value_range: tuple[float, float] = (0.0, 1.0),
    ):
        super().__init__()
        self.sample_fn = sample_fn
        self.output_dir = Path(output_dir)
        self.num_images = num_images
        self.every = check_int("every", every)
        self.value_range = value_range
        self.paths: list[Path] = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        if self.sample_fn is not None:
            images = self.sample_fn(self.model)
        else:
            images = self.model.sample(self.num_images)
        images = keras.ops.convert_to_numpy(images)
        path = self.output_dir / f"samples_epoch_{epoch + 1:03d}.png"
        self.paths.append(plotting.plot_image_grid(images, path, value_range=self.value_range))


class LossCurves(keras.callbacks.Callback):
    """Redraws the training curves (one panel per logged metric) after every epoch.

    Args:
        path: the PNG file to write.
    """

    def __init__(self, path: str | Path = "history.png"):
        super().__init__()
        self.path = Path(path)
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        if self.history:
            plotting.plot_history(self.history, self.path)


class LatentScatter(keras.callbacks.Callback):
    """Scatters the 2-D latent codes of labelled data, coloured by label, every few epochs.

    For a VAE with a 2-D latent space this shows how the classes arrange themselves around
    the prior N(0, I) [notes §5.2].

    Args:
        images: inputs to encode, shape (N, ...).
        labels: their integer labels, shape (N,).
        encode_fn: ``encode_fn(model, images) -> codes`` (N, 2); by default the first output of
            ``model.encode(images)`` (a VAE's mean).
        output_dir: folder of the PNG files ``latent_epoch_001.png``, ...
        every: epochs between figures.
    """

    def __init__(
        self,
        images,
        labels,
        encode_fn: Callable | None = None,
        output_dir: str | Path = "latent",
        every: int = 1,
    ):
        super().__init__()
        self.images = np.asarray(images)
        self.labels = np.asarray(labels)
        if len(self.images) != len(self.labels):
            raise ValueError(
                "Expected as many labels as images. "
                f"Received: {len(self.images)} images and {len(self.labels)} labels"
            )
        self.encode_fn = encode_fn
        self.output_dir = Path(output_dir)
        self.every = check_int("every", every)
        self.paths: list[Path] = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        if self.encode_fn is not None:
            codes = self.encode_fn(self.model, self.images)
        else:
            codes = self.model.encode(self.images)
            codes = codes[0] if isinstance(codes, (tuple, list)) else codes
        path = self.output_dir / f"latent_epoch_{epoch + 1:03d}.png"
        self.paths.append(
            plotting.plot_latent_scatter(keras.ops.convert_to_numpy(codes), self.labels, path)
        )
