"""Tests of dlkit.models.autoencoder: shapes, training, the PCA link, saving, bad arguments."""

import os

import keras
import numpy as np
import pytest
import scipy.linalg

from dlkit.data.digits import digits
from dlkit.models.autoencoder import (
    Autoencoder,
    build_conv_autoencoder,
    build_dense_autoencoder,
)
from dlkit.testing import run_layer_test


@pytest.fixture(scope="module")
def train_images():
    images, _ = digits("train")
    return images


def test_dense_autoencoder_layer_checks():
    encoder, decoder = build_dense_autoencoder((8, 8, 1), latent_dim=3, hidden_units=(16,))
    run_layer_test(
        Autoencoder,
        {"encoder": encoder, "decoder": decoder},
        input_shape=(4, 8, 8, 1),
        expected_output_shape=(4, 8, 8, 1),
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=0,
    )


def test_conv_autoencoder_layer_checks():
    encoder, decoder = build_conv_autoencoder((8, 8, 1), latent_dim=4)
    run_layer_test(
        Autoencoder,
        {"encoder": encoder, "decoder": decoder},
        input_shape=(2, 8, 8, 1),
        expected_output_shape=(2, 8, 8, 1),
        expected_num_trainable_weights=12,
        expected_num_non_trainable_weights=0,
    )


def test_linear_builder_has_no_biases():
    encoder, decoder = build_dense_autoencoder((8, 8, 1), latent_dim=2, linear=True)
    assert [tuple(w.shape) for w in encoder.weights] == [(64, 2)]
    assert [tuple(w.shape) for w in decoder.weights] == [(2, 64)]


def test_fit_on_inputs_alone_reduces_reconstruction_error(train_images):
    keras.utils.set_random_seed(0)
    model = Autoencoder(*build_conv_autoencoder((8, 8, 1), latent_dim=8))
    model.compile(keras.optimizers.Adam(3e-3))
    history = model.fit(train_images, epochs=3, batch_size=64, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    reconstruction = keras.ops.convert_to_numpy(model.predict(train_images[:64], verbose=0))
    baseline = np.mean(np.square(train_images[:64] - train_images.mean(axis=0)))
    assert np.mean(np.square(reconstruction - train_images[:64])) < baseline


def test_target_given_to_fit_replaces_the_input(train_images):
    # A denoising autoencoder: noisy inputs, clean targets. The loss is against the targets.
    keras.utils.set_random_seed(0)
    model = Autoencoder(*build_dense_autoencoder((8, 8, 1), latent_dim=4, hidden_units=(32,)))
    model.compile(keras.optimizers.Adam(3e-3))
    noisy = train_images + 0.2 * np.random.default_rng(0).standard_normal(train_images.shape)
    noisy = noisy.astype("float32")
    model.fit(noisy, train_images, epochs=1, batch_size=64, verbose=0)
    reconstruction = keras.ops.convert_to_numpy(model(noisy[:32]))
    expected = np.mean(np.square(train_images[:32] - reconstruction))
    received = model.evaluate(noisy[:32], train_images[:32], batch_size=32, verbose=0)
    np.testing.assert_allclose(received, expected, rtol=1e-4)


@pytest.mark.parametrize("latent_dim", [2, 3, 4])
def test_linear_autoencoder_learns_the_principal_subspace(train_images, latent_dim):
    # [notes §5.1]: a linear, bias-free autoencoder with the squared error spans the top-k
    # principal components of centred data, and reaches PCA's reconstruction error.
    flat = train_images.reshape(len(train_images), -1)  # (N, 64)
    centred = (flat - flat.mean(axis=0)).astype("float32")
    covariance = centred.T @ centred / len(centred)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)  # ascending
    principal = eigenvectors[:, ::-1][:, :latent_dim]  # (64, k)
    pca_error = eigenvalues[::-1][latent_dim:].sum() / 64

    keras.utils.set_random_seed(0)
    encoder, decoder = build_dense_autoencoder((8, 8, 1), latent_dim, linear=True)
    model = Autoencoder(encoder, decoder)
    model.compile(keras.optimizers.Adam(0.01))
    model.fit(centred.reshape(train_images.shape), epochs=30, batch_size=128, verbose=0)

    decoder_columns = keras.ops.convert_to_numpy(decoder.weights[0]).T  # (64, k)
    angles = np.degrees(scipy.linalg.subspace_angles(decoder_columns, principal))
    final_error = model.evaluate(
        centred.reshape(train_images.shape), batch_size=len(centred), verbose=0
    )
    ratio = final_error / pca_error
    print(f"k={latent_dim}: largest angle {angles.max():.2f}°, error {ratio:.4f}×PCA")
    assert angles.max() < 10.0
    assert pca_error <= final_error * (1 + 1e-4) < 1.05 * pca_error


def test_keras_round_trip_after_training_and_continued_training(train_images, tmp_path):
    keras.utils.set_random_seed(0)
    model = Autoencoder(*build_dense_autoencoder((8, 8, 1), latent_dim=4, hidden_units=(32,)))
    model.compile(keras.optimizers.Adam(3e-3))
    model.fit(train_images, epochs=1, batch_size=64, verbose=0)
    path = os.path.join(tmp_path, "autoencoder.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    batch = train_images[:16]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(batch)), keras.ops.convert_to_numpy(model(batch))
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored.encode(batch)),
        keras.ops.convert_to_numpy(model.encode(batch)),
    )
    before = restored.evaluate(train_images, batch_size=256, verbose=0)
    history = restored.fit(train_images, epochs=2, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < before


@pytest.mark.parametrize(
    ("builder", "kwargs", "name"),
    [
        (build_dense_autoencoder, {"input_shape": (8, 8, 1), "latent_dim": 0}, "latent_dim"),
        (build_dense_autoencoder, {"input_shape": (8, 8, 1), "latent_dim": 2.5}, "latent_dim"),
        (
            build_dense_autoencoder,
            {"input_shape": (8, 8, 1), "latent_dim": 2, "hidden_units": (0,)},
            "hidden_units",
        ),
        (build_dense_autoencoder, {"input_shape": (8, -1), "latent_dim": 2}, "input_shape"),
        (build_conv_autoencoder, {"input_shape": (6, 6, 1), "latent_dim": 2}, "input_shape"),
        (build_conv_autoencoder, {"input_shape": (8, 8, 1), "latent_dim": -1}, "latent_dim"),
    ],
)
def test_builders_reject_bad_arguments(builder, kwargs, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        builder(**kwargs)


def test_model_rejects_mismatched_networks():
    encoder, _ = build_dense_autoencoder((8, 8, 1), latent_dim=2)
    _, decoder = build_dense_autoencoder((4, 4, 1), latent_dim=2)
    with pytest.raises(ValueError, match="decoder"):
        Autoencoder(encoder, decoder)(np.zeros((2, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="Received: encoder="):
        Autoencoder("encoder", decoder)
