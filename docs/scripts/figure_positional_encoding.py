"""Draws the sinusoidal positional encoding as heatmaps for the docs.

Writes docs/pages/layers/img/positional_encoding.png: the encoding of 64 positions in 64
channels for the paper's variant and the notes' variant, and their difference.
Run from the repository root: python docs/scripts/figure_positional_encoding.py
"""

from __future__ import annotations

import pathlib

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from dlkit.layers.positional_encoding import SinusoidalPositionalEncoding

matplotlib.use("Agg")  # no display needed; the figure is only written to a file

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "pages" / "layers" / "img"


def encoding(variant: str, num_positions: int = 64, model_dim: int = 64) -> np.ndarray:
    embeddings = np.zeros((1, num_positions, model_dim), dtype="float32")
    layer = SinusoidalPositionalEncoding(variant=variant)
    return keras.ops.convert_to_numpy(layer(embeddings))[0]


def main() -> pathlib.Path:
    vaswani, notes = encoding("vaswani"), encoding("notes")
    panels = [
        ('variant="vaswani" (paper, default)', vaswani, "RdBu_r", 1.0),
        ('variant="notes" (eq. 7.13)', notes, "RdBu_r", 1.0),
        ("notes − vaswani (differs on odd channels)", notes - vaswani, "PuOr_r", 2.0),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    for axis, (title, values, colormap, limit) in zip(axes, panels):
        image = axis.imshow(values, cmap=colormap, vmin=-limit, vmax=limit, aspect="auto")
        axis.set_title(title)
        axis.set_xlabel("channel j")
        axis.set_ylabel("position pos")
        figure.colorbar(image, ax=axis, shrink=0.85)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "positional_encoding.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(main())
