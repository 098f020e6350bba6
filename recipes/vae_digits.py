"""Train a variational autoencoder on the embedded 8x8 digits and draw its latent space.

The encoder maps an image to the mean and log-variance of a Gaussian over a latent code z; a
code is sampled with the reparameterisation trick and decoded; the loss is the reconstruction
error plus beta times KL(q(z|x) ‖ N(0, I)) [notes §5.2]. With a 2-D latent space the recipe
draws the codes of the test digits, coloured by class, and a grid of decoded codes.

``--dataset mnist_sample`` (5,000 real 28×28 MNIST digits, offline) or a tensorflow-datasets
image dataset (``--dataset mnist``, ...) trains networks sized to those images instead of the
embedded digits.

Artefacts in ``output_dir``: ``model.keras``, ``samples.png`` (decoded draws from the prior),
``latent.png``, ``manifold.png`` (2-D latent only), ``history.png``, ``metrics.json``. An
interrupted run resumes from ``output_dir/backup``.

Run: ``dlkit run vae_digits --epochs 20`` or ``python recipes/vae_digits.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from dlkit import plotting
from dlkit.models.vae import VAE, build_digits_vae_decoder, build_digits_vae_encoder
from dlkit.recipes._images import ImageRunConfig, start_image_run
from dlkit.recipes._recipe import (
    export_for_serving,
    fit,
    run_paths,
    run_summary,
    write_metrics,
)


@dataclass
class Config(ImageRunConfig):
    POSITIVE_FIELDS = ("latent_dim",)
    NON_NEGATIVE_FIELDS = ("beta",)

    epochs: int = 20
    batch_size: int = 32
    """Images per gradient step."""
    learning_rate: float = 3e-3
    latent_dim: int = 2
    """Size of the latent code; 2 allows the latent scatter and the manifold figure."""
    beta: float = 1.0
    """Weight of the KL term (beta-VAE when not 1)."""
    seed: int = 0
    """Seed of weights, shuffling and sampling."""
    export: str = "saved_model"
    """Serving export of the decoder (code → image): saved_model, onnx or none."""
    output_dir: str = "runs/vae_digits"


def main(config: Config) -> dict:
    """Trains the VAE, writes the figures and returns the held-out losses."""
    output_dir, images = start_image_run(config, (0.0, 1.0))
    test_data = images.fit_arguments("test", labels=False)
    test_images, test_labels = images.test_arrays()

    model = VAE(
        build_digits_vae_encoder(config.latent_dim, images.image_shape),
        build_digits_vae_decoder(config.latent_dim, images.image_shape),
        beta=config.beta,
        seed=config.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    before = model.evaluate(**test_data, verbose=0, return_dict=True)
    validation = test_data["x"] if not images.is_embedded else (test_data["x"],)
    history, train_seconds = fit(
        model,
        {**images.fit_arguments(labels=False), "validation_data": validation},
        config,
        output_dir,
    )
    after = model.evaluate(**test_data, verbose=0, return_dict=True)

    paths = run_paths(
        output_dir,
        model=output_dir / "model.keras",
        samples=plotting.plot_image_grid(
            keras.ops.convert_to_numpy(model.sample(32)), output_dir / "samples.png"
        ),
    )
    if config.latent_dim == 2:
        means, _ = model.encode(test_images)
        paths["latent"] = plotting.plot_latent_scatter(
            keras.ops.convert_to_numpy(means), test_labels, output_dir / "latent.png"
        )
        paths["manifold"] = plotting.plot_manifold(
            lambda codes: keras.ops.convert_to_numpy(model.decoder(codes)),
            output_dir / "manifold.png",
        )
    model.save(paths["model"])
    export_for_serving(paths, "decoder_export", model.decoder, output_dir, config.export)
    results = run_summary(config, history, train_seconds)
    # The ELBO is the negative of the loss (reconstruction + beta·KL, in nats per image).
    results["test_elbo_before"] = -float(before["loss"])
    results["test_elbo"] = -float(after["loss"])
    results["test_kl"] = float(after["kl_loss"])
    results["test_reconstruction_loss"] = float(after["reconstruction_loss"])
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
