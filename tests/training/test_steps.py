import warnings

import keras
import numpy as np
import pytest

from dlkit.training import compile_train_steps


def regression_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_fused_steps_equal_consecutive_train_on_batch_calls():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 16, 3)).astype("float32")
    y = rng.normal(size=(6, 16, 2)).astype("float32")
    stepwise, fused = regression_model(), regression_model()
    losses = [float(stepwise.train_on_batch(x[k], y[k])) for k in range(6)]
    logs = compile_train_steps(fused)(x, y)
    for a, b in zip(weights(stepwise), weights(fused)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The loss tracker averages the K steps' losses.
    assert logs["loss"] == pytest.approx(np.mean(losses), rel=1e-4)
    assert int(keras.ops.convert_to_numpy(fused.optimizer.iterations)) == 6


def test_fused_steps_take_structured_targets_and_trace_once():
    class TwoTargets(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)[:, 0]

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            y = {key: keras.ops.convert_to_tensor(value) for key, value in y.items()}
            return keras.ops.mean(y["weights"] * keras.ops.square(y_pred - y["targets"]))

    model = TwoTargets()
    model(np.zeros((1, 2), "float32"))
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    steps = compile_train_steps(model)
    x = np.ones((5, 4, 2), "float32")
    y = {"targets": np.full((5, 4), 3.0, "float32"), "weights": np.ones((5, 4), "float32")}
    first = steps(x, y)["loss"]
    later = steps(x, y)["loss"]
    assert later < first  # the model moves towards the targets
    if keras.backend.backend() != "torch":
        assert steps.num_traces == 1


def test_rejects_unequal_stacks_and_uncompiled_models():
    model = regression_model()
    steps = compile_train_steps(model)
    with pytest.raises(ValueError, match=r"same length K.*Received: leading axes"):
        steps(np.ones((3, 4, 3), "float32"), np.ones((2, 4, 2), "float32"))
    bare = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"compiled with an optimizer.*Received"):
        compile_train_steps(bare)
    with pytest.raises(TypeError, match=r"Received: model="):
        compile_train_steps("model")


def test_public_build_without_the_private_api_trains_the_same(version_gates, monkeypatch):
    """Keras's private ``_symbolic_build`` builds the model, loss and metrics while its
    version is checked; outside it one warning, and the public build gives the same steps:
    the dropout's seed generator and the metrics are left as they were."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 16, 3)).astype("float32")
    y = rng.normal(size=(4, 16, 2)).astype("float32")

    def run():
        keras.utils.set_random_seed(4)
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(8, activation="tanh"),
                keras.layers.Dropout(0.25, seed=3),
                keras.layers.Dense(2),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
        logs = compile_train_steps(model)(x, y)
        return model, logs

    symbolic_builds = []
    original = keras.Model._symbolic_build
    monkeypatch.setattr(
        keras.Model,
        "_symbolic_build",
        lambda self, *a, **k: symbolic_builds.append(1) or original(self, *a, **k),
    )
    private, private_logs = run()
    assert symbolic_builds == [1]  # the gate is open: Keras's private build
    version_gates.close("keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        public, public_logs = run()
    assert symbolic_builds == [1]
    assert [w for w in version_gates.warnings(caught) if "model build" in str(w.message)]
    assert len([w for w in caught if "compile_train_steps model build" in str(w.message)]) == 1
    for a, b in zip(weights(private), weights(public)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert public_logs == pytest.approx(private_logs, rel=1e-5)
