"""Draws the receptive field of one output unit for a few stacks of convolutions.

Writes docs/pages/layers/img/receptive_field.png: for each stack, the input pixels that one
output unit depends on, coloured by the number of paths through the stack that reach each pixel
(all weights one), titled with the size `receptive_field` computes.
Run from the repository root: python docs/scripts/figure_receptive_field.py
"""

from __future__ import annotations

import pathlib

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np

from dlkit.layers.conv import receptive_field

matplotlib.use("Agg")  # no display needed; the figure is only written to a file

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "pages" / "layers" / "img"

STACKS = [
    ("two 3×3 convolutions", [(3, 1), (3, 1)]),
    ("one 3×3, dilation 2", [(3, 1, 2)]),
    ("3×3 stride 2, then 3×3", [(3, 2), (3, 1)]),
    ("3×3 with dilations 1, 2, 4", [(3, 1, 1), (3, 1, 2), (3, 1, 4)]),
]


def path_counts(stack: list[tuple[int, ...]]) -> np.ndarray:
    """Number of paths from one output unit down to each input pixel, all kernels ones."""
    counts = np.ones((1, 1))
    for kernel_size, strides, *dilation in reversed(stack):
        dilation_rate = dilation[0] if dilation else 1
        taps = np.zeros(((kernel_size - 1) * dilation_rate + 1,) * 2)
        taps[::dilation_rate, ::dilation_rate] = 1.0  # the kernel with its holes (notes §4.6)
        size = strides * (counts.shape[0] - 1) + taps.shape[0]  # notes §4.12.1
        below = np.zeros((size, size))
        for i, j in np.ndindex(counts.shape):
            below[
                strides * i : strides * i + taps.shape[0], strides * j : strides * j + taps.shape[1]
            ] += counts[i, j] * taps
        counts = below
    return counts


def main() -> pathlib.Path:
    largest = max(path_counts(stack).shape[0] for _, stack in STACKS)
    figure, axes = plt.subplots(1, len(STACKS), figsize=(15, 4.9), constrained_layout=True)
    for axis, (title, stack) in zip(axes, STACKS):
        counts = path_counts(stack)
        margin = (largest - counts.shape[0]) // 2
        shown = np.pad(counts, margin)  # same scale in every panel
        axis.imshow(np.ma.masked_equal(shown, 0), cmap="viridis", vmin=0)
        axis.set_xticks(np.arange(-0.5, shown.shape[1]), minor=True)
        axis.set_yticks(np.arange(-0.5, shown.shape[0]), minor=True)
        axis.grid(which="minor", color="0.85", linewidth=0.5)
        axis.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        size = receptive_field(stack)
        corner = margin - 0.5
        axis.add_patch(
            matplotlib.patches.Rectangle(
                (corner, corner), size, size, fill=False, color="crimson", linewidth=2, zorder=3
            )
        )
        axis.set_title(f"{title}\nreceptive field {size}×{size}")
    figure.suptitle(
        "Input pixels one output unit depends on (colour: number of paths; red: the field)"
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "receptive_field.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(main())
