import keras
import numpy as np
import pytest

from dlkit.testing import run_layer_test


@keras.saving.register_keras_serializable(package="dlkit_tests")
class Scale(keras.layers.Layer):
    """y = factor · w ⊙ x, with a trainable per-feature w."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return self.factor * self.w * x

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="dlkit_tests")
class ForgetfulScale(Scale):
    """Forgets `factor` in its config, so a clone computes something else."""

    def get_config(self):
        config = super().get_config()
        del config["factor"]
        return config


@keras.saving.register_keras_serializable(package="dlkit_tests")
class DeadWeight(Scale):
    """Creates a weight the output does not depend on."""

    def build(self, input_shape):
        super().build(input_shape)
        self.unused = self.add_weight(shape=(2,), initializer="ones", name="unused")


@keras.saving.register_keras_serializable(package="dlkit_tests")
class SquareRoot(Scale):
    """x + sqrt(w - 1) has an infinite derivative at the initial w = 1."""

    def call(self, x):
        return x + keras.ops.sqrt(self.w - 1.0)


class Unregistered(Scale):
    pass


@keras.saving.register_keras_serializable(package="dlkit_tests")
class TwoTower(keras.Model):
    """A subclassed model taking a pair of inputs."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.left = keras.layers.Dense(units)
        self.right = keras.layers.Dense(units)

    def call(self, inputs):
        a, b = inputs
        return self.left(a) + self.right(b)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_a_correct_layer_passes_and_is_returned():
    x = np.arange(6, dtype="float32").reshape(2, 3)
    layer = run_layer_test(
        Scale,
        {"factor": 3.0},
        input_data=x,
        expected_output_shape=(2, 3),
        expected_output=3.0 * x,
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )
    assert layer.factor == 3.0


def test_a_subclassed_model_with_a_pair_of_inputs_passes():
    rng = np.random.default_rng(0)
    pair = (rng.normal(size=(2, 3)).astype("float32"), rng.normal(size=(2, 5)).astype("float32"))
    model = run_layer_test(
        TwoTower,
        {"units": 4},
        input_data=[pair],
        expected_output_shape=(2, 4),
        expected_num_trainable_weights=4,
    )
    assert isinstance(model, keras.Model)


def test_keras_builtin_with_state_and_randomness_passes():
    run_layer_test(
        keras.layers.BatchNormalization,
        {},
        input_shape=(8, 4),
        expected_output_shape=(8, 4),
        expected_num_trainable_weights=2,
        expected_num_non_trainable_weights=2,
    )
    run_layer_test(
        keras.layers.Dropout,
        {"rate": 0.5},
        input_shape=(4, 4),
        expected_output_shape=(4, 4),
        run_training_check=False,
    )


def test_wrong_output_shape_is_reported():
    with pytest.raises(AssertionError, match=r"Expected: \(2, 4\). Received: \(2, 3\)"):
        run_layer_test(Scale, {}, input_shape=(2, 3), expected_output_shape=(2, 4))


def test_wrong_output_values_are_reported():
    with pytest.raises(AssertionError, match="output vs expected_output"):
        run_layer_test(Scale, {}, input_shape=(2, 3), expected_output=np.zeros((2, 3)))


def test_wrong_weight_count_is_reported():
    with pytest.raises(AssertionError, match=r"Expected 2 trainable weights\. Received: 1"):
        run_layer_test(Scale, {}, input_shape=(2, 3), expected_num_trainable_weights=2)


def test_incomplete_get_config_is_caught():
    with pytest.raises(AssertionError, match="from_config clone"):
        run_layer_test(ForgetfulScale, {"factor": 5.0}, input_shape=(2, 3))


def test_unregistered_layer_fails_the_saving_check():
    with pytest.raises(TypeError):
        run_layer_test(Unregistered, {}, input_shape=(2, 3))
    run_layer_test(Unregistered, {}, input_shape=(2, 3), run_saving_check=False)


def test_weight_without_gradient_is_caught_unless_allowed():
    with pytest.raises(AssertionError, match=r"Zero gradient for trainable weight .*unused"):
        run_layer_test(DeadWeight, {}, input_shape=(2, 3))
    run_layer_test(DeadWeight, {}, input_shape=(2, 3), allow_zero_gradients=["unused"])


def test_non_finite_gradient_is_caught():
    x = np.array([[2.0, 1.0, 4.0]], dtype="float32")
    with pytest.raises(AssertionError, match="Non-finite gradient"):
        run_layer_test(SquareRoot, {}, input_data=x, run_saving_check=False)


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="layer_cls"):
        run_layer_test(Scale(), {}, input_shape=(2, 3))
    with pytest.raises(ValueError, match="exactly one of `input_data` and `input_shape`"):
        run_layer_test(Scale, {}, input_data=np.ones((2, 3)), input_shape=(2, 3))
    with pytest.raises(TypeError, match=r"input_data\[0\] holding str"):
        run_layer_test(Scale, {}, input_data=["not an array"])
