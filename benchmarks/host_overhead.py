"""What a training step costs the host: ``fit`` against a hand-written per-step loop, for a
model whose arithmetic is negligible.

A tiny GAN on the embedded 8×8 digits, flattened (1,437 rows of 64), at batch 8: generator
z (8) → Dense(32) → LeakyReLU(0.2) → Dense(64) → tanh; discriminator 64 → Dense(32) →
LeakyReLU(0.2) → Dense(1) logit; the losses, Adam settings, data feeding and loop structure of
``training_overhead.py`` (its helpers are imported from it). A step's arithmetic is then tens
of microseconds on one core, so what is measured is dispatch, batch slicing and bookkeeping.
The sides run in one process, alternating, each for ``--epochs`` epochs per repeat (the first
epoch is warm-up, every later one is timed alone):

- ``fused``: ``AlternatingModel.fit(..., fused_steps=K)``, the data on the device and K steps
  per compiled call (``dlkit.training.fused``; ``--fused-steps``, default ``auto`` = 32; on
  TensorFlow the K steps are XLA-compiled);
- ``streaming``: ``fit`` as by default, one batch from the host and one compiled call per step
  (Keras's path, with dlkit's leaner step and input pipeline where it has them);
- ``handwritten``: a per-step loop in the backend's own library (``tf.function`` step without
  XLA, as Keras's ``fit`` chooses on a CPU; ``jax.jit`` step with ``optax.adam``;
  ``torch.nn`` and ``torch.optim.Adam``);
- ``handwritten_xla`` (TensorFlow only, a second row): the same step XLA-compiled.

Time per step is the fastest timed epoch's, in wall-clock and in process CPU time (all
threads); the medians are reported too. ``fused_ratio`` = fused / hand-written wall time per
step, the target's measure; ``fused_cpu_ratio`` the same in CPU time.

Prints one JSON object (``--all``: a list, one per backend, each measured in its own process
pinned to one core, ``_common.pin_backend``).

Usage:

    python benchmarks/host_overhead.py --all --save
    KERAS_BACKEND=jax python benchmarks/host_overhead.py --epochs 4
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from _common import add_backend_arguments, add_save_argument, run_per_backend
from training_overhead import (
    LEAKY_SLOPE,
    dlkit_gan,
    epoch_runner,
    glorot_uniform,
    jax_gan_step,
    tensorflow_gan_step,
    time_dlkit,
    torch_gan_step,
)

# The most time per step the fused fit may take, as a multiple of the hand-written loop's.
TARGET_RATIO = {"tensorflow": 0.5, "jax": 0.5, "torch": 1.0}

LATENT_DIM = 8
HIDDEN = 32
PIXELS = 64  # the 8×8 digits, flattened


def mlp_networks():
    """The tiny GAN's generator and discriminator as Keras models."""
    import keras

    layers = keras.layers
    generator = keras.Sequential(
        [
            keras.Input((LATENT_DIM,)),
            layers.Dense(HIDDEN),
            layers.LeakyReLU(LEAKY_SLOPE),
            layers.Dense(PIXELS, activation="tanh"),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((PIXELS,)),
            layers.Dense(HIDDEN),
            layers.LeakyReLU(LEAKY_SLOPE),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    return generator, discriminator


def initial_parameters(seed: int) -> tuple[dict, dict]:
    """Generator and discriminator parameters as Keras initialises them (kernels (in, out))."""
    rng = np.random.default_rng(seed)
    shapes = {"generator": (LATENT_DIM, HIDDEN, PIXELS), "discriminator": (PIXELS, HIDDEN, 1)}
    networks = []
    for inputs, hidden, outputs in shapes.values():
        networks.append(
            {
                "kernel_1": glorot_uniform(rng, (inputs, hidden)),
                "bias_1": np.zeros(hidden, np.float32),
                "kernel_2": glorot_uniform(rng, (hidden, outputs)),
                "bias_2": np.zeros(outputs, np.float32),
            }
        )
    return networks[0], networks[1]


def handwritten_tensorflow(images, batch_size: int, seed: int, jit_compile: bool = False):
    import tensorflow as tf

    generator_values, discriminator_values = initial_parameters(seed)
    generator = {name: tf.Variable(value) for name, value in generator_values.items()}
    discriminator = {name: tf.Variable(value) for name, value in discriminator_values.items()}

    def mlp(params, inputs):
        hidden = tf.nn.leaky_relu(inputs @ params["kernel_1"] + params["bias_1"], LEAKY_SLOPE)
        return hidden @ params["kernel_2"] + params["bias_2"]

    train_step = tensorflow_gan_step(
        lambda noise: tf.tanh(mlp(generator, noise)),
        lambda images: mlp(discriminator, images),
        generator,
        discriminator,
        (PIXELS,),
        LATENT_DIM,
        seed,
        jit_compile,
    )
    return epoch_runner(train_step, images, batch_size, seed)


def handwritten_jax(images, batch_size: int, seed: int):
    import jax
    import jax.numpy as jnp

    def mlp(params, inputs):
        hidden = jax.nn.leaky_relu(inputs @ params["kernel_1"] + params["bias_1"], LEAKY_SLOPE)
        return hidden @ params["kernel_2"] + params["bias_2"]

    generator, discriminator = initial_parameters(seed)
    step = jax_gan_step(
        lambda params, noise: jnp.tanh(mlp(params, noise)),
        mlp,
        generator,
        discriminator,
        LATENT_DIM,
        seed,
    )
    return epoch_runner(step, images, batch_size, seed)


def handwritten_torch(images, batch_size: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = nn.Sequential(
        nn.Linear(LATENT_DIM, HIDDEN),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Linear(HIDDEN, PIXELS),
        nn.Tanh(),
    ).to(device)
    discriminator = nn.Sequential(
        nn.Linear(PIXELS, HIDDEN), nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(HIDDEN, 1)
    ).to(device)
    train_step = torch_gan_step(generator, discriminator, LATENT_DIM, device)
    return epoch_runner(
        train_step, images, batch_size, seed, lambda batch: torch.from_numpy(batch).to(device)
    )


def _per_step(seconds: list[tuple[float, float]], steps_per_epoch: int) -> dict:
    """Fastest and median wall / CPU microseconds per step over the timed epochs."""
    wall, cpu = (np.array(column) for column in zip(*seconds))
    scale = 1e6 / steps_per_epoch
    return {
        "wall_us_per_step": round(float(wall.min()) * scale, 1),
        "cpu_us_per_step": round(float(cpu.min()) * scale, 1),
        "median_wall_us_per_step": round(float(np.median(wall)) * scale, 1),
    }


def benchmark(backend: str, epochs: int, batch_size: int, repeats: int, fused_steps) -> dict:
    """Measures one backend in this process; KERAS_BACKEND must already be ``backend``."""
    import keras

    from dlkit.data import digits
    from dlkit.training import list_devices

    if keras.backend.backend() != backend:
        raise ValueError(
            f"Expected KERAS_BACKEND={backend!r} before keras is imported. "
            f"Received: keras backend {keras.backend.backend()!r}"
        )
    seed = 0
    images, _ = digits("train", value_range=(-1.0, 1.0))
    images = images.reshape(len(images), PIXELS)  # (1437, 64)
    fused, streaming = (dlkit_gan(seed, mlp_networks, LATENT_DIM) for _ in range(2))
    tuned = None  # TensorFlow: the hand-written step XLA-compiled too, a second row
    if backend == "tensorflow":
        handwritten = handwritten_tensorflow(images, batch_size, seed)
        tuned = handwritten_tensorflow(images, batch_size, seed, jit_compile=True)
    elif backend == "jax":
        handwritten = handwritten_jax(images, batch_size, seed)
    else:
        handwritten = handwritten_torch(images, batch_size, seed)

    seconds = {"fused": [], "streaming": [], "handwritten": []}
    for _ in range(repeats):
        seconds["fused"] += time_dlkit(fused, images, epochs, batch_size, fused_steps=fused_steps)
        seconds["streaming"] += time_dlkit(streaming, images, epochs, batch_size, fused_steps=None)
        seconds["handwritten"] += handwritten(epochs)
        if tuned is not None:
            seconds.setdefault("handwritten_xla", []).extend(tuned(epochs))
    steps_per_epoch = math.ceil(len(images) / batch_size)
    sides = {name: _per_step(values, steps_per_epoch) for name, values in seconds.items()}
    ratio = sides["fused"]["wall_us_per_step"] / sides["handwritten"]["wall_us_per_step"]
    devices = list_devices()
    return {
        "backend": backend,
        "device": next((d for d in devices if not d.startswith("cpu")), devices[0]),
        "batch_size": batch_size,
        "fused_steps": fused_steps,
        "steps_per_epoch": steps_per_epoch,
        "steps_timed": steps_per_epoch * (epochs - 1) * repeats,
        "statistic": "fastest timed epoch of each side",
        **{f"{name}_{key}": value for name, side in sides.items() for key, value in side.items()},
        "fused_ratio": round(ratio, 3),
        "fused_cpu_ratio": round(
            sides["fused"]["cpu_us_per_step"] / sides["handwritten"]["cpu_us_per_step"], 3
        ),
        "streaming_ratio": round(
            sides["streaming"]["wall_us_per_step"] / sides["handwritten"]["wall_us_per_step"], 3
        ),
        "target_ratio": TARGET_RATIO[backend],
        "meets_target": ratio <= TARGET_RATIO[backend],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument(
        "--epochs", type=int, default=4, help="Epochs per run; the first is warm-up (default 4)."
    )
    parser.add_argument("--batch-size", type=int, default=8, help="Batch size (default 8).")
    parser.add_argument(
        "--fused-steps",
        default="auto",
        help="K, steps per compiled call of the fused fit: an integer or 'auto' (default).",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="Runs of each side, alternating (default 3)."
    )
    add_save_argument(parser)
    args = parser.parse_args(argv)
    fused_steps = args.fused_steps if args.fused_steps == "auto" else int(args.fused_steps)
    if args.epochs < 2 or args.batch_size < 1 or args.repeats < 1:
        parser.error("Expected --epochs >= 2, --batch-size >= 1 and --repeats >= 1.")
    arguments = [
        f"--epochs={args.epochs}",
        f"--batch-size={args.batch_size}",
        f"--repeats={args.repeats}",
        f"--fused-steps={args.fused_steps}",
    ]
    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "fused_steps": fused_steps,
    }
    run_per_backend(
        __file__,
        args,
        arguments,
        settings,
        lambda: benchmark(args.backend, args.epochs, args.batch_size, args.repeats, fused_steps),
    )


if __name__ == "__main__":
    main()
