import importlib.util

import keras
import numpy as np
import pytest

from dlkit import export as export_module
from dlkit.export import ExportError, export, verify


def classifier():
    inputs = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def generator():
    inputs = keras.Input((8,), name="z")
    x = keras.layers.Dense(2 * 2 * 8, activation="relu")(inputs)
    x = keras.layers.Reshape((2, 2, 8))(x)  # (B, 2, 2, 8)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="tanh")(x)
    return keras.Model(inputs, outputs)  # (B, 8, 8, 1)


def policy():
    inputs = keras.Input((4,), name="observation")
    x = keras.layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


NETWORKS = {
    "classifier": (
        classifier,
        (8, 8, 1),
        lambda rng, n: rng.integers(0, 10, n),
        "sparse_categorical_crossentropy",
    ),
    "generator": (generator, (8,), lambda rng, n: rng.uniform(-1, 1, (n, 8, 8, 1)), "mse"),
    "policy": (policy, (4,), lambda rng, n: rng.normal(size=(n, 2)), "mse"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_trained_network_exports_to_both_formats(name, tmp_path):
    build, input_shape, targets, loss = NETWORKS[name]
    rng = np.random.default_rng(0)
    model = build()
    model.compile(optimizer="adam", loss=loss)
    x = rng.normal(size=(64, *input_shape)).astype("float32")
    model.fit(x, targets(rng, 64).astype("float32"), epochs=1, batch_size=16, verbose=0)
    batch = x[:5]  # a batch size never seen at export: the batch dimension is dynamic
    expected = keras.ops.convert_to_numpy(model(batch))
    saved_model = export(model, tmp_path / "saved_model")
    assert verify(saved_model, batch, expected, atol=1e-5) <= 1e-5
    onnx_file = export(model, tmp_path / "model.onnx", format="onnx")
    assert verify(onnx_file, batch, expected, atol=1e-5) <= 1e-5
    assert verify(onnx_file, x[:1], keras.ops.convert_to_numpy(model(x[:1])), atol=1e-5) <= 1e-5


def test_training_wrapper_is_rejected_naming_its_sub_models():
    from dlkit.training import AlternatingModel, Update

    class TwoNetworks(AlternatingModel):
        def __init__(self):
            super().__init__()
            self.generator = policy()
            self.discriminator = policy()

        def updates(self):
            loss = lambda x: keras.ops.mean(self.generator(x))  # noqa: E731
            return [Update("generator", self.generator.trainable_variables, loss)]

    with pytest.raises(
        ValueError,
        match=r"export one of its sub-models instead: model\.generator, model\.discriminator",
    ):
        export(TwoNetworks(), "unused")


def test_unknown_format_and_unbuilt_model_are_rejected():
    with pytest.raises(ValueError, match=r"format=.tflite."):
        export(policy(), "unused", format="tflite")
    with pytest.raises(ValueError, match=r"built model"):
        export(keras.Sequential([keras.layers.Dense(2)]), "unused")


def test_missing_package_names_what_to_install(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        export_module.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "tf2onnx" else real_find_spec(name, *args),
    )
    with pytest.raises(ImportError, match=r"needs tf2onnx: pip install tf2onnx"):
        export(policy(), "unused.onnx", format="onnx")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="in-process export is fast")
def test_verify_reports_a_mismatch(tmp_path):
    model = policy()
    batch = np.ones((2, 4), "float32")
    path = export(model, tmp_path / "m")
    with pytest.raises(ExportError, match="differ"):
        verify(path, batch, keras.ops.convert_to_numpy(model(batch)) + 1.0)
    with pytest.raises(ValueError, match=r"SavedModel directory or an \.onnx file"):
        verify(tmp_path, batch, batch)
