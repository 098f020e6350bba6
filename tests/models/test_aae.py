import math

import keras
import numpy as np
import pytest

from dlkit.data.digits import digits
from dlkit.models.aae import (
    MIXTURE_COMPONENTS,
    MIXTURE_RADIUS,
    PRIORS,
    AdversarialAutoencoder,
    build_digits_aae_networks,
    sample_prior,
)
from dlkit.testing import run_layer_test

LATENT_DIM = 2
UPDATES = ("reconstruction", "discriminator", "generator")


def optimizers(learning_rate=2e-3, adversarial_learning_rate=None, decay_steps=None):
    """Adam for each update; cosine decay to 0 over `decay_steps` when given."""

    def rate(value):
        if decay_steps is None:
            return value
        return keras.optimizers.schedules.CosineDecay(value, decay_steps)

    adversarial = learning_rate if adversarial_learning_rate is None else adversarial_learning_rate
    return {
        "reconstruction": keras.optimizers.Adam(rate(learning_rate)),
        "discriminator": keras.optimizers.Adam(rate(adversarial), beta_1=0.5),
        "generator": keras.optimizers.Adam(rate(adversarial), beta_1=0.5),
    }


def make_model(prior="normal", latent_dim=LATENT_DIM, **kwargs):
    return AdversarialAutoencoder(
        *build_digits_aae_networks(latent_dim, hidden_units=32), prior=prior, seed=0, **kwargs
    )


def weights_of(network):
    return [np.array(weight) for weight in network.get_weights()]


def numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def train_images(count=None):
    images, _ = digits("train")
    return images[:count]


def test_layer_checks_and_round_trip():
    encoder, decoder, discriminator = build_digits_aae_networks(3, hidden_units=16)
    run_layer_test(
        AdversarialAutoencoder,
        {
            "encoder": encoder,
            "decoder": decoder,
            "discriminator": discriminator,
            "prior": "mixture",
            "reconstruction_weight": 0.5,
            "seed": 3,
        },
        input_data=train_images(4),
        expected_output_shape=(4, 8, 8, 1),
        # The discriminator takes no part in call(): only the adversarial updates train it.
        allow_zero_gradients=("discriminator_",),
    )


def test_encode_decode_sample_shapes_and_reconstruction_loss_value():
    model = make_model(reconstruction_weight=0.5)
    images = train_images(6)
    codes = model.encode(images)
    assert tuple(codes.shape) == (6, LATENT_DIM)
    reconstruction = numpy(model.decode(codes))
    assert reconstruction.shape == (6, 8, 8, 1)
    assert 0.0 <= reconstruction.min() and reconstruction.max() <= 1.0  # sigmoid output
    np.testing.assert_allclose(numpy(model(images)), reconstruction, atol=1e-6)
    expected = 0.5 * np.mean((images - reconstruction) ** 2)
    np.testing.assert_allclose(float(numpy(model.reconstruction_loss(images))), expected, rtol=1e-5)
    assert tuple(model.sample(5).shape) == (5, 8, 8, 1)


@pytest.mark.parametrize("update", UPDATES)
def test_each_update_changes_only_its_own_variables(update):
    model = make_model()
    model.compile(
        optimizers={name: keras.optimizers.SGD(0.1 if name == update else 0.0) for name in UPDATES}
    )
    networks = ("encoder", "decoder", "discriminator")
    before = {name: weights_of(getattr(model, name)) for name in networks}
    model.fit(train_images(64), batch_size=32, epochs=1, verbose=0)
    changed_networks = {
        "reconstruction": {"encoder", "decoder"},
        "discriminator": {"discriminator"},
        "generator": {"encoder"},
    }[update]
    for name in networks:
        after = weights_of(getattr(model, name))
        changed = any(not np.array_equal(old, new) for old, new in zip(before[name], after))
        assert changed == (name in changed_networks), (update, name)


def test_losses_are_finite_logged_per_update_and_reconstruction_falls():
    keras.utils.set_random_seed(0)
    model = make_model()
    model.compile(optimizers=optimizers())
    history = model.fit(train_images(512), batch_size=32, epochs=3, verbose=0)
    assert sorted(history.history) == sorted(f"{name}_loss" for name in UPDATES)
    assert all(np.all(np.isfinite(values)) for values in history.history.values())
    reconstruction = history.history["reconstruction_loss"]
    assert reconstruction[-1] < 0.85 * reconstruction[0]
    iterations = {
        name: int(model.optimizer.optimizers[name].iterations.numpy()) for name in UPDATES
    }
    assert iterations == {name: 3 * 16 for name in UPDATES}


def test_reload_continues_training_identically(tmp_path):
    images = train_images(128)
    model = make_model(prior="mixture")
    model.compile(optimizers=optimizers())
    model.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "aae.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.prior == "mixture" and restored.latent_dim == LATENT_DIM
    np.testing.assert_allclose(numpy(restored(images[:4])), numpy(model(images[:4])), atol=1e-6)
    np.testing.assert_allclose(numpy(restored.sample(4)), numpy(model.sample(4)), atol=1e-6)
    model.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    restored.fit(images, batch_size=32, epochs=1, shuffle=False, verbose=0)
    for expected, received in zip(weights_of(model), weights_of(restored)):
        np.testing.assert_allclose(received, expected, rtol=1e-5, atol=1e-6)
    assert int(restored.optimizer.optimizers["generator"].iterations.numpy()) == 8


def test_normal_and_uniform_prior_statistics():
    normal = numpy(sample_prior("normal", 20000, 3, seed=0))
    assert normal.shape == (20000, 3)
    np.testing.assert_allclose(normal.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(normal.std(axis=0), 1.0, atol=0.03)
    uniform = numpy(sample_prior("uniform", 20000, 3, seed=0))
    assert -1.0 <= uniform.min() and uniform.max() <= 1.0
    np.testing.assert_allclose(uniform.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(uniform.std(axis=0), 1 / math.sqrt(3), atol=0.03)  # U[-1, 1]
    for prior in PRIORS:  # an integer seed gives the same draws every time
        np.testing.assert_array_equal(
            numpy(sample_prior(prior, 5, 3, seed=1)), numpy(sample_prior(prior, 5, 3, seed=1))
        )


def test_mixture_prior_modes_lie_on_a_circle():
    codes = numpy(sample_prior("mixture", 20000, 4, seed=0))
    assert codes.shape == (20000, 4)
    radius = np.linalg.norm(codes[:, :2], axis=-1)
    assert abs(np.median(radius) - MIXTURE_RADIUS) < 0.05
    # Each code lies near one of the 10 directions 2πk/10, close to the ray (tangential std 0.1).
    angle = np.arctan2(codes[:, 1], codes[:, 0])
    step = 2 * math.pi / MIXTURE_COMPONENTS
    component = np.round(angle / step).astype(int) % MIXTURE_COMPONENTS
    direction = np.stack([np.cos(component * step), np.sin(component * step)], axis=-1)
    across = np.abs(codes[:, 0] * direction[:, 1] - codes[:, 1] * direction[:, 0])
    assert np.quantile(across, 0.95) < 0.25
    shares = np.bincount(component, minlength=MIXTURE_COMPONENTS) / len(component)
    np.testing.assert_allclose(shares, 0.1, atol=0.015)
    # The dimensions beyond the first two are standard normal.
    np.testing.assert_allclose(codes[:, 2:].mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(codes[:, 2:].std(axis=0), 1.0, atol=0.03)


@pytest.mark.parametrize("prior", PRIORS)
def test_model_prior_draws_are_seeded_and_leave_training_draws_alone(prior):
    first = make_model(prior)
    second = AdversarialAutoencoder(
        first.encoder, first.decoder, first.discriminator, prior, seed=0
    )
    training_state = numpy(first.seed_generator.state)
    codes = numpy(first.sample_prior(7))
    assert codes.shape == (7, LATENT_DIM)
    np.testing.assert_allclose(numpy(second.sample_prior(7)), codes)
    assert not np.allclose(numpy(first.sample_prior(7)), codes)  # fresh draws on each call
    np.testing.assert_array_equal(numpy(first.seed_generator.state), training_state)


def code_statistics_distance(model, images):
    """max over dimensions of |mean| and of |std − 1| of the codes of `images`."""
    codes = numpy(model.encode(images))
    return np.abs(codes.mean(axis=0)).max(), np.abs(codes.std(axis=0) - 1.0).max()


@pytest.mark.slow
def test_adversary_pulls_the_codes_to_the_normal_prior():
    images = train_images()
    test_images, _ = digits("test")
    batch_size = 32
    results = {}
    # The baseline trains the same networks with the adversarial updates switched off; a few
    # epochs suffice for its codes to drift far from the prior.
    for name, epochs, adversarial_learning_rate in (
        ("adversarial", 16, 2e-3),
        ("baseline", 3, 0.0),
    ):
        keras.utils.set_random_seed(0)
        model = AdversarialAutoencoder(*build_digits_aae_networks(LATENT_DIM), seed=0)
        # Cosine decay to 0 lets the adversarial game settle instead of oscillating.
        decay_steps = epochs * math.ceil(len(images) / batch_size)
        model.compile(optimizers=optimizers(2e-3, adversarial_learning_rate, decay_steps))
        model.fit(images, batch_size=batch_size, epochs=epochs, verbose=0)
        results[name] = code_statistics_distance(model, test_images)
    print(f"code |mean|, |std - 1| (max over dims): {results}")
    mean_distance, std_distance = results["adversarial"]
    assert mean_distance < 0.3 and std_distance < 0.35
    assert max(results["baseline"]) > 1.0


def test_bad_arguments_are_rejected():
    encoder, decoder, discriminator = build_digits_aae_networks(LATENT_DIM)
    with pytest.raises(ValueError, match=r"Received: prior='laplace'"):
        AdversarialAutoencoder(encoder, decoder, discriminator, prior="laplace")
    with pytest.raises(ValueError, match=r"Received: reconstruction_weight=-1"):
        AdversarialAutoencoder(encoder, decoder, discriminator, reconstruction_weight=-1.0)
    with pytest.raises(ValueError, match=r"Received: prior='laplace'"):
        sample_prior("laplace", 3, 2)
    _, wide_decoder, wide_discriminator = build_digits_aae_networks(3)
    with pytest.raises(ValueError, match=r"encoder output \(2,\), decoder input \(3,\)"):
        AdversarialAutoencoder(encoder, wide_decoder, discriminator)
    with pytest.raises(ValueError, match=r"discriminator input \(3,\)"):
        AdversarialAutoencoder(encoder, decoder, wide_discriminator)
    two_logits = keras.Sequential([keras.Input((LATENT_DIM,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"discriminator output \(2,\)"):
        AdversarialAutoencoder(encoder, decoder, two_logits)
    _, large_decoder, _ = build_digits_aae_networks(LATENT_DIM, image_shape=(12, 12, 1))
    with pytest.raises(ValueError, match=r"encoder input \(8, 8, 1\), decoder output"):
        AdversarialAutoencoder(encoder, large_decoder, discriminator)
    with pytest.raises(ValueError, match=r"latent_dim=1"):
        AdversarialAutoencoder(*build_digits_aae_networks(1), prior="mixture")
    with pytest.raises(ValueError, match=r"Received: latent_dim=0"):
        build_digits_aae_networks(0)
    with pytest.raises(ValueError, match=r"Received: num_samples=0"):
        AdversarialAutoencoder(encoder, decoder, discriminator).sample(0)
