"""JAX implementation of the ``dlkit.training`` interface (stateless tracing)."""

import threading

import jax
import keras

from dlkit.training import recurrence
from dlkit.training.backend import has_convolution

# The variable values of the `compile_function` calls being traced, innermost last. A stateless
# scope does not see the scope around it, so the differentiating functions below start their
# own from these: a variable they do not differentiate keeps its traced value, not the
# concrete value it had when tracing began.
# (Per thread: threads may trace at the same time.)
_tracing = threading.local()


def _enclosing_mappings() -> list:
    if not hasattr(_tracing, "mappings"):
        _tracing.mappings = []
    return _tracing.mappings


def _with_enclosing(mapping):
    enclosing = _enclosing_mappings()
    return (list(enclosing[-1]) if enclosing else []) + list(mapping)


def value_and_grad(fn, variables, inputs, state_variables):
    def pure(variable_values, input_values, state_values):
        mapping = list(zip(variables, variable_values)) + list(zip(state_variables, state_values))
        with keras.StatelessScope(state_mapping=_with_enclosing(mapping)) as scope:
            value = fn(*input_values)
        new_state = [scope.get_current_value(v) for v in state_variables]
        return value, new_state

    grad_fn = jax.value_and_grad(pure, argnums=(0, 1), has_aux=True)
    (value, new_state), (variable_gradients, input_gradients) = grad_fn(
        [v.value for v in variables], list(inputs), [v.value for v in state_variables]
    )
    for variable, new_value in zip(state_variables, new_state):
        variable.assign(new_value)
    return value, list(variable_gradients), list(input_gradients)


def hessian_vector_product(fn, variables, vectors, inputs):
    def pure(values):
        with keras.StatelessScope(state_mapping=_with_enclosing(zip(variables, values))):
            return fn(*inputs)

    # Forward-over-reverse: the directional derivative of the gradient along the vectors.
    _, products = jax.jvp(jax.grad(pure), ([v.value for v in variables],), (list(vectors),))
    return list(products)


def compile_function(fn, variables, compiled):
    variables = list(variables)

    @jax.jit
    def pure(values, inputs):
        compiled.num_traces += 1
        mapping = list(zip(variables, values))
        _enclosing_mappings().append(mapping)
        try:
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*inputs)
        finally:
            _enclosing_mappings().pop()

    return lambda *inputs: pure([v.value for v in variables], list(inputs))


def list_devices():
    return [f"{d.platform}:{d.id}" for d in jax.devices()]


def _state_groups(model, training):
    groups = [model.trainable_variables, model.non_trainable_variables]
    if training:
        groups.append(model.optimizer.variables)
    groups.append(model.metrics_variables)
    return groups


def _run_stateless(model, function, values, differentiated=()):
    """Runs ``function()`` with every variable read from ``values`` (id -> value); returns its
    result and the variables' new values, except those in ``differentiated``."""
    mapping = [(variable, value) for variable, value in values.values()]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = function()
    skip = {id(variable) for variable in differentiated}
    updated = {
        key: (variable, scope.get_current_value(variable))
        for key, (variable, _) in values.items()
        if key not in skip
    }
    return result, updated


def _step(model, state, data, training):
    groups = _state_groups(model, training)
    # One table of current values, keyed by variable id, updated turn after turn.
    values = {}
    for variables, group_values in zip(groups, state):
        for variable, value in zip(variables, group_values):
            values[id(variable)] = (variable, value)

    for update, optimizer, tracker in model._resolved_updates():
        targets = list(update.variables)
        for _ in range(update.repetitions if training else 1):
            if training:

                def loss_fn(target_values, values=values, targets=targets, update=update):
                    local = dict(values)
                    for variable, value in zip(targets, target_values):
                        local[id(variable)] = (variable, value)
                    return _run_stateless(
                        model, lambda: model._checked_loss(update, data), local, targets
                    )

                grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
                (loss, updated), gradients = grad_fn([values[id(v)][1] for v in targets])
                values.update(updated)
                new_targets, new_optimizer_values = optimizer.stateless_apply(
                    [values[id(v)][1] for v in optimizer.variables],
                    gradients,
                    [values[id(v)][1] for v in targets],
                )
                for variable, value in zip(targets, new_targets):
                    values[id(variable)] = (variable, value)
                for variable, value in zip(optimizer.variables, new_optimizer_values):
                    values[id(variable)] = (variable, value)
            else:
                loss, updated = _run_stateless(
                    model, lambda update=update: model._checked_loss(update, data), values
                )
                values.update(updated)
            _, updated = _run_stateless(model, lambda t=tracker, x=loss: t.update_state(x), values)
            values.update(updated)

    if training:
        iterations = model.optimizer.iterations
        values[id(iterations)] = (iterations, values[id(iterations)][1] + 1)
    logs, _ = _run_stateless(model, model.get_metrics_result, values)
    new_state = tuple([values[id(v)][1] for v in variables] for variables in groups)
    return logs, new_state


def alternating_train_step(model, state, data):
    return _step(model, state, data, training=True)


def alternating_test_step(model, state, data):
    return _step(model, state, data, training=False)


def inference_function(model, compiled):
    import numpy as np

    from dlkit.training.inference import map_outputs

    training = compiled.training
    # The model's variables in a fixed order, read once: walking the layer tree for them
    # would cost more than the network's arithmetic. Their current values are passed in on
    # every call, so weights changed by training are used without retracing.
    variables = list(model.trainable_variables) + list(model.non_trainable_variables)
    positions = {id(variable): index for index, variable in enumerate(variables)}
    assigned = []  # the variables whose new values a training-mode call returns

    @jax.jit
    def function(values, inputs):
        compiled.num_traces += 1
        # The trainable / non-trainable split is taken when tracing, so a layer frozen later
        # changes nothing in the compiled program.
        groups = []
        for group in (model.trainable_variables, model.non_trainable_variables):
            missing = [variable.path for variable in group if id(variable) not in positions]
            if missing:
                raise ValueError(
                    "The model gained variables after `compile_inference` was called; compile "
                    f"it again. Received: new variables {missing}"
                )
            groups.append([values[positions[id(variable)]] for variable in group])
        outputs, non_trainable_values = model.stateless_call(*groups, inputs, training=training)
        assigned[:] = model.non_trainable_variables
        return outputs, non_trainable_values

    def call(inputs):
        outputs, non_trainable_values = function([v.value for v in variables], inputs)
        if training:
            # Keep what the call changed (seed generator states), as the other backends do.
            for variable, value in zip(assigned, non_trainable_values):
                variable.assign(value)
        return map_outputs(np.asarray, outputs)

    return call


# Stacked gradient steps up to this many are unrolled in the compiled function, not scanned.
_MAX_UNROLLED_STEPS = 8


def _unrolled(model) -> bool:
    """Whether stacked steps of ``model`` run unrolled in chunks of `_MAX_UNROLLED_STEPS`
    rather than in one scan: on the CPU, for networks with convolutions, which XLA runs about
    20× slower inside a scan's loop than outside it (a Nature-DQN step on 64 frames: 2.2 s
    against 0.1 s; a PPO rollout and update of 16 steps with ppo_atari's network, 8 copies ×
    32 steps, minibatches of 64: 45 s scanned against 1.7 s in two unrolled calls of 8).
    Dense networks scan: unrolling only multiplies their compile time (TRPO's critic steps on
    CartPole: 4.5 s of CPU for the first iteration unrolled, 2.7 s scanned, and the same
    1.1 s for the next ten either way)."""
    return jax.default_backend() == "cpu" and has_convolution(model)


def gradients_function(model, compiled):
    variables = compiled.variables
    constants = list(model.non_trainable_variables)

    def loss(values, constant_values, x, y):
        compiled.num_traces += 1
        mapping = list(zip(variables, values)) + list(zip(constants, constant_values))
        with keras.StatelessScope(state_mapping=mapping):
            return compiled.loss(x, y)

    function = jax.jit(jax.value_and_grad(loss))

    def call(values, x, y):
        return function(values, [v.value for v in constants], x, y)

    return call


def apply_function(model, compiled):
    optimizer = model.optimizer
    variables = compiled.variables

    @jax.jit
    def apply(optimizer_values, values, gradients):
        compiled.num_traces += 1
        return optimizer.stateless_apply(optimizer_values, gradients, values)

    def call(gradients):
        values, optimizer_values = apply(
            [v.value for v in optimizer.variables], [v.value for v in variables], gradients
        )
        for variable, value in zip(variables, values):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_values):
            variable.assign(value)

    return call


def _part(data, index):
    """``leaf[index]`` of every array in ``data``; its ``None`` entries stay ``None``."""
    return keras.tree.map_structure(lambda leaf: None if leaf is None else leaf[index], data)


def _stacked_steps(model, compiled):
    """``run(state, data) -> (logs, state)``, jitted: one ``model.train_step`` per leading index
    of the stacked batches ``data`` (K, B, ...), scanned or unrolled (``_unrolled``)."""
    unrolled = _unrolled(model)

    @jax.jit
    def run(state, data):
        compiled.num_traces += 1

        def body(state, batch):
            logs, state = model.train_step(state, batch)
            return state, logs

        if not unrolled:
            state, logs = jax.lax.scan(body, state, data)
            return keras.tree.map_structure(lambda value: value[-1], logs), state
        for index in range(keras.tree.flatten(data)[0].shape[0]):
            state, logs = body(state, _part(data, index))
        return logs, state

    def call(state, data):
        """Runs every stacked batch of ``data``: unrolled, in chunks of `_MAX_UNROLLED_STEPS`."""
        steps = keras.tree.flatten(data)[0].shape[0]
        size = min(steps, _MAX_UNROLLED_STEPS) if unrolled else steps
        logs = None
        for start in range(0, steps, size):
            logs, state = run(state, _part(data, slice(start, start + size)))
        return logs, state

    return call


def _training_groups(model):
    # Re-read on every call: variables may be replaced.
    return (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )


def train_steps_function(model, compiled):
    run = _stacked_steps(model, compiled)

    def call(x, y):
        groups = _training_groups(model)
        state = tuple([variable.value for variable in variables] for variables in groups)
        # The stacked batches as Keras's trainers receive them: (x, y, sample_weight).
        logs, state = run(state, (x, y, None))
        for variables, values in zip(groups, state):
            for variable, value in zip(variables, values):
                variable.assign(value)
        return logs

    return call


def fused_fit_function(model, runner):
    """Keras's JAX ``fit`` threads the state through the function: K steps on the runner's
    device-resident batches per call."""
    run = _stacked_steps(model, runner)

    def function(state, iterator):
        del iterator  # the batches come from the runner
        logs = None
        for data in runner.call_batches():
            logs, state = run(state, data)
        return logs, state

    return function


def fit_train_function(model):
    """``None``: Keras's JAX ``fit`` already runs one jitted step per batch on NumPy batches."""
    del model
    return None


def enable_compilation_cache(directory, min_compile_seconds):
    from jax.experimental.compilation_cache import compilation_cache

    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
    # A cache already opened elsewhere in this process keeps its directory unless reset.
    compilation_cache.reset_cache()
    jax.config.update("jax_compilation_cache_dir", str(directory))
    return str(directory)


def fit_arguments(model, arguments):
    """Unchanged: Keras's JAX ``fit`` already slices NumPy batches without ``tf.data``."""
    del model
    return arguments


# The time loop of recurrent layers (see dlkit.training.recurrence for the measurements).
run_rnn = recurrence.keras_loop
