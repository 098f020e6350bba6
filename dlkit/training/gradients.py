"""Gradients of a scalar function with respect to variables and input tensors.

This is the one entry point to backend autodiff for code outside ``dlkit/training/``: layer
tests (``dlkit.testing``), and later input-gradient techniques of notes §4.8-4.11 (activation
maximisation, adversarial examples, deep dream, style transfer), which differentiate with
respect to the image instead of the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from dlkit.training.backend import backend_module


def value_and_grad(
    fn: Callable,
    variables: Sequence[keras.Variable] = (),
    inputs: Sequence = (),
    state_variables: Sequence[keras.Variable] = (),
):
    """Evaluates ``fn(*inputs)`` and its gradient with respect to variables and inputs.

    The same call works on every backend. On JAX the function is traced statelessly, so
    variables that ``fn`` assigns to (batch-norm statistics, ``SeedGenerator`` states) must be
    named in ``state_variables`` to have their new values written back, as TensorFlow and
    PyTorch do in place.

    Args:
        fn: callable returning a scalar tensor. It receives the ``inputs`` as positional
            arguments and may read any Keras variable.
        variables: Keras variables to differentiate with respect to.
        inputs: tensors or arrays to differentiate with respect to; they are converted to
            float tensors of the active backend and passed to ``fn``.
        state_variables: non-differentiated variables that ``fn`` updates (JAX only needs them).

    Returns:
        ``(value, variable_gradients, input_gradients)``: the scalar value, and two lists of
        gradients with the shapes of ``variables`` and ``inputs``. A variable that ``fn`` does
        not use gets a zero gradient.

    Example:

    >>> import keras
    >>> w = keras.Variable([1.0, 2.0])
    >>> value, (dw,), (dx,) = value_and_grad(
    ...     lambda x: keras.ops.sum(w * x * x), [w], [keras.ops.ones((2,))])
    >>> keras.ops.convert_to_numpy(dx).tolist()
    [2.0, 4.0]
    """
    variables = list(variables)
    for index, variable in enumerate(variables):
        if not isinstance(variable, keras.Variable):
            raise TypeError(
                "Expected `variables` to hold keras.Variable objects. "
                f"Received: variables[{index}]={variable!r}"
            )
    inputs = [keras.ops.convert_to_tensor(x, dtype="float32") for x in inputs]

    def scalar_fn(*args):
        value = fn(*args)
        shape = tuple(keras.ops.shape(value))
        if shape not in ((), (1,)):
            raise ValueError(
                f"Expected `fn` to return a scalar. Received: a value of shape {shape}"
            )
        return keras.ops.reshape(value, ())

    return backend_module().value_and_grad(scalar_fn, variables, inputs, list(state_variables))


class CompiledGradients:
    """The gradient of a model's training loss at parameter values held outside the model.

    ``compiled(values, x, y)`` evaluates ``model.compute_loss(x, y, model(x, training=True))``
    with the model's trainable variables read from ``values`` (arrays of their shapes, in the
    order of ``model.trainable_variables``) instead of the variables, and returns the loss and
    its gradient with respect to those values; the model's variables are neither read nor
    changed. Several threads may call it at once, each with its own values: the asynchronous
    actor-learners of `dlkit.rl.A3C` differentiate at their local copies of the shared
    parameters [notes §9.2.2]. Built by ``compile_gradients``: one ``jax.jit`` of a stateless
    function on JAX, one ``tf.function`` on TensorFlow, autograd on PyTorch.

    Attributes:
        model: the model differentiated.
        variables: its trainable variables, the order of ``values`` and of the gradients.
        num_traces: how many times the backend traced the function (0 on PyTorch).
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.variables = list(model.trainable_variables)
        self.num_traces = 0
        self._function = backend_module().gradients_function(model, self)
        self._apply = None

    def loss(self, x, y):
        """The model's training loss on ``(x, y)``, with the variables as they are read."""
        y_pred = self.model(x, training=True)
        return self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)

    def snapshot(self) -> list:
        """Copies of the trainable variables' current values: a local copy of the parameters."""
        return [
            keras.ops.copy(keras.ops.stop_gradient(variable.value)) for variable in self.variables
        ]

    def __call__(self, values, x, y) -> tuple[float, list]:
        """``(loss, gradients)`` at ``values``; the gradients are backend tensors."""
        if len(values) != len(self.variables):
            raise ValueError(
                f"Expected one value per trainable variable ({len(self.variables)}). "
                f"Received: {len(values)} values"
            )
        loss, gradients = self._function(list(values), x, y)
        return float(keras.ops.convert_to_numpy(loss)), list(gradients)

    def apply(self, gradients) -> None:
        """Applies ``gradients`` to the model's trainable variables with ``model.optimizer``
        (built on first use), in one compiled call on JAX and TensorFlow. Not thread-safe:
        callers applying from several threads hold a lock around it."""
        if self._apply is None:
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is None:
                raise ValueError("Expected a compiled model (with an optimizer) to apply to.")
            if not optimizer.built:
                optimizer.build(self.variables)
            self._apply = backend_module().apply_function(self.model, self)
        self._apply(list(gradients))


def compile_gradients(model: keras.Model) -> CompiledGradients:
    """The compiled gradient of ``model``'s training loss at given parameter values.

    Args:
        model: a built ``keras.Model`` whose ``compute_loss(x, y, y_pred)`` gives its loss.

    Returns:
        A ``CompiledGradients``: ``(loss, gradients) = compiled(values, x, y)``.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(loss="mse")
    >>> gradient = compile_gradients(model)
    >>> values = [np.ones((2, 1), "float32"), np.zeros((1,), "float32")]
    >>> loss, (kernel, bias) = gradient(values, np.ones((4, 2), "float32"), np.zeros((4, 1)))
    >>> loss  # (1 + 1 - 0)² on every row
    4.0
    """
    return CompiledGradients(model)
