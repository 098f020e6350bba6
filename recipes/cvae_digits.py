"""Train a conditional VAE on the embedded 8x8 digits and check that it draws the digit asked for.

Encoder Q(z|x, c) and decoder P(x|z, c) both receive the one-hot class c [notes §6.3], so the
code z no longer has to carry the class: decoding z ~ N(0, I) together with a chosen label
draws a digit of that class. The loss is the VAE's reconstruction error plus beta times
KL(Q(z|x, c) ‖ N(0, I)) [notes §5.2, eq. 5.4].

Quality gate [notes §6.3]: a small CNN trained on the real digits labels 1,000 samples, 100
requested per class; at least 80 % of them must land in their requested class.

``--dataset mnist_sample`` (5,000 real 28×28 MNIST digits, offline) or a tensorflow-datasets
image dataset (``--dataset mnist``, ...) trains the same networks, sized to those images; the
gate runs on the two offline digit sets, which the judge of ``dlkit.vision.judge`` reads.

Artefacts in ``output_dir``: ``model.keras``, ``samples.png`` (one row per class, 10 samples
each), ``history.png`` and ``metrics.json``. An interrupted run resumes from
``output_dir/backup``.

Run: ``dlkit run cvae_digits --epochs 20`` or ``python recipes/cvae_digits.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from dlkit.models.vae import ConditionalVAE, build_digits_cvae_decoder, build_digits_cvae_encoder
from dlkit.recipes._images import ImageRunConfig, conditional_samples, start_image_run
from dlkit.recipes._recipe import (
    export_for_serving,
    fit,
    run_paths,
    run_summary,
    write_metrics,
)

# Bernoulli likelihood: pixels and decoder outputs in [0, 1].
VALUE_RANGE = (0.0, 1.0)


@dataclass
class Config(ImageRunConfig):
    POSITIVE_FIELDS = ("latent_dim",)
    NON_NEGATIVE_FIELDS = ("beta",)

    epochs: int = 6
    batch_size: int = 32
    """Images (with their labels) per gradient step."""
    learning_rate: float = 3e-3
    latent_dim: int = 2
    """Size of the latent code."""
    beta: float = 1.0
    """Weight of the KL term (beta-VAE when not 1)."""
    seed: int = 0
    """Seed of weights, shuffling and sampling."""
    export: str = "saved_model"
    """Serving export of the decoder ([code, one-hot label] → image): saved_model, onnx or none."""
    output_dir: str = "runs/cvae_digits"


def _pairs(images) -> dict:
    """``fit`` arguments feeding the pair (images, labels) as the model's input."""
    arguments = images.fit_arguments(labels=True)
    if images.is_embedded:
        return {"x": (arguments["x"], arguments["y"]), "batch_size": arguments["batch_size"]}
    # A 1-tuple element: the pair is the input x, with no target.
    pairs = arguments["x"].map(lambda batch_images, labels: ((batch_images, labels),))
    return {"x": pairs, "shuffle": False}  # the pipeline shuffles itself


def main(config: Config) -> dict:
    """Trains the conditional VAE, draws a grid per class and returns the quality gate."""
    output_dir, images = start_image_run(config, VALUE_RANGE)
    num_classes = images.num_classes
    model = ConditionalVAE(
        build_digits_cvae_encoder(config.latent_dim, num_classes, images.image_shape),
        build_digits_cvae_decoder(config.latent_dim, num_classes, images.image_shape),
        num_classes=num_classes,
        beta=config.beta,
        seed=config.seed,
    )
    # Built before fit: BackupAndRestore restores into built variables.
    model.build([(None, *images.image_shape), (None,)])
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    history, train_seconds = fit(model, _pairs(images), config, output_dir)

    paths = run_paths(
        output_dir, model=output_dir / "model.keras", samples=output_dir / "samples.png"
    )
    model.save(paths["model"])
    export_for_serving(paths, "decoder_export", model.decoder, output_dir, config.export)
    results = run_summary(config, history, train_seconds)
    results.update(
        conditional_samples(model.sample, num_classes, paths["samples"], VALUE_RANGE, images)
    )
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
