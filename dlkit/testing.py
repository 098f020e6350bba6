"""Test helpers for layers and models, usable from any project's test suite.

``run_layer_test`` runs the checks every dlkit layer and model must pass, in the spirit of
Keras' own layer-test helper, on whichever backend ``KERAS_BACKEND`` selects:

1. the output has the expected shape (and values, when given);
2. the layer creates the expected numbers of trainable and non-trainable weights;
3. ``get_config`` / ``from_config`` rebuilds an equal configuration and, given the same
   weights, identical outputs;
4. a ``.keras`` save and load round trip restores a model with identical outputs;
5. one training step produces finite gradients, non-zero for every trainable weight, and an
   optimizer step changes the weights and leaves them finite.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from dlkit.training import value_and_grad

__all__ = ["run_layer_test"]


def run_layer_test(
    layer_cls: type,
    init_kwargs: dict | None = None,
    input_data: Any = None,
    input_shape: Sequence | None = None,
    expected_output_shape: Any = None,
    expected_num_trainable_weights: int | None = None,
    expected_num_non_trainable_weights: int | None = None,
    expected_output: Any = None,
    call_kwargs: dict | None = None,
    run_training_check: bool = True,
    run_saving_check: bool = True,
    allow_zero_gradients: Sequence[str] = (),
    seed: int = 0,
    atol: float = 1e-6,
    rtol: float = 1e-6,
) -> keras.Layer:
    """Checks a layer (or model) class end to end and returns the tested instance.

    Args:
        layer_cls: the ``keras.Layer`` or ``keras.Model`` subclass to test.
        init_kwargs: constructor arguments.
        input_data: the call's input: an array, or a tuple/list of positional arguments,
            each an array or a nested tuple/dict of arrays (``[(a, b)]`` passes one tuple).
            Give either this or ``input_shape``.
        input_shape: a shape tuple (or a tuple of shape tuples for several inputs) from which
            standard-normal float32 inputs are drawn with ``seed``.
        expected_output_shape: the output shape, or a nested tuple/list/dict of shapes
            matching the output structure.
        expected_num_trainable_weights: number of ``layer.trainable_weights`` after the call.
        expected_num_non_trainable_weights: number of ``layer.non_trainable_weights``.
        expected_output: values the output must equal within ``atol``/``rtol``.
        call_kwargs: extra keyword arguments of every call (``mask=...``, ...).
        run_training_check: whether to take one training step (skip for weightless layers).
        run_saving_check: whether to run the ``.keras`` round trip.
        allow_zero_gradients: names (``variable.path`` substrings) of trainable weights whose
            gradient may legitimately be zero for this input.
        seed: seed for generated inputs and Keras' global RNG.
        atol: absolute tolerance of output comparisons.
        rtol: relative tolerance of output comparisons.

    Returns:
        The built layer instance that was tested.

    Raises:
        TypeError: if ``layer_cls`` is not a Keras layer class, or inputs have a bad type.
        ValueError: if neither or both of ``input_data`` and ``input_shape`` are given.
        AssertionError: if a check fails; the message says which and what was received.

    Example:

    >>> import keras
    >>> layer = run_layer_test(
    ...     keras.layers.Dense, {"units": 3}, input_shape=(2, 4),
    ...     expected_output_shape=(2, 3), expected_num_trainable_weights=2,
    ...     expected_num_non_trainable_weights=0)
    >>> tuple(layer.kernel.shape)
    (4, 3)
    """
    if not (isinstance(layer_cls, type) and issubclass(layer_cls, keras.Layer)):
        raise TypeError(
            f"Expected `layer_cls` to be a keras.Layer subclass. Received: layer_cls={layer_cls!r}"
        )
    init_kwargs = dict(init_kwargs or {})
    call_kwargs = dict(call_kwargs or {})
    keras.utils.set_random_seed(seed)
    inputs = _make_inputs(input_data, input_shape, seed)

    layer = layer_cls(**init_kwargs)
    outputs = layer(*inputs, **call_kwargs)

    if expected_output_shape is not None:
        _check_shapes(outputs, expected_output_shape)
    if expected_output is not None:
        _check_close(outputs, expected_output, atol, rtol, "output vs expected_output")
    _check_count(layer.trainable_weights, expected_num_trainable_weights, "trainable")
    _check_count(layer.non_trainable_weights, expected_num_non_trainable_weights, "non-trainable")

    _check_config_round_trip(layer, layer_cls, inputs, call_kwargs, atol, rtol)
    if run_saving_check:
        _check_saving_round_trip(layer, inputs, call_kwargs, atol, rtol)
    if run_training_check:
        _check_training_step(layer, inputs, call_kwargs, allow_zero_gradients)
    return layer


def _make_inputs(input_data, input_shape, seed) -> list:
    if (input_data is None) == (input_shape is None):
        raise ValueError(
            "Expected exactly one of `input_data` and `input_shape`. "
            f"Received: input_data={type(input_data).__name__}, input_shape={input_shape!r}"
        )
    if input_shape is not None:
        rng = np.random.default_rng(seed)
        shapes = input_shape if isinstance(input_shape[0], (tuple, list)) else [input_shape]
        return [rng.standard_normal(tuple(shape)).astype("float32") for shape in shapes]
    items = list(input_data) if isinstance(input_data, (tuple, list)) else [input_data]
    for index, item in enumerate(items):
        for leaf in keras.tree.flatten(item):
            if not hasattr(leaf, "shape"):
                raise TypeError(
                    "Expected `input_data` to be an array, or a tuple/list of call arguments "
                    "each an array or a nested structure of arrays. "
                    f"Received: input_data[{index}] holding {type(leaf).__name__}"
                )
    return items


def _to_numpy_structure(outputs):
    return keras.tree.map_structure(lambda x: np.asarray(keras.ops.convert_to_numpy(x)), outputs)


def _check_shapes(outputs, expected_output_shape) -> None:
    if isinstance(expected_output_shape, (tuple, list)) and all(
        isinstance(dim, int) or dim is None for dim in expected_output_shape
    ):
        expected_output_shape = tuple(expected_output_shape)
        received = tuple(keras.ops.shape(outputs))
        if received != expected_output_shape:
            raise AssertionError(
                f"Output shape mismatch. Expected: {expected_output_shape}. Received: {received}"
            )
        return
    if isinstance(expected_output_shape, dict):
        if not isinstance(outputs, dict) or set(outputs) != set(expected_output_shape):
            raise AssertionError(
                f"Output structure mismatch. Expected keys {sorted(expected_output_shape)}. "
                f"Received: {type(outputs).__name__}"
            )
        for key, shape in expected_output_shape.items():
            _check_shapes(outputs[key], shape)
        return
    if not isinstance(outputs, (tuple, list)) or len(outputs) != len(expected_output_shape):
        raise AssertionError(
            f"Output structure mismatch. Expected {len(expected_output_shape)} outputs. "
            f"Received: {type(outputs).__name__}"
        )
    for output, shape in zip(outputs, expected_output_shape):
        _check_shapes(output, shape)


def _check_close(received, expected, atol, rtol, what) -> None:
    received_flat = keras.tree.flatten(_to_numpy_structure(received))
    expected_flat = keras.tree.flatten(_to_numpy_structure(expected))
    if len(received_flat) != len(expected_flat):
        raise AssertionError(
            f"{what}: structure mismatch. Expected {len(expected_flat)} tensors. "
            f"Received: {len(received_flat)}"
        )
    for index, (a, b) in enumerate(zip(received_flat, expected_flat)):
        if a.shape != b.shape or not np.allclose(a, b, atol=atol, rtol=rtol):
            difference = np.max(np.abs(a - b)) if a.shape == b.shape else "shape differs"
            raise AssertionError(
                f"{what}: tensor {index} differs (max abs difference {difference}, "
                f"atol={atol}, rtol={rtol})."
            )


def _check_count(weights, expected, kind) -> None:
    if expected is not None and len(weights) != expected:
        raise AssertionError(
            f"Expected {expected} {kind} weights. Received: {len(weights)} "
            f"({[w.path for w in weights]})"
        )


def _check_config_round_trip(layer, layer_cls, inputs, call_kwargs, atol, rtol) -> None:
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    if clone.get_config() != config:
        raise AssertionError(
            "get_config/from_config round trip changed the configuration. "
            f"Expected: {config}. Received: {clone.get_config()}"
        )
    clone(*inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    _check_close(
        clone(*inputs, **call_kwargs),
        layer(*inputs, **call_kwargs),
        atol,
        rtol,
        "from_config clone with copied weights",
    )


def _check_saving_round_trip(layer, inputs, call_kwargs, atol, rtol) -> None:
    if isinstance(layer, keras.Model):
        model = layer
    else:
        symbolic_inputs = keras.tree.map_structure(
            lambda x: keras.Input(shape=np.shape(x)[1:], dtype=_dtype(x)), inputs
        )
        model = keras.Model(symbolic_inputs, layer(*symbolic_inputs, **call_kwargs))
        call_kwargs = {}
    expected = model(*inputs, **call_kwargs) if model is layer else model(inputs)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    received = restored(*inputs, **call_kwargs) if model is layer else restored(inputs)
    _check_close(received, expected, atol, rtol, ".keras save/load round trip")


def _dtype(x) -> str:
    return str(keras.backend.standardize_dtype(x.dtype))


def _check_training_step(
    layer: keras.Layer, inputs: list, call_kwargs: dict, allow_zero_gradients: Sequence[str]
) -> None:
    variables = list(layer.trainable_variables)
    if not variables:
        raise AssertionError(
            "run_training_check=True but the layer has no trainable weights; "
            "pass run_training_check=False for weightless layers."
        )
    tensors = keras.tree.map_structure(keras.ops.convert_to_tensor, inputs)

    def loss_fn() -> Any:
        outputs = layer(*tensors, **call_kwargs, **_training_kwarg(layer))
        outputs = keras.tree.flatten(outputs)
        floats = [o for o in outputs if "float" in keras.backend.standardize_dtype(o.dtype)]
        return sum(keras.ops.mean(keras.ops.square(o)) for o in floats)

    non_trainable = [v for v in layer.variables if not v.trainable]
    _, gradients, _ = value_and_grad(loss_fn, variables, state_variables=non_trainable)
    for variable, gradient in zip(variables, gradients):
        gradient = keras.ops.convert_to_numpy(gradient)
        if not np.all(np.isfinite(gradient)):
            raise AssertionError(f"Non-finite gradient for weight {variable.path}.")
        allowed = any(name in variable.path for name in allow_zero_gradients)
        if not allowed and not np.any(gradient):
            raise AssertionError(
                f"Zero gradient for trainable weight {variable.path}: it does not influence the "
                "output (or pass its name in allow_zero_gradients)."
            )
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    keras.optimizers.SGD(learning_rate=0.01).apply(gradients, variables)
    changed = False
    for variable, old in zip(variables, before):
        new = keras.ops.convert_to_numpy(variable)
        if not np.all(np.isfinite(new)):
            raise AssertionError(f"Weight {variable.path} is not finite after a training step.")
        changed = changed or not np.array_equal(new, old)
    if not changed:
        raise AssertionError("An optimizer step left every trainable weight unchanged.")


def _training_kwarg(layer: keras.Layer) -> dict:
    # Layers that behave differently in training (dropout, noise) take `training=True` here.
    accepts_training: Callable | bool = getattr(layer, "_call_has_training_arg", False)
    return {"training": True} if accepts_training else {}
