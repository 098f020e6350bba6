"""Export inference networks to TensorFlow SavedModel or ONNX from any backend.

A network trained on TensorFlow is exported in-process with ``model.export``. A network trained
on JAX or PyTorch is first saved as a backend-neutral ``.keras`` file, which a short
TensorFlow-backend subprocess loads and exports; the result is the same plain TensorFlow graph
whichever backend trained it (on PyTorch no in-process route exists: Keras' SavedModel export
needs torch_xla). ONNX files are converted from that graph with tf2onnx.

Every export has a dynamic batch dimension. A SavedModel serves the endpoint ``serve`` (also
registered as the ``serving_default`` signature for TensorFlow Serving); an ONNX model takes the
network's input by its Keras input name. ``verify`` reloads an export and compares its outputs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

from dlkit.validation import check_choice

__all__ = ["FORMATS", "ExportError", "export", "verify"]

FORMATS = ("saved_model", "onnx")
_KERAS_FORMAT = {"saved_model": "tf_saved_model", "onnx": "onnx"}
_REQUIREMENTS = {
    "saved_model": (("tensorflow", "tensorflow"),),
    "onnx": (("tensorflow", "tensorflow"), ("tf2onnx", "tf2onnx"), ("onnx", "onnx")),
}


class ExportError(RuntimeError):
    """An export that could not be written, or whose reloaded outputs differ."""


def export(model: keras.Model, path: str | os.PathLike, format: str = "saved_model") -> Path:
    """Exports an inference network for serving.

    Args:
        model: a built, called Keras model mapping inputs to outputs: a classifier, a
            generator or decoder, a policy. Not a training wrapper such as a GAN (export its
            generator instead).
        path: the SavedModel directory, or the ``.onnx`` file, to write.
        format: ``"saved_model"`` or ``"onnx"``.

    Returns:
        The path written.

    Raises:
        ValueError: for an unknown format, a model that was never built, or a training
            wrapper without a single inference graph (the message names its sub-models).
        ImportError: if a package the format needs is not installed (the message says which).
        ExportError: if the exporting subprocess fails.

    Example:

        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> path = export(model, "policy_savedmodel")  # doctest: +SKIP
    """
    check_choice("format", format, FORMATS)
    _check_exportable(model)
    _check_installed(format)
    path = Path(path)
    if keras.backend.backend() == "tensorflow":
        _export_in_process(model, path, format)
        return path
    with tempfile.TemporaryDirectory() as directory:
        keras_file = Path(directory) / "model.keras"
        model.save(keras_file)
        modules = sorted({type(layer).__module__ for layer in model._flatten_layers()})
        _export_in_subprocess(keras_file, path, format, modules)
    return path


def _check_exportable(model) -> None:
    if not isinstance(model, keras.Layer):
        raise ValueError(f"Expected a Keras model. Received: model={model!r}")
    from dlkit.training import AlternatingModel

    if isinstance(model, AlternatingModel):
        # On PyTorch, sub-modules live in torch's `_modules` rather than the instance dict.
        attributes = {**vars(model), **(vars(model).get("_modules") or {})}
        sub_models = [
            name
            for name, value in attributes.items()
            if isinstance(value, keras.Model) and not name.startswith("_")
        ]
        raise ValueError(
            f"Expected an inference network. Received: {type(model).__name__}, a training "
            "wrapper of several networks with no single inference graph; export one of its "
            f"sub-models instead: {', '.join('model.' + name for name in sub_models)}"
        )
    if not model.built:
        raise ValueError(
            f"Expected a built model (call it once or give it an Input). Received: {model.name!r}"
        )


def _check_installed(format: str) -> None:
    missing = [
        package
        for module, package in _REQUIREMENTS[format]
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        extra = "" if format == "saved_model" else "[onnx]"
        raise ImportError(
            f"Exporting to {format} needs {', '.join(missing)}: "
            f"pip install {' '.join(missing)}  (or pip install 'dlkit{extra}')"
        )


def _export_in_process(model, path: Path, format: str) -> None:
    if not getattr(model, "_called", True):
        # Keras derives the export signature from a first call.
        # Unknown sizes (a variable sequence length) get 1 for this one call.
        inputs = [
            np.zeros((1, *(size or 1 for size in spec.shape[1:])), spec.dtype)
            for spec in model.inputs
        ]
        model(inputs[0] if len(inputs) == 1 else inputs)
    model.export(str(path), format=_KERAS_FORMAT[format], verbose=False)


def _export_in_subprocess(keras_file: Path, path: Path, format: str, modules: list[str]) -> None:
    environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    arguments = json.dumps(
        {"keras_file": str(keras_file), "path": str(path), "format": format, "modules": modules}
    )
    completed = subprocess.run(
        [sys.executable, "-m", "dlkit.export", arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=900,
    )
    if completed.returncode != 0:
        raise ExportError(
            f"Exporting {keras_file.name} to {format} in a TensorFlow subprocess failed:\n"
            + completed.stderr[-4000:]
        )


def _load_and_export(arguments: dict) -> None:
    """Subprocess side: import the modules defining custom layers, load, export."""
    for module in arguments["modules"]:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    model = keras.saving.load_model(arguments["keras_file"], compile=False)
    _export_in_process(model, Path(arguments["path"]), arguments["format"])


def verify(path: str | os.PathLike, inputs, expected, atol: float = 1e-5) -> float:
    """Reloads an export, runs it on ``inputs`` and compares with ``expected``.

    A SavedModel is reloaded with ``tf.saved_model.load`` and called through its ``serve``
    endpoint; an ``.onnx`` file runs in ONNX Runtime.

    Args:
        path: a SavedModel directory or an ``.onnx`` file written by ``export``.
        inputs: a numpy array batch (or a list of arrays for several inputs).
        expected: the outputs the original model gave for ``inputs``.
        atol: the largest absolute difference allowed.

    Returns:
        The largest absolute difference found.

    Raises:
        ExportError: if the difference exceeds ``atol`` or the output shapes differ.
        ValueError: if ``path`` is neither a SavedModel directory nor an ``.onnx`` file.
    """
    path = Path(path)
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    inputs = [np.asarray(x) for x in inputs]
    if path.suffix == ".onnx" and path.is_file():
        _check_installed("onnx")
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
        outputs = session.run(None, feed)
    elif (path / "saved_model.pb").is_file():
        import tensorflow as tf

        restored = tf.saved_model.load(str(path))  # keep a reference while serving
        tensors = [tf.constant(x) for x in inputs]
        # A network with several inputs serves them as one list argument, as Keras exports it.
        result = restored.serve(tensors if len(tensors) > 1 else tensors[0])
        outputs = [np.asarray(t) for t in keras.tree.flatten(result)]
    else:
        raise ValueError(
            f"Expected a SavedModel directory or an .onnx file. Received: path={str(path)!r}"
        )
    expected = [np.asarray(e) for e in keras.tree.flatten(expected)]
    if len(outputs) != len(expected) or any(o.shape != e.shape for o, e in zip(outputs, expected)):
        raise ExportError(
            f"Output shapes differ: export gives {[o.shape for o in outputs]}, expected "
            f"{[e.shape for e in expected]}"
        )
    difference = max(
        float(np.max(np.abs(o - e))) if o.size else 0.0 for o, e in zip(outputs, expected)
    )
    if difference > atol:
        raise ExportError(
            f"Exported outputs differ from the expected ones by up to {difference:.3g} "
            f"(atol={atol})."
        )
    return difference


if __name__ == "__main__":
    _load_and_export(json.loads(sys.argv[1]))
