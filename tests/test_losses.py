import numpy as np
import pytest
from keras import ops

from dlkit.losses import (
    cycle_consistency_loss,
    discriminator_loss,
    generator_loss,
    kl_divergence_to_standard_normal,
)


def numpy_value(x):
    return float(ops.convert_to_numpy(x))


def test_kl_matches_the_closed_form_and_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 3)).astype("float32")
    log_variance = rng.normal(scale=0.5, size=(4, 3)).astype("float32")
    expected = np.mean(0.5 * np.sum(np.exp(log_variance) + mean**2 - 1 - log_variance, axis=-1))
    assert numpy_value(kl_divergence_to_standard_normal(mean, log_variance)) == pytest.approx(
        expected, rel=1e-5
    )
    # Monte Carlo: E_q[log q(z) − log p(z)] for one sample's Gaussian.
    sigma = np.exp(0.5 * log_variance[0])
    z = mean[0] + sigma * rng.standard_normal((200_000, 3))
    log_q = -0.5 * np.sum(((z - mean[0]) / sigma) ** 2 + np.log(2 * np.pi * sigma**2), axis=-1)
    log_p = -0.5 * np.sum(z**2 + np.log(2 * np.pi), axis=-1)
    single = numpy_value(kl_divergence_to_standard_normal(mean[:1], log_variance[:1]))
    assert np.mean(log_q - log_p) == pytest.approx(single, rel=2e-2)
    assert numpy_value(kl_divergence_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 3)))) == 0


def test_adversarial_losses_match_binary_cross_entropy():
    real = np.array([[2.0], [-1.0]], "float32")
    fake = np.array([[0.5], [-3.0]], "float32")

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    expected_discriminator = -np.mean(np.log(sigmoid(real))) - np.mean(np.log(1 - sigmoid(fake)))
    assert numpy_value(discriminator_loss(real, fake)) == pytest.approx(expected_discriminator)
    assert numpy_value(generator_loss(fake)) == pytest.approx(-np.mean(np.log(sigmoid(fake))))
    assert numpy_value(generator_loss(fake, saturating=True)) == pytest.approx(
        np.mean(np.log(1 - sigmoid(fake))), rel=1e-5
    )


def test_cycle_consistency_is_the_mean_absolute_error():
    x = np.array([[1.0, -2.0], [0.0, 4.0]], "float32")
    y = np.array([[0.0, -2.0], [1.0, 1.0]], "float32")
    assert numpy_value(cycle_consistency_loss(x, y)) == pytest.approx(1.25)


def test_shape_mismatches_are_rejected():
    with pytest.raises(ValueError, match=r"log_variance\.shape"):
        kl_divergence_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="same shape"):
        cycle_consistency_loss(np.zeros((2, 3)), np.zeros((3, 2)))
