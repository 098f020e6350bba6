"""TensorFlow speed paths of ``dlkit.training``: fused Adam, a lean ``fit`` step and input
pipeline, and a flat acting call.

``dlkit.training._tensorflow`` calls each of these, and each answers with its plain
counterpart (Keras's and TensorFlow's own code) where it does not apply:

- ``apply_fused_adam``: a plain ``keras.optimizers.Adam`` applied with one
  ``ResourceApplyAdam`` kernel per variable. It reads the optimizer's internals
  (``_get_variable_index``, ``_momentums``, ``_velocities``, ``_clip_gradients``).
- ``fit_train_function``: the function ``fit`` calls once per batch, leaner than Keras's. It
  relies on Keras's trainer calling ``model.train_function(iterator)``.
- ``fit_arguments`` / ``fit_dataset``: a lean ``tf.data`` pipeline for ``fit`` on NumPy arrays
  (public APIs only).
- ``flat_call``: a concrete function called through ``ConcreteFunction._call_flat``.

Switch: ``fast_paths_enabled()``, on by default; the environment variable ``DLKIT_TF_FAST=0``
turns every one of them off. The three that use private APIs also ask
``dlkit.training._versions.private_api_supported``: outside the tensorflow and keras versions
they were checked against they warn once and leave the plain path in place.
"""

import inspect
import os

import keras
import numpy as np
import tensorflow as tf

from dlkit.training._versions import private_api_supported


def fast_paths_enabled() -> bool:
    """Whether the fast paths of this module are used: on by default; ``DLKIT_TF_FAST=0``
    leaves Keras's and TensorFlow's own code paths."""
    return os.environ.get("DLKIT_TF_FAST", "1") != "0"


def _fused_adam_slots(optimizer, gradients, variables):
    """The (momentum, velocity) slot pairs of ``variables`` when ``optimizer`` is a plain Adam
    that one ``ResourceApplyAdam`` kernel per variable reproduces; ``None`` otherwise."""
    if not fast_paths_enabled() or type(optimizer) is not keras.optimizers.Adam:
        return None
    if not private_api_supported("TensorFlow fused Adam", "tensorflow", "keras"):
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


def apply_fused_adam(optimizer, gradients, variables) -> bool:
    """Applies a plain Adam with one kernel per variable; False (nothing applied) where the
    fused update does not cover the optimizer.

    Keras's Adam spends about ten graph operations per variable, recomputing both bias
    corrections each time; ``ResourceApplyAdam`` performs the same update, with the same
    formula and the same slot variables, in one. Anything the kernel does not cover (AMSGrad,
    weight decay, EMA, gradient accumulation, loss scaling, constraints, sparse gradients,
    distribution strategies) is left to ``optimizer.apply``.
    """
    slots = _fused_adam_slots(optimizer, gradients, variables)
    if slots is None:
        return False
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
    return True


def flat_call(concrete):
    """A call of a one-input concrete function that skips its argument matching; ``concrete``
    itself where the fast path is off or the entry point is not the known one.

    ``ConcreteFunction.__call__`` binds its arguments to the signature and flattens them on
    every call: about a third of an acting call for a small network. ``_call_flat`` takes the
    input tensor and the captured variables as they are and returns the structured outputs.
    Besides the version gate, its signature is checked to be the one TensorFlow 2.21 has.
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
    if not private_api_supported("TensorFlow flat acting call", "tensorflow"):
        return concrete
    return lambda x: call_flat([x], concrete.captured_inputs)


def fit_train_function(model):
    """A leaner function than Keras's for ``fit`` to call once per batch; ``None`` where
    Keras's own is needed (eager runs, ``steps_per_execution`` > 1, distribution strategies,
    ``DLKIT_TF_FAST=0``, unchecked versions).

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
        or not private_api_supported("TensorFlow lean fit step", "keras", "tensorflow")
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


def fit_arguments(model, arguments: dict) -> dict:
    """``fit``'s keyword arguments with NumPy ``x`` (and ``y``) replaced by ``fit_dataset``'s
    pipeline; unchanged with ``validation_split``, sample or class weights or
    ``steps_per_epoch`` (Keras's adapter handles those), or where ``fit_dataset`` declines."""
    plain = not arguments["validation_split"] and all(
        arguments[name] is None for name in ("sample_weight", "class_weight", "steps_per_epoch")
    )
    if not plain:
        return arguments
    x, y = arguments["x"], arguments["y"]
    dataset = fit_dataset(model, x, y, arguments["batch_size"], arguments["shuffle"])
    if dataset is None:
        return arguments
    # The dataset shuffles itself; Keras would warn that `shuffle` is ignored.
    return {**arguments, "x": dataset, "y": None, "batch_size": None, "shuffle": False}


# Arrays up to this size are shuffled whole by tf.data (one more copy in its shuffle buffer);
# larger ones by their row indices, each batch gathered from the arrays.
SHUFFLE_COPY_LIMIT_BYTES = 256 * 2**20


def fit_dataset(model, x, y, batch_size, shuffle):
    """A lean ``tf.data`` pipeline for ``fit`` over in-memory arrays; ``None`` where Keras's own
    array adapter is kept (anything but NumPy ``x`` and optional ``y``, ``shuffle="batch"``,
    distribution strategies, ``DLKIT_TF_FAST=0``).

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
