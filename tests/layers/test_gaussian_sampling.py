import keras
import numpy as np
import pytest

from dlkit.layers.gaussian_sampling import GaussianSampling
from dlkit.testing import run_layer_test
from dlkit.training import value_and_grad


def _random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_gaussian_sampling_passes_the_layer_checks():
    # At inference with sample_at_inference=False the output is the mean, so the config and
    # .keras round trips compare deterministic outputs.
    mean, log_variance = _random((2, 3), 1), _random((2, 3), 2)
    run_layer_test(
        GaussianSampling,
        {"sample_at_inference": False, "seed": 0},
        input_data=(mean, log_variance),
        expected_output_shape=(2, 3),
        expected_output=mean,
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        run_training_check=False,
    )


def test_sample_matches_numpy_with_the_same_noise():
    mean, log_variance = _random((4, 3), 1), _random((4, 3), 2)
    received = _numpy(GaussianSampling(seed=9)(mean, log_variance))
    epsilon = _numpy(keras.random.normal((4, 3), seed=keras.random.SeedGenerator(9)))
    np.testing.assert_allclose(received, mean + np.exp(0.5 * log_variance) * epsilon, rtol=1e-5)


def test_samples_have_the_requested_mean_and_variance():
    num_samples = 20000
    mean = np.tile(np.array([[-1.0, 0.5, 2.0]], dtype="float32"), (num_samples, 1))
    variance = np.array([0.25, 1.0, 4.0], dtype="float32")
    log_variance = np.tile(np.log(variance)[None, :], (num_samples, 1))
    samples = _numpy(GaussianSampling(seed=1)(mean, log_variance, training=True))
    standard_error = np.sqrt(variance / num_samples)
    assert np.all(np.abs(samples.mean(axis=0) - mean[0]) < 5 * standard_error)
    np.testing.assert_allclose(samples.var(axis=0), variance, rtol=0.05)


def test_gradients_reach_the_mean_and_the_log_variance():
    mean, log_variance = _random((2, 3), 1), _random((2, 3), 2)
    layer, twin = GaussianSampling(seed=4), GaussianSampling(seed=4)
    state_variables = layer.non_trainable_variables  # the seed generator's state

    def total(mean, log_variance):
        return keras.ops.sum(layer(mean, log_variance, training=True))

    _, _, (mean_gradient, log_variance_gradient) = value_and_grad(
        total, inputs=[mean, log_variance], state_variables=state_variables
    )
    mean_gradient, log_variance_gradient = _numpy(mean_gradient), _numpy(log_variance_gradient)
    sample = _numpy(twin(mean, log_variance, training=True))  # the same ε
    np.testing.assert_allclose(mean_gradient, np.ones((2, 3)))  # ∂z/∂μ = 1
    # ∂z/∂log σ² = ½ exp(½ log σ²) ε = ½ (z − μ)
    assert np.all(np.isfinite(log_variance_gradient)) and np.all(log_variance_gradient != 0)
    np.testing.assert_allclose(log_variance_gradient, 0.5 * (sample - mean), rtol=1e-5, atol=1e-6)


def test_inference_samples_unless_asked_for_the_mean():
    mean, log_variance = _random((2, 3), 1), _random((2, 3), 2)
    sampling = GaussianSampling(seed=0)
    first, second = _numpy(sampling(mean, log_variance)), _numpy(sampling(mean, log_variance))
    assert not np.allclose(first, second)
    assert not np.allclose(first, mean)
    mean_at_inference = GaussianSampling(sample_at_inference=False, seed=0)
    np.testing.assert_array_equal(_numpy(mean_at_inference(mean, log_variance)), mean)
    assert not np.allclose(_numpy(mean_at_inference(mean, log_variance, training=True)), mean)


def test_sampling_in_a_model_with_an_unknown_batch_size():
    mean_input, log_variance_input = keras.Input((3,)), keras.Input((3,))
    outputs = GaussianSampling(seed=2)(mean_input, log_variance_input)
    model = keras.Model([mean_input, log_variance_input], outputs)
    mean = _random((5, 3), 1)
    samples = model.predict([mean, np.full((5, 3), -20.0, dtype="float32")], verbose=0)
    assert samples.shape == (5, 3)
    np.testing.assert_allclose(samples, mean, atol=1e-3)  # σ = e^-10: the sample is the mean


def test_same_seed_gives_the_same_samples():
    mean, log_variance = _random((2, 3), 1), _random((2, 3), 2)
    first, again, other = GaussianSampling(seed=3), GaussianSampling(seed=3), GaussianSampling(4)
    for _ in range(2):
        a, b = _numpy(first(mean, log_variance)), _numpy(again(mean, log_variance))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, _numpy(other(mean, log_variance)))


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"`log_variance`.*Received: log_variance.shape=\(2, 4\)"):
        GaussianSampling()(np.zeros((2, 3), "float32"), np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"Received: log_variance.shape=\(3,\)"):
        GaussianSampling()(np.zeros((2, 3), "float32"), np.zeros((3,), "float32"))
