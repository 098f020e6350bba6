"""PyTorch speed path of ``dlkit.training``: training and acting steps replayed from traced graphs.

Keras' layers run eagerly on PyTorch: every layer call pays Python bookkeeping that, for the
small networks of the course, costs more than the arithmetic. ``Traced`` records a loss and its
gradients once per input signature as one graph of ATen operations (``make_fx`` on fake tensors,
the tracer behind ``torch.compile``'s AOT autograd) and replays that graph on later calls: the
Keras layer calls, the autograd tape and the metric bookkeeping leave the step, the arithmetic
stays the same. As under ``jax.jit``, every variable the loss reads or assigns is an input or
output of the graph, and Python values are frozen when it is traced. A loss the tracer cannot
follow (Python control flow on tensor values, dropout, random draws with tensor arguments)
keeps the eager step of ``dlkit.training._torch``.

Switch: ``dlkit.training._torch.tracing_enabled()``. The environment variable
``DLKIT_TORCH_TRACE=0`` turns tracing off (on by default); so do ``torch.compile`` (dynamo then
sees the eager step) and a model compiled with ``run_eagerly=True``.

Private APIs, checked against ``dlkit.training._versions.CHECKED_VERSIONS`` (torch and keras)
before this module is imported; outside those versions PyTorch steps run eagerly, with one
warning: ``keras.src.backend.torch.random`` (its draws are replaced while tracing, see
``_LiftedRandom``), ``keras.src.backend.torch.core.get_device``, ``TorchTrainer.train_step``
(to recognise Keras' own step), ``Variable._value``, ``Model._compute_loss``,
``Model._loss_tracker``, ``Model._call_has_training_arg``, and the deprecated
``torch.jit.trace`` (its warnings muted, see ``_compiled_graph``).
"""

import inspect
import warnings
import weakref

import keras
import torch
from keras.src.backend.torch import random as torch_random
from keras.src.backend.torch.core import get_device
from keras.src.backend.torch.trainer import TorchTrainer

# keras.random draws made outside the graph and fed to it: the seed generators advance and the
# numbers come out exactly as in the eager step.
_LIFTED_RANDOM = ("normal", "uniform", "truncated_normal", "randint")


class _NotTraceable(Exception):
    """Raised while tracing a function that a replayed graph would not reproduce."""


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


class Traced:
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


# Each model's `Traced` objects, by key. Kept outside the model so that a copy of it
# (copy.deepcopy, pickle) traces its own steps instead of sharing closures over the original.
_TRACED = weakref.WeakKeyDictionary()


def traced_steps(model) -> list:
    """The `Traced` steps of `model` (empty where nothing was traced)."""
    return list(_TRACED.get(model, {}).values())


def _model_state(model):
    """Every variable a training step of `model` may read or assign."""
    variables = [*model.variables, *model.metrics_variables]
    if getattr(model, "optimizer", None) is not None:
        variables += model.optimizer.variables
    return variables


def _cached(model, key, build):
    """The model's `Traced` for `key`, built once; None when the model was compiled with
    `run_eagerly=True` (to debug its Python code step by step)."""
    if getattr(model, "run_eagerly", False):
        return None
    cache = _TRACED.setdefault(model, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def traced_update(model, update, optimizer, tracker):
    """One update of an `AlternatingModel` (loss, gradients, optimizer step) traced."""
    variables = list(update.variables)

    def loss_fn(data):
        loss = model._checked_loss(update, data)
        tracker.update_state(loss)
        return loss

    key = ("update", update.name, *map(id, variables))
    state = _model_state(model) + [v for _, o, _ in model._resolved_updates() for v in o.variables]
    return _cached(model, key, lambda: Traced(state, loss_fn, variables, optimizer))


def traced_train_step(model):
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
        model, key, lambda: Traced(_model_state(model), loss_fn, variables, model.optimizer)
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
