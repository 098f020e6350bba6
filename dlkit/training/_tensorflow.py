"""TensorFlow implementation of the ``dlkit.training`` interface (GradientTape)."""

import inspect
import os

import keras
import numpy as np
import tensorflow as tf


def value_and_grad(fn, variables, inputs, state_variables):
    del state_variables  # TensorFlow updates variables in place.
    with tf.GradientTape() as tape:
        for tensor in inputs:
            tape.watch(tensor)
        value = fn(*inputs)
    gradients = tape.gradient(
        value,
        [v.value for v in variables] + list(inputs),
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    return value, gradients[: len(variables)], gradients[len(variables) :]


def list_devices():
    return [f"{d.device_type.lower()}:{i}" for i, d in enumerate(tf.config.list_logical_devices())]


def fast_paths_enabled() -> bool:
    """Whether the fast paths below (fused Adam, the lean ``fit`` step, the lean input pipeline
    and the flat acting call) are used: on by default; ``DLKIT_TF_FAST=0`` leaves Keras's and
    TensorFlow's own code paths."""
    return os.environ.get("DLKIT_TF_FAST", "1") != "0"


def _fused_adam_slots(optimizer, gradients, variables):
    """The (momentum, velocity) slot pairs of ``variables`` when ``optimizer`` is a plain Adam
    that one ``ResourceApplyAdam`` kernel per variable reproduces; ``None`` otherwise."""
    if not fast_paths_enabled() or type(optimizer) is not keras.optimizers.Adam:
        return None
    if (
        optimizer.amsgrad
        or optimizer.weight_decay is not None
        or optimizer.use_ema
        or optimizer.gradient_accumulation_steps
        or optimizer.loss_scale_factor is not None
        or tf.distribute.has_strategy()
    ):
        return None
    if not optimizer.built:
        optimizer.build(variables)
    slots = []
    for gradient, variable in zip(gradients, variables):
        if not isinstance(gradient, tf.Tensor) or variable.dtype != "float32":
            return None  # missing or sparse gradients, other dtypes: Keras's path
        if variable.constraint is not None or variable.overwrite_with_gradient:
            return None
        index = optimizer._get_variable_index(variable)
        slots.append((optimizer._momentums[index], optimizer._velocities[index]))
    return slots


def apply_gradients(optimizer, gradients, variables):
    """``optimizer.apply(gradients, variables)``, with a plain Adam fused into one kernel per
    variable.

    Keras's Adam spends about ten graph operations per variable, recomputing both bias
    corrections each time; ``ResourceApplyAdam`` performs the same update, with the
    same formula and the same slot variables, in one. Anything the kernel does not cover
    (AMSGrad, weight decay, EMA, gradient accumulation, loss scaling, constraints, sparse
    gradients, distribution strategies) goes through ``optimizer.apply``.
    """
    slots = _fused_adam_slots(optimizer, gradients, variables)
    if slots is None:
        optimizer.apply(gradients, variables)
        return
    gradients = optimizer._clip_gradients(gradients)
    step = tf.cast(optimizer.iterations + 1, tf.float32)
    beta_1 = tf.constant(optimizer.beta_1, tf.float32)
    beta_2 = tf.constant(optimizer.beta_2, tf.float32)
    hyper = {
        "beta1_power": tf.pow(beta_1, step),
        "beta2_power": tf.pow(beta_2, step),
        "lr": tf.cast(optimizer.learning_rate, tf.float32),
        "beta1": beta_1,
        "beta2": beta_2,
        "epsilon": tf.constant(optimizer.epsilon, tf.float32),
    }
    for gradient, variable, (momentum, velocity) in zip(gradients, variables, slots):
        tf.raw_ops.ResourceApplyAdam(
            var=variable.value.handle,
            m=momentum.value.handle,
            v=velocity.value.handle,
            grad=gradient,
            **hyper,
        )
    optimizer.iterations.assign_add(1)


def alternating_train_step(model, data):
    # Under a tf.distribute strategy each replica sees its share of the batch and the optimizer
    # sums gradients over replicas, so each replica's loss is divided by the replica count.
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    for update, optimizer, tracker in model._resolved_updates():
        variables = list(update.variables)
        for _ in range(update.repetitions):
            with tf.GradientTape() as tape:
                loss = model._checked_loss(update, data)
                scaled_loss = loss / num_replicas if num_replicas > 1 else loss
            gradients = tape.gradient(scaled_loss, variables)
            apply_gradients(optimizer, gradients, variables)
            tracker.update_state(loss)
    model.optimizer.iterations.assign_add(1)
    return model.get_metrics_result()


def alternating_test_step(model, data):
    for update, _, tracker in model._resolved_updates():
        tracker.update_state(model._checked_loss(update, data))
    return model.get_metrics_result()


def inference_function(model, compiled):
    from dlkit.training.inference import map_outputs

    function, dtype = None, None

    def call(inputs):
        nonlocal function, dtype
        if function is None:
            dtype = tf.convert_to_tensor(inputs).dtype
            # The batch dimension is left open so that any batch size reuses one trace.
            signature = tf.TensorSpec([None, *np.shape(inputs)[1:]], dtype)

            @tf.function(input_signature=[signature])
            def traced(x):
                compiled.num_traces += 1
                return model(x, training=compiled.training)

            function = _flat_call(traced.get_concrete_function())
        return map_outputs(lambda x: x.numpy(), function(tf.constant(inputs, dtype=dtype)))

    return call


def _flat_call(concrete):
    """A call of a one-input concrete function that skips its argument matching.

    ``ConcreteFunction.__call__`` binds its arguments to the signature and flattens them on
    every call: about a third of an acting call for a small network. ``_call_flat`` takes the
    input tensor and the captured variables as they are and returns the structured outputs.
    Without that private entry point in the form TensorFlow 2.21 has it (or with
    ``DLKIT_TF_FAST=0``), the public call is used.
    """
    call_flat = getattr(concrete, "_call_flat", None)
    if call_flat is None or not fast_paths_enabled():
        return concrete
    try:
        parameters = list(inspect.signature(call_flat).parameters)
    except (TypeError, ValueError):
        parameters = []
    if parameters != ["tensor_inputs", "captured_inputs"]:
        return concrete  # a TensorFlow whose private entry point differs from 2.21's
    return lambda x: call_flat([x], concrete.captured_inputs)


def train_steps_function(model, compiled):
    @tf.function(reduce_retracing=True)
    def run(x, y):
        compiled.num_traces += 1
        for index in tf.range(tf.shape(x)[0]):
            model.train_step((x[index], tf.nest.map_structure(lambda leaf, i=index: leaf[i], y)))
        return model.get_metrics_result()

    def call(x, y):
        return run(tf.convert_to_tensor(x), tf.nest.map_structure(tf.convert_to_tensor, y))

    return call


def fit_train_function(model):
    """A leaner function than Keras's for ``fit`` to call once per batch; ``None`` where
    Keras's own is needed (eager runs, ``steps_per_execution`` > 1, distribution strategies).

    Keras hands the ``tf.data`` iterator to a ``tf.function`` that wraps the step's outputs in a
    ``tf.experimental.Optional``, and then reads them back with two eager operations: about a
    sixth of a small GAN's step. Here the batch is taken from the iterator eagerly and the step
    runs as the concrete function of its input signature, batch dimension left open.
    """
    strategy = model.distribute_strategy
    if (
        not fast_paths_enabled()
        or model.run_eagerly
        or model.steps_per_execution != 1
        or tf.distribute.has_strategy()
        or strategy is not tf.distribute.get_strategy()
    ):
        return None
    step = tf.function(model.train_step, reduce_retracing=True, jit_compile=model.jit_compile)
    concrete = {}

    def function(iterator):
        data = next(iterator)
        leaves = tf.nest.flatten(data)
        if not all(isinstance(leaf, tf.Tensor) for leaf in leaves):
            return step(data)  # train_on_batch hands over NumPy arrays and None
        key = (tf.nest.map_structure(lambda _: 0, data), *((t.shape[1:], t.dtype) for t in leaves))
        if key not in concrete:
            spec = tf.nest.map_structure(
                lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), data
            )
            concrete[key] = step.get_concrete_function(spec)
        return concrete[key](data)

    return function


def enable_compilation_cache(directory, min_compile_seconds):
    """Nothing to keep: this backend's traced steps are not cached across processes."""
    del directory, min_compile_seconds
    return None


# Arrays up to this size are shuffled whole by tf.data (one more copy in its shuffle buffer);
# larger ones by their row indices, each batch gathered from the arrays.
SHUFFLE_COPY_LIMIT_BYTES = 256 * 2**20


def fit_dataset(model, x, y, batch_size, shuffle):
    """A lean ``tf.data`` pipeline for ``fit`` over in-memory arrays; ``None`` where Keras's own
    array adapter is kept (anything but NumPy ``x`` and optional ``y``, ``shuffle="batch"``,
    distribution strategies).

    Keras's adapter gathers each batch in a parallel map with autotuned prefetching: on a small
    machine its threads compete with the training step for the cores. Here one private thread
    prepares one batch ahead of the step, and the rows are shuffled anew every epoch
    (``reshuffle_each_iteration``): whole, for arrays up to ``SHUFFLE_COPY_LIMIT_BYTES``, or by
    their indices for larger ones, each batch then gathered from the arrays (about 5% slower
    for a small GAN, and no copy). Batches are Keras's: ``x`` alone or ``(x, y)``,
    ``batch_size`` rows (32 by default) and a smaller last one.
    """
    arrays = [x] if y is None else [x, y]
    if (
        not fast_paths_enabled()
        or tf.distribute.has_strategy()
        or model.distribute_strategy is not tf.distribute.get_strategy()
        or not all(isinstance(array, np.ndarray) and array.ndim >= 1 for array in arrays)
        or len({len(array) for array in arrays}) != 1
        or not isinstance(shuffle, bool)
    ):
        return None
    tensors = tuple(tf.convert_to_tensor(array) for array in arrays)
    count, batch_size = len(x), batch_size or 32
    if sum(array.nbytes for array in arrays) <= SHUFFLE_COPY_LIMIT_BYTES:
        dataset = tf.data.Dataset.from_tensor_slices(tensors[0] if y is None else tensors)
        if shuffle:
            dataset = dataset.shuffle(count, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    else:
        indices = tf.data.Dataset.range(count)
        if shuffle:
            indices = indices.shuffle(count, reshuffle_each_iteration=True)

        def gather(batch):
            rows = tuple(tf.gather(tensor, batch) for tensor in tensors)
            return rows[0] if y is None else rows

        dataset = indices.batch(batch_size).map(gather)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    return dataset.prefetch(1).with_options(options)
