import keras
import numpy as np
import pytest

from dlkit import distribute

BACKEND = keras.backend.backend()


@pytest.mark.skipif(BACKEND != "torch", reason="the torch backend has no engine")
def test_torch_is_refused_with_what_each_backend_supports():
    with pytest.raises(ValueError, match="no multi-device training engine for the torch") as error:
        with distribute.scope():
            pass
    assert "MirroredStrategy" in str(error.value) and "DataParallel" in str(error.value)


@pytest.mark.skipif(BACKEND == "torch", reason="no engine on torch")
def test_model_built_in_the_scope_trains_and_matches_plain_training():
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")

    def train(context):
        keras.utils.set_random_seed(0)
        with context:
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
            history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
        return history.history["loss"], model.get_weights()

    import contextlib

    plain_losses, plain_weights = train(contextlib.nullcontext())
    losses, weights = train(distribute.scope())
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-5)
    for expected, received in zip(plain_weights, weights):
        np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-6)
    assert losses[-1] < 0.1 * losses[0]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TF strategies")
def test_tensorflow_scope_is_a_strategy_and_rejects_jax_arguments():
    import tensorflow as tf

    with distribute.scope() as strategy:
        assert isinstance(strategy, tf.distribute.MirroredStrategy)
        assert tf.distribute.get_strategy() is strategy
    with pytest.raises(ValueError, match="TF_CONFIG"):
        with distribute.scope(coordinator_address="127.0.0.1:1234"):
            pass


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution")
def test_jax_scope_sets_and_restores_the_distribution():
    assert keras.distribution.distribution() is None
    with distribute.scope() as distribution:
        assert isinstance(distribution, keras.distribution.DataParallel)
        assert keras.distribution.distribution() is distribution
    assert keras.distribution.distribution() is None


def test_bad_timeout_is_rejected():
    with pytest.raises(ValueError, match="connect_timeout=0"):
        with distribute.scope(connect_timeout=0):
            pass
