"""Gradients of a scalar function with respect to variables and input tensors, second-order
products, and functions of variables compiled for the backend.

This is the one entry point to backend autodiff for code outside ``dlkit/training/``: layer
tests (``dlkit.testing``), the input-gradient techniques of notes §4.8-4.11 (activation
maximisation, adversarial examples, deep dream, style transfer), which differentiate with
respect to the image instead of the weights, and the natural-gradient step of TRPO (notes
§9.2.3), which needs Hessian-vector products of the policies' mean KL divergence
(``hessian_vector_product``) inside one compiled call (``compile_function``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np

from dlkit.training.backend import backend_module


def _check_variables(variables) -> list:
    variables = list(variables)
    for index, variable in enumerate(variables):
        if not isinstance(variable, keras.Variable):
            raise TypeError(
                "Expected `variables` to hold keras.Variable objects. "
                f"Received: variables[{index}]={variable!r}"
            )
    return variables


def _scalar(fn: Callable) -> Callable:
    """``fn`` checked to return a scalar, reshaped to shape ()."""

    def scalar_fn(*args):
        value = fn(*args)
        shape = tuple(keras.ops.shape(value))
        if shape not in ((), (1,)):
            raise ValueError(
                f"Expected `fn` to return a scalar. Received: a value of shape {shape}"
            )
        return keras.ops.reshape(value, ())

    return scalar_fn


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
    variables = _check_variables(variables)
    inputs = [keras.ops.convert_to_tensor(x, dtype="float32") for x in inputs]
    return backend_module().value_and_grad(_scalar(fn), variables, inputs, list(state_variables))


def hessian_vector_product(
    fn: Callable, variables: Sequence[keras.Variable], vector, inputs: Sequence = ()
):
    """The Hessian of ``fn(*inputs)`` with respect to ``variables``, times ``vector``, exactly.

    H v is the derivative of the gradient along v, computed without forming H: on JAX by
    forward-mode differentiation of the reverse-mode gradient (``jax.jvp`` of ``jax.grad``),
    on TensorFlow and PyTorch by differentiating ∇f · v once more (double backward). It costs
    about two gradient evaluations, whatever the number of parameters; TRPO's conjugate
    gradient calls it once per iteration with the mean KL divergence as ``fn`` (its Hessian at
    the old policy is the Fisher information matrix, notes §9.2.3). It may be called inside a
    ``compile_function``.

    Args:
        fn: callable returning a scalar tensor; it receives the ``inputs`` and may read any
            Keras variable. It must be twice differentiable in ``variables``.
        variables: the Keras variables H is taken with respect to.
        vector: v, either one tensor or array per variable, of its shape, or one flat vector
            of their total size (the variables' values concatenated in order, each flattened).
        inputs: tensors passed to ``fn`` (not differentiated).

    Returns:
        H v in the form of ``vector``: a list of tensors of the variables' shapes, or one flat
        tensor. A variable ``fn`` does not reach contributes zeros.

    Raises:
        TypeError: if ``variables`` holds something other than Keras variables.
        ValueError: if ``vector`` does not match the variables' shapes or total size, or
            ``fn`` does not return a scalar.

    Example:

    >>> import keras
    >>> w = keras.Variable([1.0, 2.0])
    >>> product = hessian_vector_product(lambda: keras.ops.sum(w**3), [w], [[1.0, 1.0]])
    >>> keras.ops.convert_to_numpy(product[0]).tolist()   # diag(6 w) · (1, 1)
    [6.0, 12.0]
    """
    variables = _check_variables(variables)
    shapes = [tuple(variable.shape) for variable in variables]
    sizes = [int(np.prod(shape, dtype=np.int64)) for shape in shapes]
    flat = not isinstance(vector, (list, tuple))
    if flat:
        vector = keras.ops.convert_to_tensor(vector)
        if tuple(keras.ops.shape(vector)) != (sum(sizes),):
            raise ValueError(
                f"Expected `vector` to be flat, of the variables' total size {sum(sizes)}, or "
                "one tensor per variable. Received: vector of shape "
                f"{tuple(keras.ops.shape(vector))}"
            )
        vector = split_flat(vector, shapes)
    else:
        if len(vector) != len(variables):
            raise ValueError(
                f"Expected `vector` to hold one tensor per variable ({len(variables)}). "
                f"Received: {len(vector)} tensors"
            )
        vector = [
            keras.ops.convert_to_tensor(v, dtype=var.dtype) for v, var in zip(vector, variables)
        ]
        for index, (v, shape) in enumerate(zip(vector, shapes)):
            if tuple(keras.ops.shape(v)) != shape:
                raise ValueError(
                    f"Expected vector[{index}] of the shape {shape} of variables[{index}]. "
                    f"Received: shape {tuple(keras.ops.shape(v))}"
                )
    products = backend_module().hessian_vector_product(_scalar(fn), variables, vector, list(inputs))
    return flatten(products) if flat else list(products)


def flatten(tensors: Sequence) -> object:
    """The tensors, each flattened, concatenated into one vector (keras.ops)."""
    return keras.ops.concatenate([keras.ops.reshape(t, (-1,)) for t in tensors], axis=0)


def split_flat(vector, shapes: Sequence[tuple]) -> list:
    """The inverse of ``flatten``: ``vector`` cut into tensors of ``shapes`` (keras.ops)."""
    pieces, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        pieces.append(keras.ops.reshape(vector[start : start + size], shape))
        start += size
    return pieces


class CompiledFunction:
    """A function of Keras variables compiled for the backend (see ``compile_function``).

    Attributes:
        num_traces: how many times the backend traced the function (0 on PyTorch, which runs
            it eagerly).
    """

    def __init__(self, fn: Callable, variables: Sequence[keras.Variable]):
        self.num_traces = 0
        self._function = backend_module().compile_function(fn, list(variables), self)

    def __call__(self, *inputs):
        """``fn(*inputs)`` with the variables' current values, as backend tensors."""
        return self._function(*inputs)


def compile_function(fn: Callable, variables: Sequence[keras.Variable]) -> CompiledFunction:
    """Compiles ``fn(*inputs)``, a function of tensors and of Keras variables, into one call.

    Inside, ``fn`` may use ``value_and_grad`` and ``hessian_vector_product``: an algorithm
    with many small steps (TRPO's conjugate gradient) then runs as one program on JAX
    (``jax.jit``) and TensorFlow (``tf.function``) instead of one dispatch per operation;
    PyTorch runs ``fn`` as it is. Each call reads the variables' current values, so weights
    assigned between calls are used without retracing.

    Args:
        fn: callable of tensors returning a tensor or a structure of tensors; it must not
            assign to variables.
        variables: every Keras variable ``fn`` reads. On JAX the values of variables left out
            would be frozen into the program when it is traced.

    Returns:
        A ``CompiledFunction``; call it with the inputs (backend tensors or arrays of fixed
        shapes: each new shape traces again).

    Example:

    >>> import keras
    >>> w = keras.Variable([1.0, 2.0])
    >>> double = compile_function(lambda x: w * x * 2.0, [w])
    >>> _ = w.assign([3.0, 4.0])
    >>> keras.ops.convert_to_numpy(double(keras.ops.ones((2,)))).tolist()
    [6.0, 8.0]
    """
    return CompiledFunction(fn, _check_variables(variables))


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
