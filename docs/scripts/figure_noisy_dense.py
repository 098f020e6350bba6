"""Draws the weight noise of NoisyDense, factorised and independent, for the docs.

Writes docs/pages/layers/img/noisy_dense.png: one draw of the kernel noise ε_W of a 12 → 8
NoisyDense layer with factorised noise (an outer product of two vectors, so rows and columns
share their signs and scales) and with independent noise (a fresh N(0, 1) number per weight).
Run from the repository root: python docs/scripts/figure_noisy_dense.py
"""

from __future__ import annotations

import pathlib

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from dlkit.layers.noisy_dense import NoisyDense

matplotlib.use("Agg")  # no display needed; the figure is only written to a file

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "pages" / "layers" / "img"


def kernel_noise(factorised: bool, input_dim: int = 12, units: int = 8) -> np.ndarray:
    layer = NoisyDense(units, factorised=factorised, seed=0)
    layer(np.zeros((1, input_dim), dtype="float32"))
    epsilon_kernel, _ = layer.sample_noise()
    return keras.ops.convert_to_numpy(epsilon_kernel)


def main() -> pathlib.Path:
    panels = {
        "factorised: ε_W = f(ε_in) f(ε_out)ᵀ": kernel_noise(factorised=True),
        "independent: ε_W[i, j] ~ N(0, 1)": kernel_noise(factorised=False),
    }
    limit = max(np.abs(noise).max() for noise in panels.values())
    figure, axes = plt.subplots(1, 2, figsize=(8, 4.2), constrained_layout=True)
    for axis, (title, noise) in zip(axes, panels.items()):
        image = axis.imshow(noise, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("output unit j")
        axis.set_ylabel("input i")
    figure.colorbar(image, ax=axes, shrink=0.8, label="noise of kernel[i, j]")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "noisy_dense.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(main())
