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
