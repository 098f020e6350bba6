"""Trains ToyGAN and a compiled Keras model with ``fit``, printing losses and weights as JSON.

Run as a script in a fresh JAX process, one per role:

- ``python multi_process_fit.py single``: one process, no distribution (the reference).
- ``python multi_process_fit.py worker``: one of several processes described by
  ``DLKIT_COORDINATOR_ADDRESS``, ``DLKIT_NUM_PROCESSES`` and ``DLKIT_PROCESS_ID``; each trains
  under ``DataParallel`` over the devices of all processes (``XLA_FLAGS=
  --xla_force_host_platform_device_count=N`` gives each process N CPU devices) and feeds its
  share of every global batch.
- ``python multi_process_fit.py connect``: only ``initialize`` with ``DLKIT_CONNECT_TIMEOUT``,
  for the tests of missing processes.

``DLKIT_TEST_CLOSED_GATES=keras,jax`` closes the version gates of those packages' private APIs
(``dlkit.training._versions``), for the run to take the public paths.
"""

import json
import os
import random
import sys

GLOBAL_BATCH_SIZE = 32
NUM_SAMPLES = 320  # 10 global batches per epoch


def main(role):
    from dlkit.distribute import _jax as distribute_jax
    from dlkit.training import _versions

    for package in filter(None, os.environ.get("DLKIT_TEST_CLOSED_GATES", "").split(",")):
        _versions.CHECKED_VERSIONS[package] = ("0.0.1", "0.0.2")

    if role == "connect":
        distribute_jax.initialize(connect_timeout=float(os.environ["DLKIT_CONNECT_TIMEOUT"]))
        return
    # Before any JAX computation: the devices of all processes are fixed here.
    multi_process = role == "worker" and distribute_jax.initialize(connect_timeout=30.0)
    initialized_again = distribute_jax.initialize()  # a second call only reports the mode
    # Python's random is seeded with the global seed the processes agreed on.
    draw_after_initialize = random.random()

    import jax
    import keras
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "training"))
    from toy_models import ToyGAN, gan_optimizers, mixture_samples

    # Every process holds the same global data; noise comes with it, so all runs see exactly
    # the same batches.
    real = mixture_samples(NUM_SAMPLES)
    noise = np.random.default_rng(1).standard_normal((NUM_SAMPLES, 4)).astype("float32")
    features = np.random.default_rng(2).standard_normal((NUM_SAMPLES, 3)).astype("float32")
    targets = np.tanh(features @ np.array([[1.0], [-2.0], [0.5]], "float32"))

    def make_regressor():
        return keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
        )

    keras.utils.set_random_seed(0)
    gan_weights = ToyGAN(k=2).get_weights()
    regressor_weights = make_regressor().get_weights()

    if multi_process:
        distribution = distribute_jax.make_distribution()
        keras.distribution.set_distribution(distribution)

        def share(array):
            return distribute_jax.local_share(array, GLOBAL_BATCH_SIZE)

        batch_size = GLOBAL_BATCH_SIZE // jax.process_count()
    else:

        def share(array):
            return array

        batch_size = GLOBAL_BATCH_SIZE

    gan = ToyGAN(k=2)
    gan.set_weights(gan_weights)
    gan.compile(optimizers=gan_optimizers())
    gan_history = gan.fit(
        share(real), share(noise), batch_size=batch_size, epochs=2, shuffle=False, verbose=0
    )

    regressor = make_regressor()
    regressor.set_weights(regressor_weights)
    regressor.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    regressor_history = regressor.fit(
        share(features), share(targets), batch_size=batch_size, epochs=2, shuffle=False, verbose=0
    )

    result = {
        "process_id": jax.process_index(),
        "num_processes": jax.process_count(),
        "num_devices": len(keras.distribution.list_devices()),
        "num_local_devices": jax.local_device_count(),
        "initialized_again": initialized_again,
        "draw_after_initialize": draw_after_initialize,
        "gan": {
            "history": gan_history.history,
            "weights": [w.tolist() for w in gan.get_weights()],
        },
        "regressor": {
            "history": regressor_history.history,
            "weights": [w.tolist() for w in regressor.get_weights()],
        },
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
