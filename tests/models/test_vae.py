"""Tests of dlkit.models.vae: layer checks, the KL metric, learning, sampling, saving, errors."""

import os

import keras
import numpy as np
import pytest

from dlkit.data.digits import digits
from dlkit.models.vae import (
    VAE,
    ConditionalVAE,
    build_digits_cvae_decoder,
    build_digits_cvae_encoder,
    build_digits_vae_decoder,
    build_digits_vae_encoder,
)
from dlkit.testing import run_layer_test


@pytest.fixture(scope="module")
def train_digits():
    return digits("train")


@pytest.fixture(scope="module")
def test_digits():
    return digits("test")


def make_vae(latent_dim=2, **kwargs):
    kwargs.setdefault("seed", 0)
    return VAE(build_digits_vae_encoder(latent_dim), build_digits_vae_decoder(latent_dim), **kwargs)


def make_cvae(latent_dim=2, **kwargs):
    kwargs.setdefault("seed", 0)
    return ConditionalVAE(
        build_digits_cvae_encoder(latent_dim),
        build_digits_cvae_decoder(latent_dim),
        num_classes=10,
        **kwargs,
    )


def test_vae_layer_checks():
    # Inference calls decode the mean code, so the config and .keras round trips compare
    # deterministic outputs; the training check samples.
    run_layer_test(
        VAE,
        {
            "encoder": build_digits_vae_encoder(3),
            "decoder": build_digits_vae_decoder(3),
            "seed": 1,
        },
        input_data=np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32"),
        expected_output_shape=(4, 8, 8, 1),
        expected_num_trainable_weights=10,
    )


def test_cvae_layer_checks():
    images = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    labels = np.array([0, 3, 9, 3], "int32")
    run_layer_test(
        ConditionalVAE,
        {
            "encoder": build_digits_cvae_encoder(3),
            "decoder": build_digits_cvae_decoder(3),
            "num_classes": 10,
            "seed": 1,
        },
        input_data=[(images, labels)],
        expected_output_shape=(4, 8, 8, 1),
        expected_num_trainable_weights=10,
    )


def test_kl_metric_matches_the_closed_form(train_digits):
    images = train_digits[0][:64]
    model = make_vae(latent_dim=3)
    model.compile(keras.optimizers.Adam(1e-3))
    logs = model.evaluate(images, batch_size=64, verbose=0, return_dict=True)
    mean, log_variance = (keras.ops.convert_to_numpy(t) for t in model.encode(images))
    expected = np.mean(0.5 * np.sum(np.exp(log_variance) + mean**2 - 1.0 - log_variance, axis=-1))
    np.testing.assert_allclose(logs["kl_loss"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        logs["loss"], logs["reconstruction_loss"] + logs["kl_loss"], rtol=1e-5
    )


def test_beta_weighs_the_kl_term(train_digits):
    images = train_digits[0][:64]
    model = make_vae(latent_dim=3, beta=4.0)
    model.compile(keras.optimizers.Adam(1e-3))
    logs = model.evaluate(images, batch_size=64, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        logs["loss"], logs["reconstruction_loss"] + 4.0 * logs["kl_loss"], rtol=1e-5
    )


@pytest.mark.slow
def test_held_out_elbo_improves_on_digits(train_digits, test_digits):
    keras.utils.set_random_seed(0)
    images, test_images = train_digits[0], test_digits[0]
    model = make_vae(latent_dim=2)
    model.compile(keras.optimizers.Adam(3e-3))
    untrained = model.evaluate(
        test_images, batch_size=len(test_images), verbose=0, return_dict=True
    )["loss"]
    history = model.fit(
        images,
        epochs=5,
        batch_size=32,
        validation_data=(test_images,),
        validation_batch_size=len(test_images),
        verbose=0,
    )
    elbo = -np.array([untrained, *history.history["val_loss"]])  # before, after each epoch
    kl = np.array(history.history["val_kl_loss"])  # after each epoch
    print("held-out ELBO per epoch", np.round(elbo, 2), "KL", np.round(kl, 3))
    assert np.all(np.isfinite(elbo)) and np.all(np.isfinite(kl))
    assert elbo[1] > elbo[0] + 5.0 and elbo[-1] > elbo[1] + 1.0
    # The code is used: no posterior collapse onto the prior.
    assert kl[-1] > 0.5
    samples = keras.ops.convert_to_numpy(model.sample(16))
    assert samples.shape == (16, 8, 8, 1)
    assert np.all((samples >= 0) & (samples <= 1))


def test_sample_is_seeded_and_fresh_each_call():
    first, second = make_vae(seed=3), make_vae(seed=3)
    second.set_weights(first.get_weights())
    samples = keras.ops.convert_to_numpy(first.sample(6))
    np.testing.assert_allclose(samples, keras.ops.convert_to_numpy(second.sample(6)))
    assert not np.allclose(samples, keras.ops.convert_to_numpy(first.sample(6)))


def test_gaussian_reconstruction_trains(train_digits):
    keras.utils.set_random_seed(0)
    model = make_vae(latent_dim=2, reconstruction="gaussian")
    model.compile(keras.optimizers.Adam(3e-3))
    history = model.fit(train_digits[0], epochs=2, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.isfinite(history.history["kl_loss"]).all()


def test_vae_keras_round_trip_after_training(train_digits, tmp_path):
    keras.utils.set_random_seed(0)
    images = train_digits[0]
    model = make_vae(latent_dim=2)
    model.compile(keras.optimizers.Adam(3e-3))
    model.fit(images, epochs=1, batch_size=64, verbose=0)
    path = os.path.join(tmp_path, "vae.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    batch = images[:16]
    for received, expected in zip(restored.encode(batch), model.encode(batch)):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(received), keras.ops.convert_to_numpy(expected)
        )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.reconstruct(batch)),
        keras.ops.convert_to_numpy(model.reconstruct(batch)),
    )
    assert restored.beta == model.beta and restored.reconstruction == model.reconstruction
    history = restored.fit(images, epochs=1, batch_size=64, verbose=0)
    assert set(history.history) == {"loss", "reconstruction_loss", "kl_loss"}
    assert np.isfinite(history.history["loss"]).all()


def test_cvae_trains_on_pairs_and_round_trips(train_digits, tmp_path):
    keras.utils.set_random_seed(0)
    images, labels = train_digits
    model = make_cvae(latent_dim=2)
    model.compile(keras.optimizers.Adam(3e-3))
    history = model.fit((images, labels), epochs=2, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    one_hot = np.eye(10, dtype="float32")[labels]
    model.fit((images, one_hot), epochs=1, batch_size=64, verbose=0)
    path = os.path.join(tmp_path, "cvae.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    batch = (images[:8], labels[:8])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.reconstruct(batch)),
        keras.ops.convert_to_numpy(model.reconstruct(batch)),
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.sample(labels[:8])),
        keras.ops.convert_to_numpy(model.sample(labels[:8])),
    )


@pytest.mark.slow
def test_cvae_samples_follow_the_requested_label(train_digits):
    keras.utils.set_random_seed(0)
    images, labels = train_digits
    model = make_cvae(latent_dim=2)
    model.compile(keras.optimizers.Adam(3e-3))
    model.fit((images, labels), epochs=6, batch_size=32, verbose=0)
    requested = np.repeat(np.arange(10), 20)
    samples = keras.ops.convert_to_numpy(model.sample(requested))
    sample_means = samples.reshape(10, 20, 64).mean(axis=1)  # (10, 64)
    real_means = np.stack([images[labels == k].reshape(-1, 64).mean(axis=0) for k in range(10)])
    correlation = np.corrcoef(sample_means, real_means)[:10, 10:]  # (samples, real)
    print("CVAE label correlation", np.round(np.diag(correlation), 3))
    assert np.sum(correlation.argmax(axis=1) == np.arange(10)) >= 9
    assert np.median(np.diag(correlation)) > 0.9


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"beta": -1.0}, "beta"), ({"reconstruction": "poisson"}, "reconstruction")],
)
def test_vae_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        make_vae(**kwargs)


@pytest.mark.parametrize(
    "builder",
    [
        build_digits_vae_encoder,
        build_digits_vae_decoder,
        build_digits_cvae_encoder,
        build_digits_cvae_decoder,
    ],
)
def test_builders_reject_bad_latent_dim(builder):
    with pytest.raises(ValueError, match="Received: latent_dim=0"):
        builder(0)


def test_vae_rejects_mismatched_networks():
    images = np.zeros((2, 8, 8, 1), "float32")
    inputs = keras.Input((4,))
    small_decoder = keras.Model(inputs, keras.layers.Reshape((2, 2, 1))(inputs))
    with pytest.raises(ValueError, match="decoder"):
        VAE(build_digits_vae_encoder(4), small_decoder)(images)
    single_output = keras.Model(inputs := keras.Input((8, 8, 1)), keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="encoder"):
        VAE(single_output, build_digits_vae_decoder(4))(images)
    with pytest.raises(ValueError, match="Received: num_samples=0"):
        make_vae().sample(0)


def test_cvae_rejects_bad_labels():
    model = make_cvae()
    with pytest.raises(ValueError, match=r"Received: labels.shape=\(3, 7\)"):
        model.sample(np.zeros((3, 7), "float32"))
    with pytest.raises(ValueError, match="labels"):
        model((np.zeros((3, 8, 8, 1), "float32"), np.zeros((3, 7), "float32")))
    with pytest.raises(ValueError, match="Received: num_classes=0"):
        ConditionalVAE(build_digits_cvae_encoder(2), build_digits_cvae_decoder(2), num_classes=0)


def test_bernoulli_vae_refuses_pixels_outside_zero_one(train_digits):
    images = np.asarray(train_digits[0] if isinstance(train_digits, tuple) else train_digits)
    model = VAE(build_digits_vae_encoder(2), build_digits_vae_decoder(2), seed=0)
    model.compile(optimizer="adam")
    pattern = r"images in \[0, 1\].*Received: x with values in \[0, 255\]"
    with pytest.raises(ValueError, match=pattern):
        model.fit(np.round(images * 255), epochs=1, verbose=0)
    gaussian = VAE(
        build_digits_vae_encoder(2), build_digits_vae_decoder(2), seed=0, reconstruction="gaussian"
    )
    gaussian.compile(optimizer="adam")
    gaussian.fit(images[:64] * 255, epochs=1, verbose=0)  # any range for a Gaussian likelihood
