"""Draws the GAN, conditional GAN and VAE samples on the 28×28 MNIST sample, for the docs.

Runs the recipes gan_digits, cgan_digits and vae_digits with ``dataset="mnist_sample"`` (5,000
real MNIST digits, offline) and the settings of ``FIGURES`` below, then writes each final
sample grid, in grey levels, to docs/pages/models/img/mnist_sample_<recipe>.png, and the
backend, settings and judge's metrics of every run to
docs/pages/models/img/mnist_sample_figures.json.
Run from the repository root:
    KERAS_BACKEND=jax python docs/scripts/figure_mnist_sample_generators.py
"""

from __future__ import annotations

import importlib
import json
import pathlib
import tempfile

import keras
from PIL import Image

from dlkit.recipes.cgan_digits import MNIST_SAMPLE_SETTINGS

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "pages" / "models" / "img"

# Recipe → its settings on the MNIST sample (the recipe's defaults for every other field); the
# conditional GAN's are those its slow test holds to the requested-class gate.
FIGURES = {
    "gan_digits": {"dataset": "mnist_sample", "epochs": 10, "sample_every": 10},
    "cgan_digits": MNIST_SAMPLE_SETTINGS,
    "vae_digits": {"dataset": "mnist_sample", "epochs": 10},
}
# Metrics copied next to the settings, where the recipe returns them.
METRICS = (
    "requested_class_accuracy",
    "class_shares_of_samples",
    "classes_with_at_least_2_percent",
    "test_elbo",
    "train_seconds",
)


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, settings in FIGURES.items():
        recipe = importlib.import_module(f"dlkit.recipes.{name}")
        with tempfile.TemporaryDirectory() as output_dir:
            config = recipe.Config(export="none", output_dir=output_dir, verbose=0, **settings)
            results = recipe.main(config)
            samples = results["files"]["samples"]
            last_grid = samples[-1] if isinstance(samples, list) else samples
            # 16 grey levels: under 100 KB for the 10 × 10 grid of 28×28 digits.
            figure = OUTPUT / f"mnist_sample_{name}.png"
            Image.open(last_grid).convert("L").quantize(16).save(figure, optimize=True)
        runs[name] = {
            "backend": keras.backend.backend(),
            "settings": {"seed": config.seed, **settings},
            **{key: results[key] for key in METRICS if key in results},
        }
        print(name, json.dumps(runs[name]), flush=True)
    (OUTPUT / "mnist_sample_figures.json").write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
