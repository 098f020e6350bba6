"""Training overhead of ``AlternatingModel.fit`` against a hand-written loop of the same GAN.

A DCGAN on the embedded 8×8 digits (``dlkit.data.digits("train", value_range=(-1, 1))``, 1,437
images) is trained twice on one backend: as a ``dlkit.training.AlternatingModel`` with
``model.fit``, and as a loop written directly in the backend's own library:

- TensorFlow: ``tf.Variable``s, ``tf.nn`` ops and a hand-written Adam in one ``tf.function``
  step (XLA on or off as Keras's ``fit`` chose it), no Keras;
- PyTorch: ``torch.nn`` modules and ``torch.optim.Adam``;
- JAX: ``jax.lax`` convolutions and ``optax.adam`` in one ``jax.jit`` step.

Both sides train the same networks with the same losses, optimizers, batch size and data
feeding (a fresh shuffle of the same NumPy array every epoch, partial last batch included, noise
drawn inside the step). Each side runs ``--repeats`` times, alternating, for ``--epochs`` epochs
each; the first epoch of a run is warm-up (tracing, compilation) and every later epoch is timed
alone, from before its shuffle to its last step's result. A side's speed is that of its fastest
timed epoch: other processes on the machine only ever slow an epoch down, so the fastest one is
the least disturbed. The medians are reported too, and so is the process CPU time per step
(all threads, least over the timed epochs), which competing processes barely change.

Architecture:

    generator:      z (32) → Dense(2·2·64) → LeakyReLU(0.2) → (2, 2, 64)
                    → Conv2DTranspose(32, 4, stride 2, same) → LeakyReLU(0.2)
                    → Conv2DTranspose(1, 4, stride 2, same) → tanh → (8, 8, 1)
    discriminator:  (8, 8, 1) → Conv2D(32, 4, stride 2, same) → LeakyReLU(0.2)
                    → Conv2D(64, 4, stride 2, same) → LeakyReLU(0.2) → Flatten → Dense(1) logit
    losses:         L_D = mean softplus(−D(x)) + mean softplus(D(G(z)))   (BCE with logits)
                    L_G = mean softplus(−D(G(z)))                         (non-saturating)
    optimizers:     Adam(2e-4, β₁ = 0.5, ε = 1e-7) each; one discriminator step per generator step

Prints one JSON object (``--all``: a JSON list, one object per backend, each measured in its
own process):

    {"backend", "device", "batch_size", "steps_timed", "dlkit_steps_per_s",
     "handwritten_steps_per_s", "overhead_ratio", "target_ratio", "meets_target", ...}

``overhead_ratio`` = handwritten / dlkit steps per second: how many times slower dlkit is;
``cpu_overhead_ratio`` = dlkit / handwritten CPU time per step, the same ratio in CPU time.

Usage:

    python benchmarks/training_overhead.py --all
    KERAS_BACKEND=jax python benchmarks/training_overhead.py --epochs 8
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _common import add_backend_arguments, add_save_argument, run_per_backend

# How many times slower than the hand-written loop dlkit may be. Keras on PyTorch runs every
# layer eagerly through Keras's own ops, which costs about 2× over plain PyTorch.
TARGET_RATIO = {"tensorflow": 1.10, "jax": 1.10, "torch": 2.0}

LATENT_DIM = 32
LEAKY_SLOPE = 0.2
LEARNING_RATE = 2e-4
BETA_1 = 0.5
BETA_2 = 0.999
EPSILON = 1e-7  # Keras's Adam default; the hand-written loops use the same.


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Keras's default kernel initializer, in NumPy (convolution kernels: (h, w, in, out))."""
    receptive_field = math.prod(shape[:-2]) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def initial_parameters(seed: int) -> tuple[dict, dict]:
    """Generator and discriminator parameters in Keras's layouts (used by TF and JAX loops).

    Conv2D kernels are (h, w, in, out); Conv2DTranspose kernels are (h, w, out, in).
    """
    rng = np.random.default_rng(seed)
    generator = {
        "dense_kernel": glorot_uniform(rng, (LATENT_DIM, 2 * 2 * 64)),
        "dense_bias": np.zeros(2 * 2 * 64, np.float32),
        "deconv1_kernel": glorot_uniform(rng, (4, 4, 32, 64)),
        "deconv1_bias": np.zeros(32, np.float32),
        "deconv2_kernel": glorot_uniform(rng, (4, 4, 1, 32)),
        "deconv2_bias": np.zeros(1, np.float32),
    }
    discriminator = {
        "conv1_kernel": glorot_uniform(rng, (4, 4, 1, 32)),
        "conv1_bias": np.zeros(32, np.float32),
        "conv2_kernel": glorot_uniform(rng, (4, 4, 32, 64)),
        "conv2_bias": np.zeros(64, np.float32),
        "dense_kernel": glorot_uniform(rng, (2 * 2 * 64, 1)),
        "dense_bias": np.zeros(1, np.float32),
    }
    return generator, discriminator


def clock() -> tuple[float, float]:
    """Wall-clock and process CPU time (all threads) now, in seconds."""
    return time.perf_counter(), time.process_time()


def elapsed(start: tuple[float, float]) -> tuple[float, float]:
    """Wall-clock and CPU seconds since ``start = clock()``."""
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def shuffled_batches(images: np.ndarray, batch_size: int, rng: np.random.Generator):
    """One epoch of batches from a fresh permutation, the last one partial (as ``fit``)."""
    order = rng.permutation(len(images))
    for start in range(0, len(images), batch_size):
        yield images[order[start : start + batch_size]]


# ----------------------------------------------------------------------------------------------
# dlkit: an AlternatingModel trained with fit.
# ----------------------------------------------------------------------------------------------


def dcgan_networks():
    """The DCGAN's generator and discriminator as Keras models (the architecture above)."""
    import keras

    layers = keras.layers
    generator = keras.Sequential(
        [
            keras.Input((LATENT_DIM,)),
            layers.Dense(2 * 2 * 64),
            layers.LeakyReLU(LEAKY_SLOPE),
            layers.Reshape((2, 2, 64)),
            layers.Conv2DTranspose(32, 4, strides=2, padding="same"),
            layers.LeakyReLU(LEAKY_SLOPE),
            layers.Conv2DTranspose(1, 4, strides=2, padding="same"),
            layers.Activation("tanh"),
        ],
        name="generator",
    )
    discriminator = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(32, 4, strides=2, padding="same"),
            layers.LeakyReLU(LEAKY_SLOPE),
            layers.Conv2D(64, 4, strides=2, padding="same"),
            layers.LeakyReLU(LEAKY_SLOPE),
            layers.Flatten(),
            layers.Dense(1),
        ],
        name="discriminator",
    )
    return generator, discriminator


def dlkit_gan(
    seed: int,
    networks=dcgan_networks,
    latent_dim: int = LATENT_DIM,
    jit_compile="auto",
    steps_per_execution: int = 1,
):
    """A GAN as a ``dlkit.training.AlternatingModel``, compiled: ``networks()`` gives its
    (generator, discriminator); the losses and optimizers are the ones above."""
    import keras

    from dlkit.training import AlternatingModel, Update

    class GAN(AlternatingModel):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.generator, self.discriminator = networks()
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, noise):
            return self.generator(noise)

        def updates(self):
            return [
                Update(
                    "discriminator",
                    self.discriminator.trainable_variables,
                    self.discriminator_loss,
                ),
                Update("generator", self.generator.trainable_variables, self.generator_loss),
            ]

        def noise(self, real):
            batch_size = keras.ops.shape(real)[0]
            return keras.random.normal((batch_size, latent_dim), seed=self.seed_generator)

        def discriminator_loss(self, real):
            real_logits = self.discriminator(real)
            fake_logits = self.discriminator(self.generator(self.noise(real)))
            return keras.ops.mean(keras.ops.softplus(-real_logits)) + keras.ops.mean(
                keras.ops.softplus(fake_logits)
            )

        def generator_loss(self, real):
            fake_logits = self.discriminator(self.generator(self.noise(real)))
            return keras.ops.mean(keras.ops.softplus(-fake_logits))

    keras.utils.set_random_seed(seed)
    model = GAN()
    model.compile(
        optimizers={
            name: keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1, epsilon=EPSILON)
            for name in ("discriminator", "generator")
        },
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model


def dlkit_dcgan(seed: int, jit_compile="auto", steps_per_execution: int = 1):
    """The DCGAN as a ``dlkit.training.AlternatingModel``, compiled."""
    return dlkit_gan(seed, jit_compile=jit_compile, steps_per_execution=steps_per_execution)


def time_dlkit(
    model, images: np.ndarray, epochs: int, batch_size: int, **fit_options
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each epoch of ``fit`` but the first (which traces and compiles);
    ``fit_options`` go to ``fit`` (``fused_steps``)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = clock()

        def on_epoch_end(self, epoch, logs=None):
            float(logs["generator_loss"])  # waits for the epoch's last step
            self.seconds.append(elapsed(self.start))

    timer = EpochTimer()
    model.fit(
        images,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        callbacks=[timer],
        verbose=0,
        **fit_options,
    )
    return timer.seconds[1:]


# ----------------------------------------------------------------------------------------------
# Hand-written loops. Each returns `run(epochs)`, giving (wall, CPU) seconds of epochs 2..epochs.
# ----------------------------------------------------------------------------------------------


def tensorflow_adam(variables: dict):
    """A hand-written Adam on ``tf.Variable``s, the same update as Keras's: returns its apply
    function, ``apply({name: gradient})``."""
    import tensorflow as tf

    moments = {name: tf.Variable(tf.zeros_like(v)) for name, v in variables.items()}
    velocities = {name: tf.Variable(tf.zeros_like(v)) for name, v in variables.items()}
    iterations = tf.Variable(0.0)

    def apply(gradients: dict):
        iterations.assign_add(1.0)
        step_size = LEARNING_RATE * tf.sqrt(1.0 - BETA_2**iterations) / (1.0 - BETA_1**iterations)
        for name, gradient in gradients.items():
            moment, velocity = moments[name], velocities[name]
            moment.assign_add((gradient - moment) * (1.0 - BETA_1))
            velocity.assign_add((tf.square(gradient) - velocity) * (1.0 - BETA_2))
            variables[name].assign_sub(step_size * moment / (tf.sqrt(velocity) + EPSILON))

    return apply


def epoch_runner(train_step, images: np.ndarray, batch_size: int, seed: int, to_batch=None):
    """``run(epochs)`` of a hand-written per-step loop: ``train_step(batch) -> losses`` on
    ``shuffled_batches`` of ``images`` (``to_batch`` converts each NumPy batch first); returns
    the (wall, CPU) seconds of epochs 2..epochs, each timed from before its shuffle to its last
    step's result."""
    rng = np.random.default_rng(seed)

    def run(epochs: int) -> list[tuple[float, float]]:
        seconds = []
        for _ in range(epochs):
            start = clock()
            for batch in shuffled_batches(images, batch_size, rng):
                losses = train_step(batch if to_batch is None else to_batch(batch))
            float(losses[1])  # waits for the epoch's last step
            seconds.append(elapsed(start))
        return seconds[1:]

    return run


def tensorflow_gan_step(
    generate, discriminate, generator, discriminator, image_shape, latent_dim, seed, jit_compile
):
    """The GAN's training step as one ``tf.function`` with an input signature:
    ``generate(noise)`` and ``discriminate(images)`` read the ``tf.Variable`` dicts
    ``generator`` and ``discriminator``, each updated by ``tensorflow_adam``."""
    import tensorflow as tf

    noise_rng = tf.random.Generator.from_seed(seed)
    apply_discriminator = tensorflow_adam(discriminator)
    apply_generator = tensorflow_adam(generator)

    @tf.function(
        input_signature=[tf.TensorSpec((None, *image_shape), tf.float32)], jit_compile=jit_compile
    )
    def train_step(real):
        batch = tf.shape(real)[0]
        with tf.GradientTape() as tape:
            fake = generate(noise_rng.normal((batch, latent_dim)))
            discriminator_loss = tf.reduce_mean(
                tf.nn.softplus(-discriminate(real))
            ) + tf.reduce_mean(tf.nn.softplus(discriminate(fake)))
        apply_discriminator(
            dict(
                zip(discriminator, tape.gradient(discriminator_loss, list(discriminator.values())))
            )
        )
        with tf.GradientTape() as tape:
            fake = generate(noise_rng.normal((batch, latent_dim)))
            generator_loss = tf.reduce_mean(tf.nn.softplus(-discriminate(fake)))
        apply_generator(
            dict(zip(generator, tape.gradient(generator_loss, list(generator.values()))))
        )
        return discriminator_loss, generator_loss

    return train_step


def jax_gan_step(generate, discriminate, generator, discriminator, latent_dim, seed):
    """``step(real) -> losses``: the GAN's training step as one ``jax.jit`` with ``optax.adam``
    (the state donated, as Keras's JAX trainer does, so XLA may update it in place);
    ``generate(params, noise)`` and ``discriminate(params, images)`` are pure, ``generator``
    and ``discriminator`` their initial NumPy parameters."""
    import jax
    import jax.numpy as jnp
    import optax

    def discriminator_loss(discriminator, generator, real, noise):
        fake = generate(generator, noise)
        return jnp.mean(jax.nn.softplus(-discriminate(discriminator, real))) + jnp.mean(
            jax.nn.softplus(discriminate(discriminator, fake))
        )

    def generator_loss(generator, discriminator, noise):
        return jnp.mean(jax.nn.softplus(-discriminate(discriminator, generate(generator, noise))))

    optimizer = optax.adam(LEARNING_RATE, b1=BETA_1, b2=BETA_2, eps=EPSILON)

    def train_step(state, real):
        generator, discriminator, generator_opt, discriminator_opt, key = state
        key, discriminator_key, generator_key = jax.random.split(key, 3)
        noise = jax.random.normal(discriminator_key, (real.shape[0], latent_dim))
        d_loss, gradients = jax.value_and_grad(discriminator_loss)(
            discriminator, generator, real, noise
        )
        updates, discriminator_opt = optimizer.update(gradients, discriminator_opt, discriminator)
        discriminator = optax.apply_updates(discriminator, updates)
        noise = jax.random.normal(generator_key, (real.shape[0], latent_dim))
        g_loss, gradients = jax.value_and_grad(generator_loss)(generator, discriminator, noise)
        updates, generator_opt = optimizer.update(gradients, generator_opt, generator)
        generator = optax.apply_updates(generator, updates)
        state = (generator, discriminator, generator_opt, discriminator_opt, key)
        return state, (d_loss, g_loss)

    train_step = jax.jit(train_step, donate_argnums=0)
    generator = jax.tree.map(jnp.asarray, generator)
    discriminator = jax.tree.map(jnp.asarray, discriminator)
    state = [
        (
            generator,
            discriminator,
            optimizer.init(generator),
            optimizer.init(discriminator),
            jax.random.key(seed),
        )
    ]

    def step(real):
        state[0], losses = train_step(state[0], real)
        return losses

    return step


def torch_gan_step(generator, discriminator, latent_dim: int, device):
    """``train_step(real) -> losses``: the usual PyTorch GAN step with ``torch.optim.Adam``
    for the ``torch.nn`` modules ``generator`` and ``discriminator``."""
    import torch

    adam = {"betas": (BETA_1, BETA_2), "eps": EPSILON}
    generator_optimizer = torch.optim.Adam(generator.parameters(), LEARNING_RATE, **adam)
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), LEARNING_RATE, **adam)
    softplus = torch.nn.functional.softplus

    def train_step(real):
        noise = torch.randn(real.shape[0], latent_dim, device=device)
        # The discriminator's turn does not backpropagate into the generator (detach); the
        # generator's turn goes through the discriminator.
        discriminator_optimizer.zero_grad()
        fake = generator(noise).detach()
        discriminator_loss = (
            softplus(-discriminator(real)).mean() + softplus(discriminator(fake)).mean()
        )
        discriminator_loss.backward()
        discriminator_optimizer.step()
        generator_optimizer.zero_grad()
        noise = torch.randn(real.shape[0], latent_dim, device=device)
        generator_loss = softplus(-discriminator(generator(noise))).mean()
        generator_loss.backward()
        generator_optimizer.step()
        return discriminator_loss.detach(), generator_loss.detach()

    return train_step


def handwritten_tensorflow(images, batch_size: int, seed: int, jit_compile: bool):
    import tensorflow as tf

    generator_values, discriminator_values = initial_parameters(seed)
    generator = {name: tf.Variable(value) for name, value in generator_values.items()}
    discriminator = {name: tf.Variable(value) for name, value in discriminator_values.items()}

    def generate(noise):
        batch = tf.shape(noise)[0]
        hidden = tf.nn.leaky_relu(
            noise @ generator["dense_kernel"] + generator["dense_bias"], LEAKY_SLOPE
        )
        hidden = tf.reshape(hidden, (batch, 2, 2, 64))  # (B, 2, 2, 64)
        hidden = tf.nn.conv2d_transpose(
            hidden, generator["deconv1_kernel"], tf.stack([batch, 4, 4, 32]), 2, "SAME"
        )
        hidden = tf.nn.leaky_relu(hidden + generator["deconv1_bias"], LEAKY_SLOPE)
        output = tf.nn.conv2d_transpose(
            hidden, generator["deconv2_kernel"], tf.stack([batch, 8, 8, 1]), 2, "SAME"
        )
        return tf.tanh(output + generator["deconv2_bias"])  # (B, 8, 8, 1)

    def discriminate(image):
        hidden = tf.nn.conv2d(image, discriminator["conv1_kernel"], 2, "SAME")
        hidden = tf.nn.leaky_relu(hidden + discriminator["conv1_bias"], LEAKY_SLOPE)
        hidden = tf.nn.conv2d(hidden, discriminator["conv2_kernel"], 2, "SAME")
        hidden = tf.nn.leaky_relu(hidden + discriminator["conv2_bias"], LEAKY_SLOPE)
        hidden = tf.reshape(hidden, (-1, 2 * 2 * 64))  # (B, 256)
        return hidden @ discriminator["dense_kernel"] + discriminator["dense_bias"]  # (B, 1)

    train_step = tensorflow_gan_step(
        generate, discriminate, generator, discriminator, (8, 8, 1), LATENT_DIM, seed, jit_compile
    )
    return epoch_runner(train_step, images, batch_size, seed)


def handwritten_jax(images, batch_size: int, seed: int):
    import jax
    import jax.numpy as jnp

    dimension_numbers = ("NHWC", "HWIO", "NHWC")

    def generate(params, noise):
        hidden = jax.nn.leaky_relu(
            noise @ params["dense_kernel"] + params["dense_bias"], LEAKY_SLOPE
        )
        hidden = hidden.reshape(-1, 2, 2, 64)  # (B, 2, 2, 64)
        # Kernels in Keras's (h, w, out, in) layout, hence transpose_kernel=True.
        hidden = jax.lax.conv_transpose(
            hidden, params["deconv1_kernel"], (2, 2), "SAME", None, dimension_numbers, True
        )
        hidden = jax.nn.leaky_relu(hidden + params["deconv1_bias"], LEAKY_SLOPE)  # (B, 4, 4, 32)
        output = jax.lax.conv_transpose(
            hidden, params["deconv2_kernel"], (2, 2), "SAME", None, dimension_numbers, True
        )
        return jnp.tanh(output + params["deconv2_bias"])  # (B, 8, 8, 1)

    def discriminate(params, image):
        hidden = jax.lax.conv_general_dilated(
            image, params["conv1_kernel"], (2, 2), "SAME", dimension_numbers=dimension_numbers
        )
        hidden = jax.nn.leaky_relu(hidden + params["conv1_bias"], LEAKY_SLOPE)  # (B, 4, 4, 32)
        hidden = jax.lax.conv_general_dilated(
            hidden, params["conv2_kernel"], (2, 2), "SAME", dimension_numbers=dimension_numbers
        )
        hidden = jax.nn.leaky_relu(hidden + params["conv2_bias"], LEAKY_SLOPE)  # (B, 2, 2, 64)
        hidden = hidden.reshape(hidden.shape[0], -1)  # (B, 256)
        return hidden @ params["dense_kernel"] + params["dense_bias"]  # (B, 1)

    generator, discriminator = initial_parameters(seed)
    step = jax_gan_step(generate, discriminate, generator, discriminator, LATENT_DIM, seed)
    return epoch_runner(step, images, batch_size, seed)


def handwritten_torch(images, batch_size: int, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = nn.Sequential(
        nn.Linear(LATENT_DIM, 2 * 2 * 64),
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Unflatten(1, (64, 2, 2)),  # (B, 64, 2, 2)
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # (B, 32, 4, 4)
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # (B, 1, 8, 8)
        nn.Tanh(),
    ).to(device)
    discriminator = nn.Sequential(
        nn.Conv2d(1, 32, 4, stride=2, padding=1),  # (B, 32, 4, 4)
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Conv2d(32, 64, 4, stride=2, padding=1),  # (B, 64, 2, 2)
        nn.LeakyReLU(LEAKY_SLOPE),
        nn.Flatten(),  # (B, 256)
        nn.Linear(2 * 2 * 64, 1),
    ).to(device)
    train_step = torch_gan_step(generator, discriminator, LATENT_DIM, device)
    return epoch_runner(
        train_step,
        images,
        batch_size,
        seed,
        lambda batch: torch.from_numpy(batch).to(device).permute(0, 3, 1, 2),  # (B, 1, 8, 8)
    )


# ----------------------------------------------------------------------------------------------
# Driver.
# ----------------------------------------------------------------------------------------------


def benchmark(
    backend: str,
    epochs: int,
    batch_size: int,
    repeats: int,
    seed: int = 0,
    jit_compile="auto",
    steps_per_execution: int = 1,
    fused_steps=None,
) -> dict:
    """Measures one backend in this process; KERAS_BACKEND must already be ``backend``."""
    import keras

    from dlkit.data import digits
    from dlkit.training import list_devices

    if keras.backend.backend() != backend:
        raise ValueError(
            f"Expected KERAS_BACKEND={backend!r} before keras is imported. "
            f"Received: keras backend {keras.backend.backend()!r}"
        )
    images, _ = digits("train", value_range=(-1.0, 1.0))  # (1437, 8, 8, 1)
    model = dlkit_dcgan(seed, jit_compile, steps_per_execution)
    if backend == "tensorflow":
        model.make_train_function()  # resolves jit_compile="auto" the way fit does
        handwritten = handwritten_tensorflow(images, batch_size, seed, bool(model.jit_compile))
    elif backend == "jax":
        handwritten = handwritten_jax(images, batch_size, seed)
    else:
        handwritten = handwritten_torch(images, batch_size, seed)

    # Both sides alternate, so that a burst of load from another process hits both alike; each
    # side's fastest epoch is the one least disturbed by it.
    dlkit_seconds, handwritten_seconds = [], []
    for _ in range(repeats):
        dlkit_seconds += time_dlkit(model, images, epochs, batch_size, fused_steps=fused_steps)
        handwritten_seconds += handwritten(epochs)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    dlkit_wall, dlkit_cpu = (np.array(column) for column in zip(*dlkit_seconds))
    handwritten_wall, handwritten_cpu = (np.array(column) for column in zip(*handwritten_seconds))
    dlkit_rate = steps_per_epoch / float(dlkit_wall.min())
    handwritten_rate = steps_per_epoch / float(handwritten_wall.min())
    ratio = handwritten_rate / dlkit_rate
    devices = list_devices()
    return {
        "backend": backend,
        "device": next((d for d in devices if not d.startswith("cpu")), devices[0]),
        "batch_size": batch_size,
        "steps_per_execution": steps_per_execution,
        "fused_steps": fused_steps,
        "steps_timed": steps_per_epoch * len(dlkit_wall),
        "dlkit_steps_per_s": round(dlkit_rate, 1),
        "handwritten_steps_per_s": round(handwritten_rate, 1),
        "overhead_ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO[backend],
        "meets_target": ratio <= TARGET_RATIO[backend],
        "statistic": "fastest timed epoch of each side",
        "dlkit_median_steps_per_s": round(steps_per_epoch / float(np.median(dlkit_wall)), 1),
        "handwritten_median_steps_per_s": round(
            steps_per_epoch / float(np.median(handwritten_wall)), 1
        ),
        # Process CPU time (all threads) per step, least over the timed epochs: barely changed
        # by other processes competing for the cores, unlike the wall-clock rates above.
        "dlkit_cpu_ms_per_step": round(1e3 * float(dlkit_cpu.min()) / steps_per_epoch, 2),
        "handwritten_cpu_ms_per_step": round(
            1e3 * float(handwritten_cpu.min()) / steps_per_epoch, 2
        ),
        "cpu_overhead_ratio": round(float(dlkit_cpu.min() / handwritten_cpu.min()), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_backend_arguments(parser)
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="TensorFlow: XLA-compile both sides (fit's default on a CPU is no XLA).",
    )
    parser.add_argument(
        "--epochs", type=int, default=6, help="Epochs per run; the first is warm-up (default 6)."
    )
    parser.add_argument("--batch-size", type=int, default=64, help="Batch size (default 64).")
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="dlkit side: batches per compiled call of fit (Keras' compile argument; default 1). "
        "The hand-written loops always run one step per call.",
    )
    parser.add_argument(
        "--fused-steps",
        default=None,
        help="dlkit side: fit's fused_steps (an integer or 'auto'): the data on the device and "
        "that many steps per compiled call (dlkit.training.fused). Default: Keras's streaming "
        "path.",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="Runs of each side, alternating; the fastest epoch counts (default 3).",
    )
    add_save_argument(parser)
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.batch_size < 1 or args.repeats < 1 or args.steps_per_execution < 1:
        parser.error(
            "Expected --epochs >= 2, --batch-size >= 1, --repeats >= 1 and "
            "--steps-per-execution >= 1."
        )
    arguments = [
        f"--epochs={args.epochs}",
        f"--batch-size={args.batch_size}",
        f"--repeats={args.repeats}",
        f"--steps-per-execution={args.steps_per_execution}",
    ]
    arguments += [f"--fused-steps={args.fused_steps}"] if args.fused_steps else []
    arguments += ["--jit-compile"] if args.jit_compile else []
    fused_steps = args.fused_steps
    if fused_steps not in (None, "auto"):
        fused_steps = int(fused_steps)
    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "steps_per_execution": args.steps_per_execution,
        "jit_compile": args.jit_compile,
        "fused_steps": fused_steps,
    }
    # The measuring process is pinned to one core, with the backend's thread settings, before
    # keras is imported.
    run_per_backend(
        __file__,
        args,
        arguments,
        settings,
        lambda: benchmark(
            args.backend,
            args.epochs,
            args.batch_size,
            args.repeats,
            jit_compile=True if args.jit_compile else "auto",
            steps_per_execution=args.steps_per_execution,
            fused_steps=fused_steps,
        ),
    )


if __name__ == "__main__":
    main()
