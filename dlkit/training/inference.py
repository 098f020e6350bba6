"""Compiled inference for acting: numpy in, numpy out, microseconds per call.

An RL agent evaluates its network once per environment step, on a single observation or a
small vector of them. ``model.predict`` costs tens of milliseconds per call on TensorFlow and an
eager ``model(x)`` about a millisecond; ``compile_inference`` builds, once, the fastest call
each backend offers: ``jax.jit`` over ``model.stateless_call`` on JAX (the current weights are
passed in on every call, so training steps are seen without retracing), ``tf.function`` with a
batch-polymorphic input signature on TensorFlow, and on PyTorch a graph of ATen operations
traced once per input shape, which reads the current weights on every call (a model the tracer
cannot follow is called eagerly without autograd).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from dlkit.training.backend import backend_module

__all__ = ["CompiledInference", "compile_inference"]


class CompiledInference:
    """A model's inference as a numpy-in, numpy-out callable (see ``compile_inference``).

    Attributes:
        model: the wrapped model; its latest weights are used on every call.
        num_traces: how many times the backend traced (compiled) the function; it stays at 1
            while calls keep the same input shape and dtype (PyTorch traces once per input
            shape; 0 where it calls the model eagerly).
    """

    def __init__(self, model: keras.Layer, function: Callable, training: bool = False):
        self.model = model
        self.training = training
        self._function = function
        self.num_traces = 0

    def __call__(self, inputs) -> np.ndarray:
        return self._function(inputs)


def map_outputs(convert: Callable, outputs):
    """``convert`` applied to every tensor of a model's outputs, keeping their structure.

    A bare tensor, a tuple or list of tensors and a flat dict are mapped directly: at a few
    dozen microseconds per acting call, ``keras.tree.map_structure`` would be a sizeable share.
    """
    kind = type(outputs)
    if kind in (tuple, list, dict):
        leaves = outputs.values() if kind is dict else outputs
        if not any(isinstance(leaf, (tuple, list, dict)) for leaf in leaves):
            if kind is dict:
                return {key: convert(leaf) for key, leaf in outputs.items()}
            return kind(convert(leaf) for leaf in outputs)
    elif not isinstance(outputs, (tuple, list, dict)):
        return convert(outputs)
    return keras.tree.map_structure(convert, outputs)


def compile_inference(model: keras.Layer, training: bool = False) -> CompiledInference:
    """Compiles ``model``'s inference call (``training=False``) for fast repeated use.

    With ``training=True`` the call runs in training mode instead, and state the call changes
    is kept: each call of a network of ``dlkit.layers.NoisyDense`` layers then draws new noise
    (its seed generator advances on every backend), the exploring policy of a noisy DQN.

    Args:
        model: a built Keras model or layer taking one tensor input.
        training: whether to call the model in training mode. Defaults to False.

    Returns:
        A ``CompiledInference``: call it with a numpy array (batch first) to get a numpy array,
        or the model's structure (tuple, list, dict) of numpy arrays.

    Raises:
        TypeError: if ``model`` is not a Keras layer or model.
        ValueError: if ``model`` is not built.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> act = compile_inference(model)
    >>> act(np.zeros((1, 4), "float32")).shape
    (1, 2)
    """
    if not isinstance(model, keras.Layer):
        raise TypeError(f"Expected a Keras model or layer. Received: model={model!r}")
    if not model.built:
        raise ValueError(
            "Expected a built model (call it once or give it an Input). "
            f"Received: model={model.name!r} with built=False"
        )
    compiled = CompiledInference(model, function=None, training=bool(training))
    compiled._function = backend_module().inference_function(model, compiled)
    return compiled
