"""Many gradient steps of Keras' own training step in one compiled call.

Reinforcement-learning agents take hundreds of small gradient steps between short bursts of
acting: 128 steps on replayed minibatches every 256 environment steps for DQN, 20 passes over a
rollout for PPO. Called one at a time through ``train_on_batch``, each step pays Keras' and the
backend's per-call overhead (about a millisecond on a CPU), more than the arithmetic of a
small network. ``compile_train_steps`` runs a stack of K minibatches as K consecutive steps of
the model's ``train_step`` (its ``compute_loss``, optimizer and metrics, unchanged): a
``jax.lax.scan`` inside one ``jax.jit`` on JAX, a loop inside one ``tf.function`` on
TensorFlow, and on PyTorch a loop that replays one traced graph of the whole step (forward pass,
loss, gradients, optimizer update and metrics as plain ATen operations, traced once per
minibatch shape; a step the tracer cannot follow runs Keras' eager ``train_step``). The result
equals K calls of ``train_on_batch`` on the same minibatches.
"""

from __future__ import annotations

import keras
import numpy as np

from dlkit.training._versions import private_api_supported
from dlkit.training.backend import backend_module

__all__ = ["CompiledTrainSteps", "compile_train_steps"]


class CompiledTrainSteps:
    """Runs stacked minibatches as consecutive training steps (see ``compile_train_steps``).

    Attributes:
        model: the compiled Keras model trained.
        num_traces: how many times the backend traced the fused function (on PyTorch, the
            step, once per minibatch shape; 0 where the step runs eagerly).
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.num_traces = 0
        self._function = backend_module().train_steps_function(model, self)
        self._built = False

    def __call__(self, x, y=None) -> dict:
        """Takes K steps; `x` and every leaf of `y` are stacked minibatches (K, B, ...).

        Returns:
            The model's metrics after the K steps (Keras' loss tracker: the mean over them).
        """
        leaves = keras.tree.flatten((x, y))
        lengths = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
        if len(lengths) != 1 or None in lengths or not next(iter(lengths)):
            raise ValueError(
                "Expected `x` and `y` stacked along a first axis of the same length K >= 1 "
                f"(K minibatches). Received: leading axes {sorted(map(str, lengths))}"
            )
        if not self._built:
            first = keras.tree.map_structure(lambda leaf: leaf[0], (x, y))
            build_for_training(self.model, *first)
            self._built = True
        self.model.reset_metrics()
        logs = self._function(x, y)
        return {key: float(keras.ops.convert_to_numpy(value)) for key, value in logs.items()}


def build_for_training(model: keras.Model, x, y) -> None:
    """Creates every variable a training step of ``model`` on batches like ``(x, y)`` needs:
    the model's, its compiled loss's and its compiled metrics'.

    A compiled step (``jax.jit`` above all) must not create variables, so they are made first.
    Keras's ``fit`` does it with its private ``Model._symbolic_build``, symbolically; on Keras
    versions it was not checked against (``dlkit.training._versions``), one warning, and the
    public way instead: the model, ``compute_loss`` and ``compute_metrics`` called eagerly on
    the batch, after which every variable that existed before is given its value back (seed
    generators, metrics), so training draws the same numbers either way.
    """
    if private_api_supported("compile_train_steps model build", "keras"):
        model._symbolic_build(data_batch=(x, y, None))
        return
    x = keras.tree.map_structure(keras.ops.convert_to_tensor, x)
    y = keras.tree.map_structure(keras.ops.convert_to_tensor, y)
    saved = [(variable, keras.ops.copy(variable.value)) for variable in model.variables]
    saved += [(variable, keras.ops.copy(variable.value)) for variable in model.metrics_variables]
    y_pred = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    for variable, value in saved:
        variable.assign(value)


def compile_train_steps(model: keras.Model) -> CompiledTrainSteps:
    """Compiles K training steps of `model` on K stacked minibatches into one call.

    Args:
        model: a compiled Keras model (``model.compile(optimizer=...)`` done); its
            ``compute_loss`` and optimizer are used as in ``fit``.

    Returns:
        A ``CompiledTrainSteps``: call it with ``x`` of shape (K, B, ...) and ``y`` a structure
        of arrays (K, B, ...) to take K steps; it returns the metrics.

    Raises:
        TypeError: if `model` is not a Keras model.
        ValueError: if `model` is not compiled with an optimizer.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> steps = compile_train_steps(model)
    >>> logs = steps(np.ones((4, 8, 3), "float32"), np.zeros((4, 8, 1), "float32"))
    >>> int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    4
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model. Received: model={model!r}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "Expected a model compiled with an optimizer (model.compile(optimizer=...)). "
            f"Received: model={model.name!r} with optimizer=None"
        )
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return CompiledTrainSteps(model)
