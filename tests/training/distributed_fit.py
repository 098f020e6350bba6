"""Trains ToyGAN on one device and on two, printing both runs' losses and weights as JSON.

Run as a script in a fresh process (the device count is fixed at start-up):
``KERAS_BACKEND=tensorflow python distributed_fit.py mirrored`` (two logical CPUs) or
``XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax python distributed_fit.py
data_parallel``.
"""

import contextlib
import json
import os
import sys


def main(engine):
    if engine == "mirrored":
        import tensorflow as tf

        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    import keras
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from toy_models import ToyGAN, gan_optimizers, mixture_samples

    # Noise comes with the data, so both runs see exactly the same batches.
    real = mixture_samples(512)
    noise = np.random.default_rng(1).standard_normal((512, 4)).astype("float32")
    keras.utils.set_random_seed(0)
    initial_weights = ToyGAN(k=2).get_weights()

    def train(scope):
        with scope:
            gan = ToyGAN(k=2)
            gan.set_weights(initial_weights)
            gan.compile(optimizers=gan_optimizers())
        history = gan.fit(real, noise, batch_size=32, epochs=2, shuffle=False, verbose=0)
        return {"history": history.history, "weights": [w.tolist() for w in gan.get_weights()]}

    single = train(contextlib.nullcontext())
    if engine == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        num_devices = strategy.num_replicas_in_sync
        distributed = train(strategy.scope())
    elif engine == "data_parallel":
        devices = keras.distribution.list_devices("cpu")
        num_devices = len(devices)
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        distributed = train(contextlib.nullcontext())
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    result = {"num_devices": num_devices, "single": single, "distributed": distributed}
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
