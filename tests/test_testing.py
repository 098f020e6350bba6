import importlib
import pathlib
import re

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


# ------------------------------------------------- every registered dlkit class is covered

# Registered dlkit classes that no test passes to `run_layer_test`, with the reason and the
# place where they are tested instead. docs/pages/testing.md names the same list.
NOT_LAYER_TESTED = {
    "DQN": "an RL agent: .keras round trip in tests/rl/test_dqn.py, learning in "
    "tests/rl/test_solve_cartpole.py",
    "REINFORCE": "an RL agent: .keras round trip and learning in tests/rl/test_policy_gradient.py",
    "A2C": "an RL agent: .keras round trip and learning in tests/rl/test_policy_gradient.py",
    "PPO": "an RL agent: .keras round trip in tests/rl/test_policy_gradient.py, learning in "
    "tests/rl/test_solve_cartpole.py",
    "A3C": "an RL agent: .keras round trip in tests/rl/test_a3c.py, learning in "
    "tests/recipes/test_deep_rl_quality.py",
    "TRPO": "an RL agent: .keras round trip in tests/rl/test_trpo.py, learning in "
    "tests/recipes/test_deep_rl_quality.py",
    "OptimizerGroup": "an optimizer, not a layer: tests/training/test_alternating.py",
    "YoloLoss": "a loss, not a layer: tests/vision/test_detection.py",
}
DLKIT_PACKAGES = (
    "dlkit.layers",
    "dlkit.models",
    "dlkit.vision",
    "dlkit.rl",
    "dlkit.training",
    "dlkit.losses",
)
# `run_layer_test(` and its first argument, possibly on the next line: `run_layer_test(\n    FiLM,`.
_LAYER_TEST_CALL = re.compile(r"run_layer_test\(\s*(?:\w+\.)*(\w+)\s*,")


def registered_dlkit_classes(custom_objects):
    """Name → class of every class registered with `package="dlkit"`."""
    return {
        key.split(">", 1)[1]: value
        for key, value in custom_objects.items()
        if key.split(">", 1)[0] == "dlkit" and isinstance(value, type)
    }


def names_passed_to_run_layer_test():
    """Names of the classes the test suite passes to `run_layer_test`, read from its source."""
    tests = pathlib.Path(__file__).resolve().parent
    names = set()
    for path in tests.rglob("test_*.py"):
        if path.name != pathlib.Path(__file__).name:
            names.update(_LAYER_TEST_CALL.findall(path.read_text(encoding="utf-8")))
    return names


def coverage_problems(registered, covered, exempt):
    """Registered classes neither covered nor exempt, and exemptions that are out of date."""
    problems = [
        f"{name}: registered but never passed to run_layer_test (add a run_layer_test, or an "
        "entry with the reason in NOT_LAYER_TESTED)"
        for name in sorted(set(registered) - covered - set(exempt))
    ]
    problems += [
        f"{name}: in NOT_LAYER_TESTED but " + ("now layer-tested" if name in covered else "gone")
        for name in sorted(exempt)
        if name in covered or name not in registered
    ]
    return problems


def test_every_registered_dlkit_class_passes_run_layer_test_or_is_exempt():
    for package in DLKIT_PACKAGES:
        importlib.import_module(package)
    registered = registered_dlkit_classes(keras.saving.get_custom_objects())
    assert {"FiLM", "Transformer", "GreedyAction", "YoloHead"} <= set(registered)
    assert coverage_problems(registered, names_passed_to_run_layer_test(), NOT_LAYER_TESTED) == []


def test_the_coverage_guard_reports_a_new_layer_and_stale_exemptions():
    assert _LAYER_TEST_CALL.findall("run_layer_test(\n    keras.layers.Dense, {}") == ["Dense"]
    covered = names_passed_to_run_layer_test()
    assert {"GraphConv", "ChebConv", "SequenceGenerator", "GreedyAction"} <= covered

    class NewLayer(keras.layers.Layer):
        pass

    registered = registered_dlkit_classes(
        {"dlkit>NewLayer": NewLayer, "dlkit>a_function": len, "other>Old": Scale}
    )
    assert registered == {"NewLayer": NewLayer}  # other packages and non-classes are ignored
    (problem,) = coverage_problems(registered, covered, {})
    assert problem.startswith("NewLayer: registered but never passed to run_layer_test")
    stale = coverage_problems({"FiLM": Scale}, covered, {"FiLM": "", "Gone": ""})
    assert stale == [
        "FiLM: in NOT_LAYER_TESTED but now layer-tested",
        "Gone: in NOT_LAYER_TESTED but gone",
    ]
