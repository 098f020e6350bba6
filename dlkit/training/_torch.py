"""PyTorch implementation of the ``dlkit.training`` interface (autograd, traced steps)."""

import inspect
import os
import warnings
import weakref

import keras
import torch
from keras.src.backend.torch import random as torch_random
from keras.src.backend.torch.core import get_device
from keras.src.backend.torch.trainer import TorchTrainer


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


def list_devices():
    devices = ["cpu:0"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return devices


def alternating_train_step(model, data):
    for update, optimizer, tracker in model._resolved_updates():
        variables = list(update.variables)
        traced = _traced_update(model, update, optimizer, tracker)
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
    return model.get_metrics_result()


def alternating_test_step(model, data):
    with torch.no_grad():
        for update, _, tracker in model._resolved_updates():
            tracker.update_state(model._checked_loss(update, data))
    return model.get_metrics_result()


def inference_function(model, compiled):
    from dlkit.training.inference import map_outputs

    kwargs = {"training": compiled.training} if model._call_has_training_arg else {}
    traced = None
    if tracing_enabled():
        traced = _Traced(model.variables, lambda inputs: model(inputs, **kwargs))

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


def train_steps_function(model, compiled):
    def call(x, y):
        x = torch.as_tensor(x)
        y = keras.tree.map_structure(torch.as_tensor, y)
        traced = _traced_train_step(model)
        for index in range(len(x)):
            data = (x[index], keras.tree.map_structure(lambda leaf, i=index: leaf[i], y))
            result = traced(data) if traced is not None else None
            if result is None:
                model.train_step(data)
                continue
            gradients, _ = result
            if gradients is not None:
                with torch.no_grad():
                    model.optimizer.apply(gradients, model.trainable_weights)
        compiled.num_traces = sum(traced.num_traces for traced in traced_steps(model))
        return model.get_metrics_result()

    return call


# ----------------------------------------------------------------------------- traced steps
#
# Keras' layers run eagerly on PyTorch: every layer call pays Python bookkeeping that, for the
# small networks of the course, costs more than the arithmetic. `_Traced` records a loss
# and its gradients once per input signature as one graph of ATen operations (`make_fx` on
# fake tensors, the tracer behind `torch.compile`'s AOT autograd) and replays that graph on
# later calls: the Keras layer calls, the autograd tape and the metric bookkeeping leave the
# step, the arithmetic stays the same. As under `jax.jit`, every variable the loss reads or
# assigns is an input or output of the graph, and Python values are frozen when it is traced.
# A loss the tracer cannot follow (Python control flow on tensor values, dropout, random draws
# with tensor arguments) keeps the eager step, as does every step with DLKIT_TORCH_TRACE=0.

# keras.random draws made outside the graph and fed to it: the seed generators advance and the
# numbers come out exactly as in the eager step.
_LIFTED_RANDOM = ("normal", "uniform", "truncated_normal", "randint")


class _NotTraceable(Exception):
    """Raised while tracing a function that a replayed graph would not reproduce."""


def tracing_enabled() -> bool:
    # Under torch.compile (`compile(jit_compile=True)`) dynamo sees the eager step instead.
    return os.environ.get("DLKIT_TORCH_TRACE", "1") != "0" and not torch.compiler.is_compiling()


def _signature(data) -> str:
    def describe(leaf):
        if isinstance(leaf, torch.Tensor):
            return (tuple(leaf.shape), str(leaf.dtype), str(leaf.device))
        return repr(leaf)

    return repr(keras.tree.map_structure(describe, data))


class _LiftedRandom:
    """Inside the block the lifted keras.random draws are recorded and answered with empty
    tensors of their shape (`supplied` None) or with the tensors of `supplied`, in order."""

    def __init__(self, supplied=None):
        self.supplied = supplied
        self.requests = []  # (original function, args, kwargs, shape, dtype)
        self._originals = {}

    def _replacement(self, name, original):
        signature = inspect.signature(original)

        def draw(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs).arguments
            for key, value in arguments.items():
                if isinstance(value, torch.Tensor | keras.Variable):
                    raise _NotTraceable(f"keras.random.{name} with a tensor `{key}`")
            dtype = arguments.get("dtype") or ("int32" if name == "randint" else None)
            dtype = torch_random.to_torch_dtype(dtype or keras.config.floatx())
            shape = tuple(int(size) for size in arguments["shape"])
            self.requests.append((original, args, kwargs, shape, dtype))
            if self.supplied is None:
                return torch.empty(shape, dtype=dtype, device=get_device())
            return self.supplied[len(self.requests) - 1]

        return draw

    def __enter__(self):
        def refuse(*args, **kwargs):
            raise _NotTraceable("keras.random.dropout")

        replacements = {
            name: self._replacement(name, getattr(torch_random, name)) for name in _LIFTED_RANDOM
        }
        replacements["dropout"] = refuse
        for name, replacement in replacements.items():
            self._originals[name] = getattr(torch_random, name)
            setattr(torch_random, name, replacement)
        return self

    def __exit__(self, *exc_info):
        for name, original in self._originals.items():
            setattr(torch_random, name, original)


class _Traced:
    """`function(data)`, stateful Keras code, replayed from one traced graph per input signature.

    With `differentiate` the function returns a scalar loss and a call returns `(gradients,
    loss)`, the gradients aligned with `differentiate` (None for a variable the loss does not
    reach, as `torch.autograd.grad(allow_unused=True)` gives). With an `optimizer` as well, its
    `apply` of those gradients runs inside the graph too and the gradients come back as None.
    Without `differentiate` a call returns `(None, outputs)`. `variables` lists every variable
    the function (and the optimizer) may read or assign besides `differentiate`; assigned ones
    are written back after each call. A call returns None when the function cannot be traced
    (`failure` says why), for the caller to take its eager path.
    """

    def __init__(self, variables, function, differentiate=(), optimizer=None):
        unique = {}
        for variable in [*differentiate, *variables]:
            unique.setdefault(id(variable), variable)
        self.variables = list(unique.values())
        self.differentiate = list(differentiate)
        self.function = function
        self.optimizer = optimizer
        self.failure = None
        self.num_traces = 0
        self._graphs = {}

    def __call__(self, data):
        if torch.compiler.is_compiling():
            return None
        key = _signature(data)
        entry = self._graphs.get(key)
        if entry is None:
            entry = self._graphs[key] = self._trace(data)
        if entry is None:
            return None
        graph, layout = entry
        leaves = keras.tree.flatten(data)
        randoms = [original(*args, **kwargs) for original, args, kwargs, _, _ in layout["requests"]]
        # `_value`, the variable's tensor: `.value` would check for scopes on every read.
        flat = [v._value for v in self.variables]
        flat += [leaves[i] for i in layout["tensor_at"]] + randoms
        with torch.no_grad():
            results = graph(*flat)
            new_values = results[layout["num_gradients"] + layout["num_outputs"] :]
            for index, value in zip(layout["changed"], new_values):
                self.variables[index]._value.copy_(value)
        gradients = results[: layout["num_gradients"]]
        outputs = keras.tree.pack_sequence_as(
            layout["outputs"],
            results[layout["num_gradients"] : layout["num_gradients"] + layout["num_outputs"]],
        )
        if layout["applied"] or not self.differentiate:
            return None, outputs
        gradients = iter(gradients)
        return [next(gradients) if used else None for used in layout["reached"]], outputs

    def _trace(self, data):
        attempts = [True, False] if self.optimizer is not None and self.optimizer.built else [False]
        for apply in attempts:
            try:
                return self._trace_graph(data, apply)
            except Exception as error:  # whatever the tracer cannot follow runs eagerly
                self.failure = f"{type(error).__name__}: {error}"
        return None

    def _trace_graph(self, data, apply):
        from torch.fx.experimental.proxy_tensor import make_fx

        count, layout = len(self.differentiate), {"applied": apply}

        def pure(values, data, randoms):
            values = [v.detach().requires_grad_(i < count) for i, v in enumerate(values)]
            with (
                _LiftedRandom(randoms) as lifted,
                keras.StatelessScope(list(zip(self.variables, values))) as scope,
            ):
                outputs = self.function(data)
            current = [scope.get_current_value(v) for v in self.variables]
            gradients = []
            if count:
                gradients = torch.autograd.grad(outputs, values[:count], allow_unused=True)
                layout["reached"] = [g is not None for g in gradients]
            if apply:
                mapping = [
                    (v, value if new is None else new)
                    for v, value, new in zip(self.variables, values, current)
                ]
                with torch.no_grad(), keras.StatelessScope(mapping) as step:
                    self.optimizer.apply(list(gradients), self.differentiate)
                current = [
                    step.get_current_value(v) if step.get_current_value(v) is not None else new
                    for v, new in zip(self.variables, current)
                ]
                gradients = []
            layout["requests"] = lifted.requests
            layout["changed"] = [i for i, v in enumerate(current) if v is not None]
            return (
                [g for g in gradients if g is not None],
                keras.tree.map_structure(
                    lambda t: t.detach() if isinstance(t, torch.Tensor) else t, outputs
                ),
                [v.detach() for v in current if v is not None],
            )

        # The graph takes and returns flat lists of tensors: the variables, the data's tensors
        # and the random draws in; the gradients, the outputs and the new values out.
        leaves = keras.tree.flatten(data)
        layout["tensor_at"] = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        num_values, num_data = len(self.variables), len(layout["tensor_at"])

        def flat_pure(*flat):
            data_leaves = list(leaves)
            for position, tensor in zip(layout["tensor_at"], flat[num_values:]):
                data_leaves[position] = tensor
            randoms = list(flat[num_values + num_data :]) if layout["lifted"] else None
            gradients, outputs, new_values = pure(
                list(flat[:num_values]), keras.tree.pack_sequence_as(data, data_leaves), randoms
            )
            layout.update(
                outputs=outputs,
                num_gradients=len(gradients),
                num_outputs=len(keras.tree.flatten(outputs)),
            )
            return [*gradients, *keras.tree.flatten(outputs), *new_values]

        flat = [v._value.detach() for v in self.variables]
        flat += [leaves[i] for i in layout["tensor_at"]]
        # A first pass finds the random draws; the second takes them as inputs.
        with torch.enable_grad():
            layout["lifted"] = False
            make_fx(flat_pure, tracing_mode="fake")(*flat)
            layout["lifted"] = True
            flat += [
                torch.empty(shape, dtype=dtype, device=get_device())
                for *_, shape, dtype in layout["requests"]
            ]
            graph = make_fx(flat_pure, tracing_mode="fake")(*flat)
        # The graph replays under no_grad, where a detach only costs a call: drop them.
        for node in list(graph.graph.nodes):
            if node.op == "call_function" and node.target is torch.ops.aten.detach.default:
                node.replace_all_uses_with(node.args[0])
                graph.graph.erase_node(node)
        # Plain positional arguments and a list out, without pytree handling on every call.
        graph.graph.set_codegen(torch.fx.graph.CodeGen())
        graph.recompile()
        graph = _compiled_graph(graph, flat)
        self.num_traces += 1
        return graph, layout


# Each model's `_Traced` objects, by key. Kept outside the model so that a copy of it
# (copy.deepcopy, pickle) traces its own steps instead of sharing closures over the original.
_TRACED = weakref.WeakKeyDictionary()


def traced_steps(model) -> list:
    """The `_Traced` steps of `model` (empty where nothing was traced)."""
    return list(_TRACED.get(model, {}).values())


def _model_state(model):
    """Every variable a training step of `model` may read or assign."""
    variables = [*model.variables, *model.metrics_variables]
    if getattr(model, "optimizer", None) is not None:
        variables += model.optimizer.variables
    return variables


def _cached(model, key, build):
    """The model's `_Traced` for `key`, built once; None when tracing is off or the model was
    compiled with `run_eagerly=True` (to debug its Python code step by step)."""
    if not tracing_enabled() or getattr(model, "run_eagerly", False):
        return None
    cache = _TRACED.setdefault(model, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _traced_update(model, update, optimizer, tracker):
    """One update of an `AlternatingModel` (loss, gradients, optimizer step) traced."""
    variables = list(update.variables)

    def loss_fn(data):
        loss = model._checked_loss(update, data)
        tracker.update_state(loss)
        return loss

    key = ("update", update.name, *map(id, variables))
    state = _model_state(model) + [v for _, o, _ in model._resolved_updates() for v in o.variables]
    return _cached(model, key, lambda: _Traced(state, loss_fn, variables, optimizer))


def _traced_train_step(model):
    """Keras' PyTorch `train_step` (forward pass, `compute_loss`, loss tracker, compiled metrics)
    traced; None for a model with its own `train_step` or no trainable weights."""
    if type(model).train_step is not TorchTrainer.train_step or not model.trainable_weights:
        return None

    def loss_fn(data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = model(x, training=True) if model._call_has_training_arg else model(x)
        loss = model._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        batch_size = next(i for i in keras.tree.flatten(x) if i is not None).shape[0]
        model._loss_tracker.update_state(loss, sample_weight=batch_size)
        model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return model.optimizer.scale_loss(loss)

    variables = list(model.trainable_weights)
    key = ("train_step", *map(id, variables))
    return _cached(
        model, key, lambda: _Traced(_model_state(model), loss_fn, variables, model.optimizer)
    )


def _compiled_graph(graph, flat):
    """`graph` as TorchScript, which runs its operations from C++ (a third less time per step
    for the course's small networks than the Python code of the FX graph); the FX graph itself
    where TorchScript is missing or fails. TorchScript is deprecated in favour of torch.compile,
    whose compilation takes far longer than these short trainings, so its warnings are muted."""
    jit = getattr(torch, "jit", None)
    if jit is None or not hasattr(jit, "trace"):
        return graph
    # Tracing runs the graph, which updates some inputs in place: give it copies.
    example = tuple(tensor.clone() for tensor in flat)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            return jit.trace(graph, example, check_trace=False, strict=False)
    except Exception:
        return graph


def fit_train_function(model):
    """``None``: Keras's PyTorch ``fit`` calls the step directly, and the traced graphs above
    already make that step lean."""
    del model
    return None


def enable_compilation_cache(directory, min_compile_seconds):
    """Nothing to keep: this backend's traced steps are not cached across processes."""
    del directory, min_compile_seconds
    return None


def fit_dataset(model, x, y, batch_size, shuffle):
    """``None``: Keras's PyTorch ``fit`` already slices NumPy batches without ``tf.data``."""
    del model, x, y, batch_size, shuffle
    return None
