"""``fit`` on the fused path (``dlkit.training.fused``): device-resident data, K steps per call."""

import logging

import keras
import numpy as np
import pytest

from dlkit.models import (
    VAE,
    Autoencoder,
    build_dense_autoencoder,
    build_digits_vae_decoder,
    build_digits_vae_encoder,
)
from dlkit.training import AlternatingModel, Update, fused_fit
from dlkit.training.fused import FusedRunner
from tests.training.toy_models import ToyGAN


def _gan(seed=0):
    keras.utils.set_random_seed(seed)
    model = ToyGAN(seed=seed)
    model.compile(
        optimizers={
            "discriminator": keras.optimizers.Adam(1e-3),
            "generator": keras.optimizers.Adam(1e-3),
        }
    )
    return model


def _real(rows=100, seed=0):
    return np.random.default_rng(seed).normal(3.0, 0.5, (rows, 1)).astype("float32")


def _weights(model):
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def _iterations(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


@pytest.mark.parametrize("steps", [3, 8, "auto"])
def test_every_k_draws_the_same_batches_and_noise_as_one_step_per_call(steps):
    # 100 rows in batches of 16: six full batches and a partial one of 4, two epochs.
    reference = _gan()
    reference.fit(_real(), batch_size=16, epochs=2, fused_steps=1, verbose=0)
    model = _gan()
    history = model.fit(_real(), batch_size=16, epochs=2, fused_steps=steps, verbose=0)
    assert _iterations(model) == _iterations(reference) == 14
    for expected, actual in zip(_weights(reference), _weights(model)):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert sorted(history.history) == ["discriminator_loss", "generator_loss"]
    assert len(history.history["generator_loss"]) == 2


def test_fused_training_learns_like_the_streaming_path():
    # Another shuffle and other noise, the same learning: the generator's samples move from
    # about 0 to the data's mean of 3 on both paths.
    for fused_steps in (None, 8):
        model = _gan()
        model.fit(_real(512), batch_size=32, epochs=40, fused_steps=fused_steps, verbose=0)
        samples = keras.ops.convert_to_numpy(model(np.random.default_rng(1).normal(size=(512, 4))))
        assert abs(float(samples.mean()) - 3.0) < 0.6, (fused_steps, float(samples.mean()))


def test_keras_trained_models_take_the_fused_path_with_targets_and_validation():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(size=(90, 6)).astype("float64")  # cast to floatx
    results = {}
    for steps in (1, 4):
        keras.utils.set_random_seed(0)
        model = Autoencoder(*build_dense_autoencoder((6,), latent_dim=2, hidden_units=(8,)))
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = model.fit(
            x, batch_size=10, epochs=3, validation_split=0.2, fused_steps=steps, verbose=0
        )
        # 72 training rows (Keras's split: the last 20% validate) in batches of 10: 8 steps.
        assert _iterations(model) == 24
        assert "val_loss" in history.history
        results[steps] = (_weights(model), history.history["val_loss"])
    for expected, actual in zip(results[1][0], results[4][0]):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[4][1], results[1][1], rtol=1e-5)
    assert results[4][1][-1] < results[4][1][0]  # it learns


def test_vae_fused_and_any_compiled_keras_model_through_fused_fit():
    keras.utils.set_random_seed(0)
    vae = VAE(build_digits_vae_encoder(2), build_digits_vae_decoder(2), seed=0)
    vae.compile(optimizer="adam")
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype("float32")
    vae.fit(images, batch_size=16, fused_steps=2, verbose=0)
    assert _iterations(vae) == 4

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.default_rng(0).normal(size=(256, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32") + 0.25
    history = fused_fit(model, x, y, batch_size=32, epochs=20, verbose=0)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in model.weights)
    np.testing.assert_allclose(kernel[:, 0], [1.0, -2.0, 0.5], atol=1e-2)
    np.testing.assert_allclose(bias, [0.25], atol=1e-2)
    assert history.history["loss"][-1] < 1e-4


def test_callbacks_hear_every_k_steps_and_backup_resumes_the_epoch_count(tmp_path):
    seen = []

    class Batches(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, sorted(logs)))

    model = _gan()
    model.fit(_real(), batch_size=16, epochs=1, fused_steps=3, callbacks=[Batches()], verbose=0)
    # 7 steps in calls of 3: Keras reports begin + K - 1 for each call, the last one too.
    assert [batch for batch, _ in seen] == [2, 5, 8]
    assert seen[0][1] == ["discriminator_loss", "generator_loss"]

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model = _gan()
    with pytest.raises(KeyboardInterrupt):
        model.fit(_real(), batch_size=16, epochs=4, fused_steps=4, callbacks=[backup, Interrupt()])
    resumed = _gan(seed=5)
    history = resumed.fit(
        _real(), batch_size=16, epochs=4, fused_steps=4, callbacks=[backup], verbose=0
    )
    # Epochs 0 and 1 were saved; the resumed run trains epochs 2 and 3 from their weights.
    assert len(history.history["generator_loss"]) == 2
    assert _iterations(resumed) == 28


def test_other_inputs_keep_the_streaming_path_and_large_data_says_so(caplog):
    import tensorflow as tf

    model = _gan()
    dataset = tf.data.Dataset.from_tensor_slices(_real()).batch(16)
    model.fit(dataset, epochs=1, fused_steps=4, verbose=0)
    assert _iterations(model) == 7
    assert getattr(model, "_dlkit_fused_runner", None) is None

    model = _gan()
    with caplog.at_level(logging.WARNING, logger="dlkit.training.fused"):
        model.fit(_real(), batch_size=16, fused_steps=4, device_data_limit=100, verbose=0)
    assert _iterations(model) == 7
    assert any("exceed device_data_limit=100" in record.message for record in caplog.records)


def test_the_runner_places_floats_in_floatx_and_gathers_stacked_batches():
    model = _gan()
    x = np.arange(10, dtype="float64").reshape(10, 1)
    runner = FusedRunner(model, x, None, batch_size=4, steps=2, shuffle=False)
    assert keras.backend.standardize_dtype(runner.x.dtype) == keras.config.floatx()
    runner.new_epoch()
    stacks = [keras.ops.convert_to_numpy(stack) for stack in runner.call_batches()]
    assert [stack.shape for stack in stacks] == [(2, 4, 1)]
    np.testing.assert_array_equal(stacks[0].ravel(), np.arange(8))
    stacks = [keras.ops.convert_to_numpy(stack) for stack in runner.call_batches()]
    assert [stack.shape for stack in stacks] == [(1, 2, 1)]  # the partial last batch
    np.testing.assert_array_equal(stacks[0].ravel(), [8, 9])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"fused_steps": 0}, "fused_steps=0"),
        ({"fused_steps": 2.5}, "fused_steps=2.5"),
        ({"fused_steps": "many"}, "fused_steps='many'"),
        ({"fused_steps": True}, "fused_steps=True"),
        ({"device_data_limit": -1}, "device_data_limit=-1"),
        ({"device_data_limit": 1.5}, "device_data_limit=1.5"),
    ],
)
def test_bad_settings_name_the_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        _gan().fit(_real(), batch_size=16, **{"fused_steps": 2, **arguments}, verbose=0)


def test_inputs_with_different_batch_dimensions_name_both():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"`x` with 10 rows, `y` with 9 rows"):
        fused_fit(model, np.ones((10, 3), "float32"), np.ones((9, 1), "float32"), verbose=0)
    with pytest.raises(TypeError, match="steps_per_exec"):
        fused_fit(model, np.ones((10, 3), "float32"), steps_per_exec=2)


@pytest.mark.parametrize("value", [0, -2, 1.5, "4"])
def test_compile_rejects_steps_per_execution_that_is_not_a_positive_integer(value):
    with pytest.raises(ValueError, match=f"steps_per_execution={value!r}"):
        ToyGAN().compile(
            optimizers={
                "discriminator": keras.optimizers.Adam(),
                "generator": keras.optimizers.Adam(),
            },
            steps_per_execution=value,
        )


class _Pair(AlternatingModel):
    """Two scalars pulled towards the data, one per update: the losses see the data directly
    (no ReLU, which some CPU kernels turn from NaN to 0)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a = keras.Variable(1.0)
        self.b = keras.Variable(1.0)

    def updates(self):
        return [
            Update("first", [self.a], lambda x: keras.ops.mean((self.a - x) ** 2)),
            Update("second", [self.b], lambda x: keras.ops.mean((self.b + x) ** 2), 2),
        ]


@pytest.mark.parametrize("fused_steps", [None, 4])
def test_a_non_finite_loss_stops_fit_naming_the_update_and_step(fused_steps, tmp_path):
    def pair():
        model = _Pair()
        model.compile(
            optimizers={"first": keras.optimizers.SGD(0.1), "second": keras.optimizers.SGD(0.1)}
        )
        return model

    data = np.full((100, 1), 3.0, "float32")
    data[53] = np.nan  # in the sixth batch of 10, unshuffled
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    pattern = r"update 'first' became NaN or infinite at step 6 of epoch 1"
    with pytest.raises(FloatingPointError, match=pattern):
        pair().fit(
            data,
            batch_size=10,
            epochs=2,
            shuffle=False,
            fused_steps=fused_steps,
            callbacks=[backup],
            verbose=0,
        )
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())
    # A finite run is not stopped, with or without validation; the second update's two
    # repetitions per step count as one step.
    history = pair().fit(
        np.full((100, 1), 3.0, "float32"),
        batch_size=10,
        epochs=2,
        validation_split=0.2,
        fused_steps=fused_steps,
        verbose=0,
    )
    assert len(history.history["val_second_loss"]) == 2
    data[53] = 3.0
    data[97] = np.inf
    with pytest.raises(FloatingPointError, match=r"update 'first' became .* at step 10 of"):
        pair().fit(data, batch_size=10, shuffle=False, fused_steps=fused_steps, verbose=0)
