"""Train a DCGAN on the embedded 8x8 digits and check which digits it draws.

A generator maps Gaussian noise to 8x8 images through transposed convolutions; a
convolutional discriminator tells them from real digits. They take turns: ``discriminator_steps``
updates of the discriminator, then one of the generator, with the non-saturating generator loss
[notes ch. 6, eq. 6.1]. To see whether the generator covers every digit rather than a few modes,
a small CNN classifier trained on the real digits labels 1,000 samples.

``--dataset mnist_sample`` (5,000 real 28×28 MNIST digits, offline) or a tensorflow-datasets
image dataset (``--dataset mnist``, ...) trains the same networks, sized to those images; the
class check runs on the two offline digit sets, which the judge of ``dlkit.vision.judge`` reads.

Artefacts in ``output_dir``: ``generator.keras``, ``samples/samples_epoch_NNN.png`` (one grid
every ``sample_every`` epochs), ``history.png`` and ``metrics.json``. An interrupted run resumes
from ``output_dir/backup``.

Run: ``dlkit run gan_digits --epochs 40`` or ``python recipes/gan_digits.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from dlkit.callbacks import SampleGrid
from dlkit.models.gan import GAN, build_digits_discriminator, build_digits_generator
from dlkit.recipes._images import (
    ImageRunConfig,
    adversarial_optimizers,
    class_coverage,
    start_image_run,
)
from dlkit.recipes._recipe import (
    fit,
    run_paths,
    run_summary,
    save_for_serving,
    write_metrics,
)

VALUE_RANGE = (-1.0, 1.0)


@dataclass
class Config(ImageRunConfig):
    POSITIVE_FIELDS = ("latent_dim", "discriminator_steps", "sample_every")

    epochs: int = 40
    batch_size: int = 32
    """Real images per step."""
    learning_rate: float = 1e-3
    """Adam step size of both players (beta_1 = 0.5)."""
    latent_dim: int = 32
    """Size of the noise vector."""
    discriminator_steps: int = 2
    """Discriminator updates per generator update (the notes' k)."""
    sample_every: int = 5
    """Epochs between sample grids."""
    export: str = "saved_model"
    """Serving export of the generator (noise → image): saved_model, onnx or none."""
    output_dir: str = "runs/gan_digits"
    """Folder for the generator, figures, metrics and the resumable backup."""


def main(config: Config) -> dict:
    """Trains the GAN, writes the sample grids and returns the losses and class coverage."""
    output_dir, images = start_image_run(config, VALUE_RANGE)

    gan = GAN(
        build_digits_generator(config.latent_dim, images.image_shape),
        build_digits_discriminator(images.image_shape),
        latent_dim=config.latent_dim,
        discriminator_steps=config.discriminator_steps,
        seed=config.seed,
    )
    gan.compile(optimizers=adversarial_optimizers(gan, config.learning_rate))
    samples = SampleGrid(
        output_dir=output_dir / "samples", every=config.sample_every, value_range=VALUE_RANGE
    )
    history, train_seconds = fit(
        gan, images.fit_arguments(labels=False), config, output_dir, callbacks=[samples]
    )

    generated = keras.ops.convert_to_numpy(gan.sample(1000))
    real, _ = images.test_arrays()
    paths = run_paths(output_dir, generator=output_dir / "generator.keras", samples=samples.paths)
    save_for_serving(paths, "generator", gan.generator, output_dir, config.export)
    results = run_summary(config, history, train_seconds)
    results["pixel_mean_difference"] = float(abs(generated.mean() - real.mean()))
    results["pixel_std_difference"] = float(abs(generated.std() - real.std()))
    results.update(class_coverage(generated, images, VALUE_RANGE, "class_shares_of_samples"))
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
