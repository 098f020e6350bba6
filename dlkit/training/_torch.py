"""PyTorch implementation of the ``dlkit.training`` interface (autograd).

The plain path: Keras' eager layers under ``torch.autograd``. Where dlkit owns the step (the
turns of an ``AlternatingModel``, ``compile_train_steps``, ``compile_inference``) it replays a
traced graph of the step instead, from ``dlkit.training._torch_tracing``, while
``tracing_enabled()``: the environment variable ``DLKIT_TORCH_TRACE`` is not ``0`` (tracing is on
by default), no ``torch.compile`` is compiling, and the installed torch and keras are the
versions the tracer's private APIs were checked against (``dlkit.training._versions``; outside
them one warning, and every step runs here, eagerly).
"""

import inspect
import os

import keras
import torch

from dlkit.training import recurrence
from dlkit.training._versions import private_api_supported


def tracing_enabled() -> bool:
    """Whether steps are traced (see the module docstring)."""
    # Under torch.compile (`compile(jit_compile=True)`) dynamo sees the eager step instead.
    return (
        os.environ.get("DLKIT_TORCH_TRACE", "1") != "0"
        and not torch.compiler.is_compiling()
        and private_api_supported("PyTorch step tracing", "torch", "keras")
    )


def _tracing():
    """``dlkit.training._torch_tracing`` while ``tracing_enabled()``; None otherwise."""
    if not tracing_enabled():
        return None
    from dlkit.training import _torch_tracing

    return _torch_tracing


def value_and_grad(fn, variables, inputs, state_variables):
    del state_variables  # PyTorch updates variables in place.
    inputs = [tensor.detach().clone().requires_grad_(True) for tensor in inputs]
    value = fn(*inputs)
    targets = [v.value for v in variables] + inputs
    gradients = torch.autograd.grad(value, targets, allow_unused=True)
    gradients = [
        torch.zeros_like(target) if gradient is None else gradient
        for target, gradient in zip(targets, gradients)
    ]
    return value.detach(), gradients[: len(variables)], gradients[len(variables) :]


def hessian_vector_product(fn, variables, vectors, inputs):
    targets = [v.value for v in variables]
    value = fn(*inputs)
    # Double backward: the gradient of (∇f · v) is H v.
    gradients = torch.autograd.grad(value, targets, create_graph=True, allow_unused=True)
    projection = sum(
        (gradient * vector.to(gradient.dtype)).sum()
        for gradient, vector in zip(gradients, vectors)
        if gradient is not None
    )
    if not torch.is_tensor(projection) or not projection.requires_grad:
        return [torch.zeros_like(target) for target in targets]
    products = torch.autograd.grad(projection, targets, allow_unused=True)
    return [
        torch.zeros_like(target) if product is None else product.detach()
        for target, product in zip(targets, products)
    ]


def compile_function(fn, variables, compiled):
    """``fn`` itself: PyTorch runs it eagerly (nothing is traced, ``num_traces`` stays 0)."""
    del variables, compiled
    return fn


def list_devices():
    devices = ["cpu:0"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices


def _alternating_turns(model):
    """(update, optimizer, tracker, variables, traced update or None) of each turn of an
    ``AlternatingModel``, resolved once for any number of steps."""
    tracing = _tracing()
    return [
        (
            update,
            optimizer,
            tracker,
            list(update.variables),
            tracing.traced_update(model, update, optimizer, tracker) if tracing else None,
        )
        for update, optimizer, tracker in model._resolved_updates()
    ]


def _alternating_step(model, turns, data):
    """One training step of an ``AlternatingModel`` through its resolved ``turns``."""
    for update, optimizer, tracker, variables, traced in turns:
        for _ in range(update.repetitions):
            result = traced(data) if traced is not None else None
            if result is not None:
                gradients, _ = result
                if gradients is None:
                    continue  # the optimizer step ran in the graph
            else:
                loss = model._checked_loss(update, data)
                # Only the paths to this update's variables are differentiated: in a GAN's
                # discriminator turn, autograd skips the backward pass through the generator
                # (what `.detach()` does in a hand-written loop).
                gradients = torch.autograd.grad(
                    loss, [variable.value for variable in variables], allow_unused=True
                )  # None for a variable the loss does not reach, as `.grad` would be
                tracker.update_state(loss.detach())
            with torch.no_grad():
                optimizer.apply(gradients, variables)
    model.optimizer.iterations.assign_add(1)


def alternating_train_step(model, data):
    _alternating_step(model, _alternating_turns(model), data)
    return model.get_metrics_result()


def alternating_test_step(model, data):
    with torch.no_grad():
        for update, _, tracker in model._resolved_updates():
            tracker.update_state(model._checked_loss(update, data))
    return model.get_metrics_result()


def inference_function(model, compiled):
    from dlkit.training.inference import map_outputs

    takes_training = "training" in inspect.signature(model.call).parameters
    kwargs = {"training": compiled.training} if takes_training else {}
    tracing = _tracing()
    traced = None
    if tracing is not None:
        traced = tracing.Traced(model.variables, lambda inputs: model(inputs, **kwargs))

    def call(inputs):
        inputs = torch.as_tensor(inputs)
        result = traced(inputs) if traced is not None else None
        if result is not None:
            outputs = result[1]
            compiled.num_traces = traced.num_traces
        else:
            # `forward` skips Layer.__call__'s per-call bookkeeping (a quarter of the latency).
            with torch.inference_mode():
                outputs = model.forward(inputs, **kwargs)
        return map_outputs(lambda x: x.cpu().numpy(), outputs)

    return call


def gradients_function(model, compiled):
    del model
    variables = compiled.variables

    def call(values, x, y):
        values = [torch.as_tensor(value).detach().requires_grad_(True) for value in values]
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            loss = compiled.loss(x, y)
        gradients = torch.autograd.grad(loss, values, allow_unused=True)
        gradients = [
            torch.zeros_like(value) if gradient is None else gradient
            for value, gradient in zip(values, gradients)
        ]
        return loss.detach(), gradients

    return call


def apply_function(model, compiled):
    variables = compiled.variables

    def call(gradients):
        model.optimizer.apply(gradients, variables)

    return call


def _stock_alternating(model, alternating_class) -> bool:
    """Whether ``model`` is an ``AlternatingModel`` whose ``train_step`` is the stock one."""
    return isinstance(model, alternating_class) and (
        type(model).train_step is alternating_class.train_step
    )


def _run_stacked(model, compiled, data):
    """One training step of ``model`` per leading index of the stacked batches ``data``
    (K, B, ...): the traced step replayed where it can be, Keras's eager ``train_step``
    otherwise. Returns the metrics."""
    from dlkit.training.alternating import AlternatingModel

    tracing = _tracing()
    traced = tracing.traced_train_step(model) if tracing else None
    # An AlternatingModel's turns are resolved once for the whole stack, not once per step.
    turns = _alternating_turns(model) if _stock_alternating(model, AlternatingModel) else None
    steps = keras.tree.flatten(data)[0].shape[0]
    for index in range(steps):
        batch = keras.tree.map_structure(
            lambda leaf, i=index: None if leaf is None else leaf[i], data
        )
        if turns is not None:
            _alternating_step(model, turns, batch)
            continue
        result = traced(batch) if traced is not None else None
        if result is None:
            model.train_step(batch)
            continue
        gradients, _ = result
        if gradients is not None:
            with torch.no_grad():
                model.optimizer.apply(gradients, model.trainable_weights)
    if tracing is not None:
        compiled.num_traces = sum(step.num_traces for step in tracing.traced_steps(model))
    return model.get_metrics_result()


def train_steps_function(model, compiled):
    def call(x, y):
        x = torch.as_tensor(x)
        y = keras.tree.map_structure(torch.as_tensor, y)
        return _run_stacked(model, compiled, (x, y))

    return call


def fused_fit_function(model, runner):
    """Keras's PyTorch ``fit`` calls it with the stand-in batches of the call, unused: K steps
    on the runner's device-resident batches per call."""

    def function(data):
        del data  # the batches come from the runner
        logs = None
        for stacked in runner.call_batches():
            logs = _run_stacked(model, runner, stacked)
        return logs

    return function


def fit_train_function(model):
    """``None``: Keras's PyTorch ``fit`` calls the step directly, and the traced graphs of
    ``_torch_tracing`` already make that step lean."""
    del model
    return None


def enable_compilation_cache(directory, min_compile_seconds):
    """Nothing to keep: this backend's traced steps are not cached across processes."""
    del directory, min_compile_seconds
    return None


def fit_arguments(model, arguments):
    """Unchanged: Keras's PyTorch ``fit`` already slices NumPy batches without ``tf.data``."""
    del model
    return arguments


# The time loop of recurrent layers (see dlkit.training.recurrence for the measurements).
run_rnn = recurrence.scanned_loop
