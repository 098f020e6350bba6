import keras
import numpy as np
import pytest

from dlkit.layers import MinibatchStdDev
from dlkit.testing import run_layer_test


def numpy_minibatch_stddev(x, epsilon=1e-8):
    statistic = np.mean(np.sqrt(x.var(axis=0) + epsilon))
    return np.concatenate([x, np.full((*x.shape[:-1], 1), statistic)], axis=-1)


@pytest.mark.parametrize("shape", [(5, 4, 4, 3), (7, 6), (2, 3, 1)])
def test_matches_numpy_and_round_trips(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    run_layer_test(
        MinibatchStdDev,
        {"epsilon": 1e-6},
        input_data=x,
        expected_output_shape=(*shape[:-1], shape[-1] + 1),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        expected_output=numpy_minibatch_stddev(x, 1e-6),
        atol=1e-5,
        run_training_check=False,  # no weights; the input gradient is tested below
    )


def test_a_collapsed_batch_scores_lower_than_a_varied_one():
    rng = np.random.default_rng(1)
    varied = rng.standard_normal((16, 4, 4, 2)).astype("float32")
    collapsed = np.repeat(varied[:1], 16, axis=0) + 0.01 * varied  # one image, barely perturbed
    layer = MinibatchStdDev()
    varied_statistic = keras.ops.convert_to_numpy(layer(varied))[0, 0, 0, -1]
    collapsed_statistic = keras.ops.convert_to_numpy(layer(collapsed))[0, 0, 0, -1]
    assert collapsed_statistic < 0.05 * varied_statistic


def test_gradients_reach_every_example_through_the_statistic():
    x = keras.ops.convert_to_tensor(
        np.random.default_rng(2).standard_normal((4, 3)).astype("float32")
    )
    from dlkit.training import value_and_grad

    def statistic_only(inputs):
        return keras.ops.sum(MinibatchStdDev()(inputs)[:, -1])

    _, _, (gradient,) = value_and_grad(statistic_only, [], [x], [])
    gradient = keras.ops.convert_to_numpy(gradient)
    assert np.all(np.isfinite(gradient)) and np.all(np.abs(gradient) > 0)


@pytest.mark.parametrize("epsilon", [0.0, -1.0, True])
def test_rejects_a_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        MinibatchStdDev(epsilon=epsilon)


def test_rejects_inputs_without_a_feature_axis():
    with pytest.raises(ValueError, match="input_shape"):
        MinibatchStdDev()(np.zeros((4,), "float32"))
