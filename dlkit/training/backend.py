"""The interface every backend module of ``dlkit.training`` provides, and the selection of the
module matching the active Keras backend.

``_tensorflow.py``, ``_jax.py`` and ``_torch.py`` each provide the functions of
``BackendModule``; ``backend_module()`` returns the one for ``keras.backend.backend()``. A new
backend adds a module with the same functions (``tests/training/test_backend.py`` checks every
importable module against the protocol) and an entry in ``_BACKEND_MODULES``. Speed paths that
read private APIs live in their own modules beside these (``_torch_tracing.py``,
``_tensorflow_fast.py``), behind an environment switch and the version gates of
``_versions.py``; the backend module falls back to its plain path without them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import keras

_BACKEND_MODULES = {
    "tensorflow": "dlkit.training._tensorflow",
    "jax": "dlkit.training._jax",
    "torch": "dlkit.training._torch",
}


@runtime_checkable
class BackendModule(Protocol):
    """The functions of one backend module of ``dlkit.training``.

    ``model`` below is a ``keras.Model``; an "alternating" one is an ``AlternatingModel``,
    whose ``_resolved_updates()`` lists its (update, optimizer, loss tracker) turns and
    ``_checked_loss(update, data)`` evaluates one turn's scalar loss.
    """

    def value_and_grad(
        self,
        fn: Callable,
        variables: Sequence[keras.Variable],
        inputs: Sequence[Any],
        state_variables: Sequence[keras.Variable],
    ) -> tuple[Any, list, list]:
        """``(fn(*inputs), gradients of variables, gradients of inputs)``.

        ``inputs`` are float tensors of the backend; ``fn`` returns a scalar. A variable or
        input ``fn`` does not reach gets a zero gradient. Variables in ``state_variables`` that
        ``fn`` assigns keep their new values afterwards (in place on TensorFlow and PyTorch,
        written back on JAX).
        """

    def hessian_vector_product(
        self,
        fn: Callable,
        variables: Sequence[keras.Variable],
        vectors: Sequence[Any],
        inputs: Sequence[Any],
    ) -> list:
        """H v: the Hessian of the scalar ``fn(*inputs)`` with respect to ``variables`` times
        ``vectors`` (one tensor per variable, of its shape), exactly, by differentiating the
        gradient again; one tensor per variable. A variable ``fn`` does not reach gets zeros."""

    def compile_function(
        self, fn: Callable, variables: Sequence[keras.Variable], compiled: Any
    ) -> Callable:
        """``fn`` compiled for the backend (``jax.jit``, ``tf.function``; PyTorch runs it as
        it is), reading the current values of ``variables`` on every call; counts its traces in
        ``compiled.num_traces``."""

    def list_devices(self) -> list[str]:
        """The devices the backend computes on, as ``"kind:index"`` (``"cpu:0"``)."""

    def alternating_train_step(self, model: keras.Model, *step_arguments: Any) -> Any:
        """One training step of an alternating model, given what Keras's ``train_step``
        receives: the batch ``data``, or on JAX ``(state, data)``.

        Each update, in order and ``repetitions`` times, differentiates its loss with respect
        to its own variables only, applies its optimizer and updates its loss tracker; then
        ``model.optimizer.iterations`` grows by one. Returns ``model.get_metrics_result()``
        (on JAX, whose trainer is stateless, ``(logs, state)``).
        """

    def alternating_test_step(self, model: keras.Model, *step_arguments: Any) -> Any:
        """Every update's loss on the batch into its tracker, no weight changed; the metrics
        (the step's arguments and result as in ``alternating_train_step``)."""

    def inference_function(self, model: keras.Layer, compiled: Any) -> Callable:
        """The fastest numpy-in, numpy-out call of ``model`` (``compiled.training`` mode).

        It reads the model's current weights on every call, keeps the structure of the outputs
        (``inference.map_outputs``) and counts its traces in ``compiled.num_traces``.
        """

    def train_steps_function(self, model: keras.Model, compiled: Any) -> Callable:
        """``call(x, y)``: K steps of ``model.train_step`` on K stacked minibatches.

        The model is built (``steps.build_for_training``) and its metrics reset before the
        call; the result equals K calls of ``train_on_batch``. Returns the metrics; counts its
        traces in ``compiled.num_traces``.
        """

    def fused_fit_function(self, model: keras.Model, runner: Any) -> Callable:
        """The function Keras's ``fit`` calls once per K steps on the fused path
        (``fused.FusedRunner``), with the arguments Keras's trainer of this backend passes
        (JAX: ``(state, iterator) -> (logs, state)``; TensorFlow: ``(iterator) -> logs``;
        PyTorch: ``(batches) -> logs``). It ignores what Keras hands it and runs one training
        step per batch of each stack ``runner.call_batches()`` yields, compiled as for
        ``train_steps_function``; counts its traces in ``runner.num_traces``."""

    def gradients_function(self, model: keras.Model, compiled: Any) -> Callable:
        """``call(values, x, y)``: ``(loss, gradients)`` of ``compiled.loss(x, y)`` with
        ``compiled.variables`` read from ``values``, for ``gradients.CompiledGradients``; safe
        to call from several threads at once. Counts its traces in ``compiled.num_traces``."""

    def apply_function(self, model: keras.Model, compiled: Any) -> Callable:
        """``call(gradients)``: ``model.optimizer.apply(gradients, compiled.variables)``,
        compiled (for ``gradients.CompiledGradients.apply``); the optimizer is built. Counts its
        traces in ``compiled.num_traces``."""

    def fit_train_function(self, model: keras.Model) -> Callable | None:
        """A function for ``fit`` to call once per batch with the data iterator, or ``None``
        for Keras's own ``make_train_function``."""

    def fit_arguments(self, model: keras.Model, arguments: dict) -> dict:
        """``fit``'s keyword arguments (every one of ``keras.Model.fit``, by name), possibly with
        ``x`` replaced by a leaner input pipeline that yields the same batches."""

    def enable_compilation_cache(self, directory: Path, min_compile_seconds: float) -> str | None:
        """Turns on a persistent cache of compiled programs in ``directory``; returns the
        directory, or ``None`` where the backend keeps no such cache."""

    def run_rnn(
        self, rnn: keras.layers.RNN, inputs: Any, initial_state: Any, mask: Any, training: Any
    ) -> list:
        """``rnn``'s outputs and final states as ``rnn(inputs, ...)`` with ``return_state``
        gives them, with the loop that is fastest on the backend (``recurrence.run_rnn``)."""


def has_convolution(model) -> bool:
    """Whether a layer of ``model`` (nested models included) is a convolution."""
    stack, seen = [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if any("Conv" in cls.__name__ for cls in type(layer).__mro__):
            return True
        stack.extend(getattr(layer, "layers", ()))
    return False


def backend_module() -> BackendModule:
    """Returns the dlkit module implementing autodiff for the active Keras backend."""
    name = keras.backend.backend()
    if name not in _BACKEND_MODULES:
        raise ValueError(
            "dlkit supports the tensorflow, jax and torch backends. "
            f"Received: KERAS_BACKEND={name!r}"
        )
    return importlib.import_module(_BACKEND_MODULES[name])


def list_devices() -> list[str]:
    """Lists the devices the active backend computes on, such as ``["cpu:0", "cuda:0"]``."""
    return backend_module().list_devices()


def enable_compilation_cache(
    directory: str | os.PathLike | None = None, min_compile_seconds: float = 0.01
) -> str | None:
    """Keeps compiled programs on disk, so that a new process or a new model of the same shape
    loads them instead of compiling again.

    On JAX this turns on XLA's persistent compilation cache for every program that took at
    least ``min_compile_seconds`` to compile. JAX's own threshold, 1 s, leaves out everything a
    small network compiles: its fused training steps (0.3-0.8 s on CPU), its acting functions
    (about 45 ms) and the zero-filled optimizer moments (about 20 ms per shape). A second run of
    an agent with the same network and settings then loads them instead of compiling.
    TensorFlow and PyTorch keep no such cache: their traced steps compile in well under a
    second, and the call does nothing.

    Args:
        directory: where to keep the programs. Defaults to ``$DLKIT_CACHE_DIR/jax``, or
            ``~/.cache/dlkit/jax`` without that variable.
        min_compile_seconds: programs that compiled faster than this are not written.
            Defaults to 0.01.

    Returns:
        The cache directory on JAX; None on TensorFlow and PyTorch.

    Raises:
        ValueError: if ``min_compile_seconds`` is negative.

    Example:

    >>> import dlkit.training
    >>> location = dlkit.training.enable_compilation_cache("runs/.jax-cache")  # doctest: +SKIP
    """
    if not min_compile_seconds >= 0:
        raise ValueError(
            "Expected min_compile_seconds >= 0. "
            f"Received: min_compile_seconds={min_compile_seconds!r}"
        )
    if directory is None:
        root = os.environ.get("DLKIT_CACHE_DIR") or Path.home() / ".cache" / "dlkit"
        directory = Path(root) / "jax"
    return backend_module().enable_compilation_cache(Path(directory), float(min_compile_seconds))
