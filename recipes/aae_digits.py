"""Train an adversarial autoencoder on the embedded 8x8 digits and draw its 2-D latent space.

An encoder maps each image to one code and a decoder reconstructs the image from it; a
discriminator on the latent space learns to tell prior draws from codes, and the encoder learns
to fool it, so that the codes of all images together follow the prior [notes §6.1, adversarial
autoencoders]. Every batch takes three updates: reconstruction (encoder and decoder, squared
error), discriminator, then generator (encoder). All three learning rates follow a cosine decay
to 0 over the run, which lets the adversarial game settle. With a 2-D code the recipe draws the
codes of the test digits coloured by class, and a grid of decoded codes.

``--prior uniform`` or ``--prior mixture`` (10 Gaussians on a circle) changes the target
distribution; ``--dataset mnist_sample`` (5,000 real
28×28 MNIST digits, offline) or a tensorflow-datasets image dataset (``--dataset mnist``, ...)
trains the same networks, sized to those images, instead of the embedded digits.

Artefacts in ``output_dir``: ``model.keras``, ``samples.png`` (decoded prior draws),
``latent.png`` and ``manifold.png`` (2-D code only), ``history.png``, ``metrics.json`` (test
reconstruction error and the codes' mean and standard deviation per dimension beside the
prior's). An interrupted run resumes from ``output_dir/backup``.

Run: ``dlkit run aae_digits --epochs 30`` or ``python recipes/aae_digits.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from dlkit import plotting
from dlkit.models.aae import PRIORS, AdversarialAutoencoder, build_digits_aae_networks
from dlkit.recipes._images import ImageRunConfig, start_image_run
from dlkit.recipes._recipe import (
    export_for_serving,
    fit,
    run_paths,
    run_summary,
    write_metrics,
)
from dlkit.validation import check_choice, check_int

VALUE_RANGE = (0.0, 1.0)
# Half-width of the decoded latent grid per prior: about the span of its draws.
MANIFOLD_EXTENT = {"normal": 2.5, "uniform": 1.0, "mixture": 2.5}


@dataclass
class Config(ImageRunConfig):
    POSITIVE_FIELDS = ("latent_dim",)
    NON_NEGATIVE_FIELDS = ("reconstruction_weight",)

    epochs: int = 30
    learning_rate: float = 2e-3
    """Initial Adam step size of the three updates (cosine decay to 0 over the run)."""
    latent_dim: int = 2
    """Size of the code; 2 allows the latent scatter and the manifold figure."""
    prior: str = "normal"
    """Distribution the codes are matched to: normal, uniform or mixture (needs latent_dim >= 2)."""
    reconstruction_weight: float = 1.0
    """Weight of the reconstruction loss."""
    seed: int = 0
    """Seed of weights, shuffling and prior draws."""
    export: str = "saved_model"
    """Serving export of the decoder (code → image): saved_model, onnx or none."""
    output_dir: str = "runs/aae_digits"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("prior", self.prior, PRIORS)
        if self.prior == "mixture":
            check_int("latent_dim", self.latent_dim, 2)  # the mixture lies in two dimensions


def steps_per_epoch(images) -> int | None:
    """Batches per epoch of the training data, or None when a pipeline does not know it."""
    if images.is_embedded:
        return math.ceil(len(images.train[0]) / images.batch_size)
    try:
        return len(images.train)
    except TypeError:
        return None


def reconstruction_error(model, images) -> float:
    """Mean squared error per pixel of the model's reconstructions of `images`."""
    reconstruction = keras.ops.convert_to_numpy(model(images))
    return float(np.mean((images - reconstruction) ** 2))


def main(config: Config) -> dict:
    """Trains the AAE, writes the figures and returns the reconstruction and prior-match figures."""
    output_dir, images = start_image_run(config, VALUE_RANGE)

    model = AdversarialAutoencoder(
        *build_digits_aae_networks(config.latent_dim, images.image_shape),
        prior=config.prior,
        reconstruction_weight=config.reconstruction_weight,
        seed=config.seed,
    )
    steps = steps_per_epoch(images)

    def learning_rate():
        if steps is None:
            return config.learning_rate
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps)

    model.compile(
        optimizers={
            "reconstruction": keras.optimizers.Adam(learning_rate()),
            "discriminator": keras.optimizers.Adam(learning_rate(), beta_1=0.5),
            "generator": keras.optimizers.Adam(learning_rate(), beta_1=0.5),
        }
    )
    test_images, test_labels = images.test_arrays()
    error_before = reconstruction_error(model, test_images)
    history, train_seconds = fit(model, images.fit_arguments(labels=False), config, output_dir)

    codes = keras.ops.convert_to_numpy(model.encode(test_images))  # (N, latent_dim)
    reconstruction = keras.ops.convert_to_numpy(model.decode(codes))
    prior_codes = keras.ops.convert_to_numpy(model.sample_prior(10000))
    paths = run_paths(
        output_dir,
        model=output_dir / "model.keras",
        samples=plotting.plot_image_grid(
            keras.ops.convert_to_numpy(model.sample(32)),
            output_dir / "samples.png",
            value_range=VALUE_RANGE,
        ),
    )
    if config.latent_dim == 2:
        paths["latent"] = plotting.plot_latent_scatter(
            codes, test_labels, output_dir / "latent.png"
        )
        paths["manifold"] = plotting.plot_manifold(
            lambda grid: keras.ops.convert_to_numpy(model.decode(grid)),
            output_dir / "manifold.png",
            extent=MANIFOLD_EXTENT[config.prior],
            value_range=VALUE_RANGE,
        )
    model.save(paths["model"])
    export_for_serving(paths, "decoder_export", model.decoder, output_dir, config.export)

    def rounded(values):
        return [round(float(value), 4) for value in values]

    code_mean, code_std = codes.mean(axis=0), codes.std(axis=0)
    prior_mean, prior_std = prior_codes.mean(axis=0), prior_codes.std(axis=0)
    results = run_summary(config, history, train_seconds)
    results.update(
        {
            # Mean squared error per pixel of the test images' reconstructions, pixels in [0, 1].
            "test_reconstruction_error_before": error_before,
            "test_reconstruction_error": float(np.mean((test_images - reconstruction) ** 2)),
            "code_mean": rounded(code_mean),
            "code_std": rounded(code_std),
            "prior_mean": rounded(prior_mean),
            "prior_std": rounded(prior_std),
            "max_mean_difference": float(np.max(np.abs(code_mean - prior_mean))),
            "max_std_difference": float(np.max(np.abs(code_std - prior_std))),
        }
    )
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
