"""Training speed of every generative model of ``dlkit.models``, in steps per second per backend.

Each model is built with its default networks for the embedded 8×8 digits (the builders of
``dlkit.models``), compiled with Adam, and trained with ``fit`` on
``dlkit.data.digits("train")`` (1,437 images; batches of ``--batch-size``, default 64, so 23
steps per epoch). A training step is one batch: for the adversarial models it includes all of
their alternating updates (the GANs' discriminator and generator updates, the adversarial
autoencoder's three, CycleGAN's two). The first epoch traces and compiles and is not timed; the
next ``--epochs`` epochs are timed one by one.

Prints one JSON object (``--all``: a JSON list, one object per backend, each measured in its
own process):

    {"backend", "device", "batch_size", "models": {name: {"steps_per_s", "median_steps_per_s",
     "updates_per_step", "seconds_per_epoch"}}}

``steps_per_s`` comes from the fastest timed epoch (other processes only slow an epoch down),
``median_steps_per_s`` from the median one.

Usage:

    python benchmarks/generative.py --all
    KERAS_BACKEND=jax python benchmarks/generative.py --models GAN,VAE
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import add_backend_arguments, add_save_argument, run_per_backend

LATENT_DIM = 8
NUM_CLASSES = 10
MODEL_NAMES = (
    "Autoencoder",
    "VAE",
    "ConditionalVAE",
    "GAN",
    "ConditionalGAN",
    "ACGAN",
    "AdversarialAutoencoder",
    "VAEGAN",
    "CycleGAN",
)


def adam():
    import keras

    return keras.optimizers.Adam(1e-3, beta_1=0.5)


def build_models() -> dict:
    """{name: (model factory, fit arguments factory)}: the models, compiled, and their data."""
    from dlkit.data import digits
    from dlkit.models import aae, autoencoder, cyclegan, gan, vae, vaegan

    def unit_images():
        return {"x": digits("train")[0]}

    def signed_images():
        return {"x": digits("train", value_range=(-1, 1))[0]}

    def signed_images_and_labels():
        images, labels = digits("train", value_range=(-1, 1))
        return {"x": images, "y": labels}

    def unit_images_and_labels():  # the conditional VAE takes (images, labels) as its input
        return {"x": digits("train")}

    def two_domains():
        images, _ = digits("train", value_range=(-1, 1))
        half = len(images) // 2
        return {"x": images[:half], "y": -images[half : 2 * half]}

    def single(model):
        model.compile(optimizer=adam())
        return model

    def alternating(model):
        model.compile(optimizers={update.name: adam() for update in model.updates()})
        return model

    return {
        "Autoencoder": (
            lambda: single(autoencoder.Autoencoder(*autoencoder.build_conv_autoencoder())),
            unit_images,
        ),
        "VAE": (
            lambda: single(
                vae.VAE(
                    vae.build_digits_vae_encoder(LATENT_DIM),
                    vae.build_digits_vae_decoder(LATENT_DIM),
                    seed=0,
                )
            ),
            unit_images,
        ),
        "ConditionalVAE": (
            lambda: single(
                vae.ConditionalVAE(
                    vae.build_digits_cvae_encoder(LATENT_DIM, NUM_CLASSES),
                    vae.build_digits_cvae_decoder(LATENT_DIM, NUM_CLASSES),
                    num_classes=NUM_CLASSES,
                    seed=0,
                )
            ),
            unit_images_and_labels,
        ),
        "GAN": (
            lambda: alternating(
                gan.GAN(
                    gan.build_digits_generator(LATENT_DIM),
                    gan.build_digits_discriminator(),
                    LATENT_DIM,
                    seed=0,
                )
            ),
            signed_images,
        ),
        "ConditionalGAN": (
            lambda: alternating(
                gan.ConditionalGAN(None, None, LATENT_DIM, NUM_CLASSES, "film", seed=0)
            ),
            signed_images_and_labels,
        ),
        "ACGAN": (
            lambda: alternating(
                gan.ACGAN(
                    gan.build_conditional_digits_generator(LATENT_DIM, NUM_CLASSES),
                    gan.build_acgan_digits_discriminator(NUM_CLASSES),
                    LATENT_DIM,
                    NUM_CLASSES,
                    seed=0,
                )
            ),
            signed_images_and_labels,
        ),
        "AdversarialAutoencoder": (
            lambda: alternating(
                aae.AdversarialAutoencoder(*aae.build_digits_aae_networks(LATENT_DIM), seed=0)
            ),
            unit_images,
        ),
        "VAEGAN": (
            lambda: alternating(
                vaegan.VAEGAN(*vaegan.build_digits_vaegan_networks(LATENT_DIM), seed=0)
            ),
            signed_images,
        ),
        "CycleGAN": (
            lambda: alternating(cyclegan.CycleGAN(*cyclegan.build_digits_cyclegan_networks())),
            two_domains,
        ),
    }


def time_fit(model, fit_arguments: dict, epochs: int, batch_size: int) -> list[float]:
    """Seconds of each epoch of ``fit`` but the first (which traces and compiles)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            [float(value) for value in logs.values()]  # waits for the epoch's last step
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    model.fit(
        **fit_arguments, batch_size=batch_size, epochs=epochs + 1, callbacks=[timer], verbose=0
    )
    return timer.seconds[1:]


def benchmark(backend: str, names: list[str], epochs: int, batch_size: int) -> dict:
    """Measures the named models in this process; KERAS_BACKEND must already be ``backend``."""
    import keras

    from dlkit.training import list_devices

    if keras.backend.backend() != backend:
        raise ValueError(
            f"Expected KERAS_BACKEND={backend!r} before keras is imported. "
            f"Received: keras backend {keras.backend.backend()!r}"
        )
    models = build_models()
    results = {}
    for name in names:
        keras.utils.set_random_seed(0)
        make_model, make_data = models[name]
        model = make_model()
        fit_arguments = make_data()
        inputs = fit_arguments["x"]
        num_examples = len(inputs[0] if isinstance(inputs, tuple) else inputs)
        steps = int(np.ceil(num_examples / batch_size))
        seconds = np.array(time_fit(model, fit_arguments, epochs, batch_size))
        updates = getattr(model, "updates", None)
        results[name] = {
            "steps_per_s": round(steps / float(seconds.min()), 1),
            "median_steps_per_s": round(steps / float(np.median(seconds)), 1),
            "updates_per_step": (
                sum(update.repetitions for update in updates()) if callable(updates) else 1
            ),
            "seconds_per_epoch": round(float(np.median(seconds)), 3),
        }
    devices = list_devices()
    return {
        "backend": backend,
        "device": next((d for d in devices if not d.startswith("cpu")), devices[0]),
        "batch_size": batch_size,
        "epochs_timed": epochs,
        "models": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument(
        "--models", default="", help="Comma-separated model names (default: all of them)."
    )
    parser.add_argument("--epochs", type=int, default=3, help="Timed epochs (default 3).")
    parser.add_argument("--batch-size", type=int, default=64, help="Batch size (default 64).")
    add_save_argument(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("Expected --epochs >= 1 and --batch-size >= 1.")
    known = list(MODEL_NAMES)
    names = [name for name in args.models.split(",") if name] or known
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"Unknown model(s) {unknown}; choose from {known}.")
    arguments = [
        f"--models={','.join(names)}",
        f"--epochs={args.epochs}",
        f"--batch-size={args.batch_size}",
    ]
    run_per_backend(
        __file__,
        args,
        arguments,
        {"models": names, "epochs": args.epochs, "batch_size": args.batch_size},
        lambda: benchmark(args.backend, names, args.epochs, args.batch_size),
    )


if __name__ == "__main__":
    main()
