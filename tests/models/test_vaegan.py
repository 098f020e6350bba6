import keras
import numpy as np
import pytest

from dlkit.data.digits import digits
from dlkit.models.vaegan import VAEGAN, build_digits_vaegan_networks
from dlkit.testing import run_layer_test

LATENT_DIM = 8
UPDATES = ("encoder", "decoder", "discriminator")


def optimizers(learning_rate=2e-3, only=None):
    """Adam for every update; with `only`, the other updates get a zero learning rate."""
    return {
        name: keras.optimizers.Adam(learning_rate if only in (None, name) else 0.0, beta_1=0.5)
        for name in UPDATES
    }


def make_vaegan(**kwargs):
    return VAEGAN(*build_digits_vaegan_networks(LATENT_DIM), seed=0, **kwargs)


def weights_of(network):
    return [np.array(weight) for weight in network.get_weights()]


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def test_layer_checks_and_round_trip():
    images, _ = digits("test", value_range=(-1, 1))
    run_layer_test(
        VAEGAN,
        {
            **dict(zip(UPDATES, build_digits_vaegan_networks(LATENT_DIM))),
            "beta": 0.5,
            "feature_weight": 3.0,
            "seed": 3,
        },
        input_data=images[:4],
        expected_output_shape=(4, 8, 8, 1),
        # The discriminator takes no part in call(): its gradient there is zero.
        allow_zero_gradients=["discriminator_"],
    )


@pytest.mark.parametrize("update", UPDATES)
def test_each_update_changes_only_its_network(update):
    images, _ = digits("train", value_range=(-1, 1))
    model = make_vaegan()
    model.compile(optimizers=optimizers(only=update), run_eagerly=True)
    before = {name: weights_of(getattr(model, name)) for name in UPDATES}
    model.fit(images[:32], batch_size=32, epochs=1, verbose=0)
    for name in UPDATES:
        changed = [
            not np.array_equal(old, new)
            for old, new in zip(before[name], weights_of(getattr(model, name)))
        ]
        if name == update:
            assert all(changed), name
        else:
            assert not any(changed), name


def _tiny_networks(constant_image, logit_weights, logit_bias, encoder_kernel):
    """Networks whose losses have closed forms: a linear encoder, a decoder that outputs
    `constant_image` whatever the code, and a discriminator whose features are the pixels."""
    images = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(images)  # (B, 64)
    mean_layer = keras.layers.Dense(LATENT_DIM, use_bias=False)
    log_variance_layer = keras.layers.Dense(LATENT_DIM, use_bias=False)
    encoder = keras.Model(images, [mean_layer(flat), log_variance_layer(flat)])
    mean_layer.set_weights([encoder_kernel])
    log_variance_layer.set_weights([-encoder_kernel])

    code = keras.Input((LATENT_DIM,))
    pixels = keras.layers.Dense(64)
    decoder = keras.Model(code, keras.layers.Reshape((8, 8, 1))(pixels(code)))
    pixels.set_weights([np.zeros((LATENT_DIM, 64), "float32"), constant_image.reshape(64)])

    images = keras.Input((8, 8, 1))
    features = keras.layers.Flatten()(images)  # (B, 64): identity features
    logit_layer = keras.layers.Dense(1)
    discriminator = keras.Model(images, [logit_layer(features), features])
    logit_layer.set_weights([logit_weights.reshape(64, 1), np.array([logit_bias], "float32")])
    return encoder, decoder, discriminator


def softplus(values):
    return np.logaddexp(0.0, values)


def test_losses_match_numpy():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (5, 8, 8, 1)).astype("float32")
    constant_image = rng.uniform(-1, 1, (8, 8, 1)).astype("float32")
    logit_weights = rng.normal(0, 0.3, 64).astype("float32")
    encoder_kernel = rng.normal(0, 0.1, (64, LATENT_DIM)).astype("float32")
    beta, feature_weight, logit_bias = 0.5, 2.0, 0.1
    model = VAEGAN(
        *_tiny_networks(constant_image, logit_weights, logit_bias, encoder_kernel),
        beta=beta,
        feature_weight=feature_weight,
        seed=0,
    )

    flat = images.reshape(5, 64)
    mean, log_variance = flat @ encoder_kernel, -(flat @ encoder_kernel)
    kl = np.mean(0.5 * np.sum(np.exp(log_variance) + mean**2 - 1 - log_variance, axis=-1))
    feature = np.mean(0.5 * np.sum((flat - constant_image.reshape(1, 64)) ** 2, axis=-1))
    real_logits = flat @ logit_weights + logit_bias
    fake_logit = constant_image.reshape(64) @ logit_weights + logit_bias
    # Reconstructions and prior samples are both the constant image: 2B equal fake logits.
    expected = {
        "encoder": beta * kl + feature,
        "decoder": feature_weight * feature + softplus(-fake_logit),
        "discriminator": np.mean(softplus(-real_logits)) + softplus(fake_logit),
    }
    received = {
        "encoder": model.encoder_loss(images),
        "decoder": model.decoder_loss(images),
        "discriminator": model.discriminator_loss(images),
    }
    for name in UPDATES:
        np.testing.assert_allclose(float(to_numpy(received[name])), expected[name], rtol=1e-5)
    # The encoder's pass also logs its components.
    np.testing.assert_allclose(float(to_numpy(model.kl_tracker.result())), kl, rtol=1e-5)
    np.testing.assert_allclose(float(to_numpy(model.feature_tracker.result())), feature, rtol=1e-5)


def test_fit_logs_reload_and_continued_training(tmp_path):
    images, _ = digits("train", value_range=(-1, 1))
    images = images[:128]
    model = make_vaegan()
    model.compile(optimizers=optimizers())
    history = model.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert sorted(history.history) == [
        "decoder_loss",
        "discriminator_loss",
        "encoder_loss",
        "feature_loss",
        "kl_loss",
        "pixel_mse",
    ]
    assert all(np.isfinite(values[-1]) for values in history.history.values())
    assert int(model.optimizer.optimizers["encoder"].iterations.numpy()) == 4
    path = tmp_path / "vaegan.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored(images[:4])), to_numpy(model(images[:4])), atol=1e-6
    )
    model.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    restored.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    for expected, received in zip(weights_of(model), weights_of(restored)):
        np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-6)
    assert int(restored.optimizer.optimizers["discriminator"].iterations.numpy()) == 8


def test_call_is_deterministic_and_sample_is_seeded():
    images, _ = digits("test", value_range=(-1, 1))
    first = make_vaegan()
    second = VAEGAN(first.encoder, first.decoder, first.discriminator, seed=0)
    np.testing.assert_array_equal(to_numpy(first(images[:3])), to_numpy(first(images[:3])))
    training_state = to_numpy(first.seed_generator.state)
    samples = to_numpy(first.sample(5))
    assert samples.shape == (5, 8, 8, 1) and np.all(np.abs(samples) <= 1)
    np.testing.assert_allclose(to_numpy(second.sample(5)), samples)
    np.testing.assert_array_equal(to_numpy(first.seed_generator.state), training_state)
    mean, log_variance = first.encode(images[:3])
    assert tuple(mean.shape) == tuple(log_variance.shape) == (3, LATENT_DIM)


@pytest.mark.slow
def test_pixel_reconstruction_error_falls_on_held_out_digits():
    keras.utils.set_random_seed(0)
    images, _ = digits("train", value_range=(-1, 1))
    test_images, _ = digits("test", value_range=(-1, 1))
    model = make_vaegan()
    model.compile(optimizers=optimizers())

    def test_mse():
        return float(np.mean((to_numpy(model(test_images)) - test_images) ** 2))

    before = test_mse()
    history = model.fit(images, batch_size=64, epochs=6, verbose=0)
    after = test_mse()
    kl = history.history["kl_loss"][-1]
    print(f"held-out pixel MSE {before:.3f} -> {after:.3f}, KL {kl:.3f}")
    assert np.isfinite(kl) and kl > 0
    # The mean image scores 0.30. Measured with seed 0 after 6 epochs: 0.72 -> 0.27 (TensorFlow),
    # 0.22 (JAX), 0.26 (torch).
    assert after < 0.6 * before


def test_bad_arguments_are_rejected():
    encoder, decoder, discriminator = build_digits_vaegan_networks(LATENT_DIM)
    with pytest.raises(ValueError, match=r"Received: beta=-1"):
        VAEGAN(encoder, decoder, discriminator, beta=-1)
    with pytest.raises(ValueError, match=r"Received: feature_weight=-0.5"):
        VAEGAN(encoder, decoder, discriminator, feature_weight=-0.5)
    with pytest.raises(ValueError, match=r"`discriminator` to be a keras.Model"):
        VAEGAN(encoder, decoder, lambda images: images)
    logit_only = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    with pytest.raises(ValueError, match=r"discriminator.*Received: discriminator output shapes"):
        VAEGAN(encoder, decoder, logit_only)
    small_decoder = build_digits_vaegan_networks(LATENT_DIM, image_shape=(4, 4, 1))[1]
    with pytest.raises(ValueError, match=r"decoder.*Received: decoder output shape=\(4, 4, 1\)"):
        VAEGAN(encoder, small_decoder, discriminator)
    with pytest.raises(ValueError, match=r"Received: latent_dim=0"):
        build_digits_vaegan_networks(0)
    with pytest.raises(ValueError, match=r"Received: image_shape=\(6, 8, 1\)"):
        build_digits_vaegan_networks(LATENT_DIM, image_shape=(6, 8, 1))
    with pytest.raises(ValueError, match=r"Received: num_samples=0"):
        VAEGAN(encoder, decoder, discriminator).sample(0)


class Wrapped(keras.Model):
    """A subclassed network: its shapes are unknown until the model is built."""

    def __init__(self, network, **kwargs):
        super().__init__(**kwargs)
        self.network = network

    def call(self, inputs):
        return self.network(inputs)


def test_subclassed_networks_are_checked_when_the_model_is_built():
    images, _ = digits("test", value_range=(-1, 1))
    encoder, decoder, discriminator = build_digits_vaegan_networks(LATENT_DIM)
    model = VAEGAN(Wrapped(encoder), Wrapped(decoder), Wrapped(discriminator), seed=0)
    with pytest.raises(ValueError, match=r"Received: an unbuilt VAEGAN"):
        model.sample(2)
    assert tuple(model(images[:2]).shape) == (2, 8, 8, 1)
    assert model.latent_dim == LATENT_DIM
    assert tuple(model.sample(2).shape) == (2, 8, 8, 1)
    logit_only = Wrapped(logit_network())
    model = VAEGAN(Wrapped(encoder), Wrapped(decoder), logit_only)
    with pytest.raises(ValueError, match=r"Expected `discriminator` to return \[logit"):
        model(images[:2])


def logit_network():
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
