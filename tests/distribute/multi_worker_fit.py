"""Trains a compiled Keras model and ToyGAN with fit, alone or as one worker of a cluster.

``python multi_worker_fit.py single`` trains both models in this process without a strategy.
``python multi_worker_fit.py worker INDEX ADDRESS...`` sets ``TF_CONFIG`` for worker ``INDEX`` of
the cluster of ``ADDRESS``es (``127.0.0.1:port``) before TensorFlow is imported (the
multi-worker strategy reads it at start-up) and trains both models under
``dlkit.distribute._tensorflow.make_strategy()``. Either way the script prints
``RESULT <json>`` with the replica count and each model's ``fit`` history and final weights.

Both modes see exactly the same batches: the data is a ``tf.data`` pipeline batched with the
global batch size, with auto-sharding by DATA. Under the multi-worker strategy ``fit`` splits
each global batch into per-replica batches and DATA sharding hands them out in turn, so worker
0 trains on the first half of every global batch and worker 1 on the second half, in order.
(With auto-sharding OFF each worker would read the whole dataset and both would train on the
same halves, which was checked to diverge from the single process; FILE sharding needs files.)
The gradients of the halves are summed across workers, each scaled by 1/2, which is the
gradient of the single-process batch. ToyGAN's noise comes with the data, as in
tests/training/distributed_fit.py, so no random draw differs between the runs.
"""

import contextlib
import importlib.util
import json
import os
import sys
from pathlib import Path

TOY_MODELS = Path(__file__).resolve().parents[1] / "training" / "toy_models.py"
NUM_SAMPLES = 256
GLOBAL_BATCH_SIZE = 32
EPOCHS = 2


def load_toy_models():
    spec = importlib.util.spec_from_file_location("toy_models", TOY_MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    mode = argv[0]
    if mode == "worker":
        index, addresses = int(argv[1]), argv[2:]
        os.environ["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        )
    elif mode != "single":
        raise SystemExit(f"unknown mode {mode!r}; expected 'single' or 'worker'")

    import tensorflow as tf

    from dlkit.distribute._tensorflow import make_strategy

    # The multi-worker strategy must exist before any other TensorFlow operation runs.
    strategy = make_strategy(connect_timeout=60.0) if mode == "worker" else None
    scope = strategy.scope if strategy is not None else contextlib.nullcontext

    import keras
    import numpy as np

    toy_models = load_toy_models()

    def dataset(*arrays):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return (
            tf.data.Dataset.from_tensor_slices(arrays)
            .batch(GLOBAL_BATCH_SIZE, drop_remainder=True)
            .with_options(options)
        )

    def make_regressor():
        return keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
        )

    rng = np.random.default_rng(0)
    x = rng.standard_normal((NUM_SAMPLES, 4)).astype("float32")
    y = np.sin(x @ np.array([[1.0], [-2.0], [0.5], [1.5]], "float32"))
    real = toy_models.mixture_samples(NUM_SAMPLES)
    noise = rng.standard_normal((NUM_SAMPLES, 4)).astype("float32")

    # Built outside any strategy scope with a fixed seed: the same initial weights everywhere.
    keras.utils.set_random_seed(0)
    regressor_weights = make_regressor().get_weights()
    gan_weights = toy_models.ToyGAN(k=2).get_weights()

    def train(make_model, weights, compile_arguments, data):
        # Model and optimizers are created in the scope, so that their variables are mirrored.
        with scope():
            model = make_model()
            model.set_weights(weights)
            model.compile(**compile_arguments())
        history = model.fit(data, epochs=EPOCHS, shuffle=False, verbose=0)
        return {
            "history": history.history,
            "weights": [w.tolist() for w in toy_models.weights_of(model)],
        }

    result = {
        "num_replicas": strategy.num_replicas_in_sync if strategy is not None else 1,
        "plain": train(
            make_regressor,
            regressor_weights,
            lambda: {
                "optimizer": keras.optimizers.Adam(0.01),
                "loss": "mse",
                "metrics": ["mean_absolute_error"],
            },
            dataset(x, y),
        ),
        "gan": train(
            lambda: toy_models.ToyGAN(k=2),
            gan_weights,
            lambda: {"optimizers": toy_models.gan_optimizers()},
            dataset(real, noise),
        ),
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
