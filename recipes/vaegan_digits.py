"""Train a VAE-GAN on the embedded 8x8 digits and compare images with their reconstructions.

A VAE whose reconstruction error is measured in the feature space of a GAN discriminator
instead of pixel by pixel [notes §6.1]: the encoder maps an image to a Gaussian code, the
decoder reconstructs it and also generates from prior codes, and the discriminator tells real
digits from reconstructions and from prior samples. Three updates take turns on each batch:
encoder (beta · KL + feature loss), decoder (feature_weight · feature loss + non-saturating GAN
loss), discriminator (GAN loss) (Larsen et al. 2016). The held-out pixel error of the
reconstructions, which the model never trains on, measures how faithful they are; a small CNN
classifier trained on the real digits labels 1,000 prior samples to show which digits it draws.

``--dataset mnist_sample`` (5,000 real 28×28 MNIST digits, offline) or a tensorflow-datasets
image dataset (``--dataset mnist``, ...) trains the same networks, sized to those images; the
class check runs on the two offline digit sets, which the judge of ``dlkit.vision.judge`` reads.

Artefacts in ``output_dir``: ``model.keras``, ``reconstructions.png`` (test images above their
reconstructions), ``samples.png`` (decoded prior draws), ``history.png`` and ``metrics.json``.
An interrupted run resumes from ``output_dir/backup``.

Run: ``dlkit run vaegan_digits --epochs 30`` or ``python recipes/vaegan_digits.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from dlkit import plotting
from dlkit.losses import kl_divergence_to_standard_normal
from dlkit.models.vaegan import VAEGAN, build_digits_vaegan_networks
from dlkit.recipes._images import (
    ImageRunConfig,
    adversarial_optimizers,
    class_coverage,
    start_image_run,
)
from dlkit.recipes._recipe import (
    export_for_serving,
    fit,
    run_paths,
    run_summary,
    write_metrics,
)

VALUE_RANGE = (-1.0, 1.0)
# Test images shown above their reconstructions in reconstructions.png.
NUM_SHOWN = 10


@dataclass
class Config(ImageRunConfig):
    POSITIVE_FIELDS = ("latent_dim",)
    NON_NEGATIVE_FIELDS = ("beta", "feature_weight")

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    """Adam step size of the three updates (beta_1 = 0.5)."""
    latent_dim: int = 16
    """Size of the latent code."""
    beta: float = 1.0
    """Weight of the KL term in the encoder's loss."""
    feature_weight: float = 1.0
    """Weight (the paper's gamma) of the feature loss in the decoder's loss."""
    export: str = "saved_model"
    """Serving export of the decoder (code → image): saved_model, onnx or none."""
    output_dir: str = "runs/vaegan_digits"


def held_out_scores(model: VAEGAN, images: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Reconstructions of `images` (mean codes), their pixel MSE and the mean KL of the codes."""
    reconstructions = model.predict(images, batch_size=256, verbose=0)
    mean, log_variance = model.encode(images)
    pixel_mse = float(np.mean(np.square(reconstructions - images)))
    kl = float(keras.ops.convert_to_numpy(kl_divergence_to_standard_normal(mean, log_variance)))
    return reconstructions, pixel_mse, kl


def main(config: Config) -> dict:
    """Trains the VAE-GAN, writes the figures and returns held-out errors and class shares."""
    output_dir, images = start_image_run(config, VALUE_RANGE)
    real, _ = images.test_arrays()

    model = VAEGAN(
        *build_digits_vaegan_networks(config.latent_dim, images.image_shape),
        beta=config.beta,
        feature_weight=config.feature_weight,
        seed=config.seed,
    )
    model.compile(optimizers=adversarial_optimizers(model, config.learning_rate))
    _, pixel_mse_before, _ = held_out_scores(model, real)
    history, train_seconds = fit(model, images.fit_arguments(labels=False), config, output_dir)

    reconstructions, pixel_mse, kl = held_out_scores(model, real)
    generated = keras.ops.convert_to_numpy(model.sample(1000))
    paths = run_paths(
        output_dir,
        model=output_dir / "model.keras",
        # First row: test images; second row: their reconstructions.
        reconstructions=plotting.plot_image_grid(
            np.concatenate([real[:NUM_SHOWN], reconstructions[:NUM_SHOWN]]),
            output_dir / "reconstructions.png",
            num_columns=NUM_SHOWN,
            value_range=VALUE_RANGE,
        ),
        samples=plotting.plot_image_grid(
            generated[:32], output_dir / "samples.png", value_range=VALUE_RANGE
        ),
    )
    model.save(paths["model"])
    export_for_serving(paths, "decoder_export", model.decoder, output_dir, config.export)
    results = run_summary(config, history, train_seconds)
    results.update(
        {
            "test_pixel_mse_before": pixel_mse_before,
            "test_pixel_mse": pixel_mse,
            # Pixel error of the mean test image, the score of a model that ignores its input.
            "test_pixel_mse_of_mean_image": float(np.mean(np.square(real - real.mean(axis=0)))),
            "test_kl": kl,
        }
    )
    results.update(class_coverage(generated, images, VALUE_RANGE))
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
