"""TensorFlow implementation of the ``dlkit.training`` interface (GradientTape).

The plain path is Keras's and TensorFlow's own code. Its speed paths (fused Adam, a lean
``fit`` step and input pipeline, a flat acting call) live in ``dlkit.training._tensorflow_fast``
behind the switch ``DLKIT_TF_FAST`` (``0`` turns them off) and the version gates of the private
APIs they use; each of them hands back the plain path where it does not apply.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from dlkit.training import _tensorflow_fast, recurrence
from dlkit.training.backend import has_convolution


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


def hessian_vector_product(fn, variables, vectors, inputs):
    targets = [v.value for v in variables]
    # Double backward: the gradient of (∇f · v) is H v.
    with tf.GradientTape() as outer:
        outer.watch(targets)
        with tf.GradientTape() as inner:
            inner.watch(targets)
            value = fn(*inputs)
        gradients = inner.gradient(
            value, targets, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        projection = tf.add_n(
            [tf.reduce_sum(g * tf.cast(v, g.dtype)) for g, v in zip(gradients, vectors)]
        )
    return outer.gradient(projection, targets, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def compile_function(fn, variables, compiled):
    del variables  # read in place by the traced function

    # Without autograph: `fn` is written in keras.ops, whose control flow is TensorFlow's own.
    @tf.function(reduce_retracing=True, autograph=False)
    def traced(*inputs):
        compiled.num_traces += 1
        return fn(*inputs)

    return traced


def list_devices():
    return [f"{d.device_type.lower()}:{i}" for i, d in enumerate(tf.config.list_logical_devices())]


def apply_gradients(optimizer, gradients, variables):
    """``optimizer.apply(gradients, variables)``, fused for a plain Adam
    (``_tensorflow_fast.apply_fused_adam``)."""
    if not _tensorflow_fast.apply_fused_adam(optimizer, gradients, variables):
        optimizer.apply(gradients, variables)


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

            function = _tensorflow_fast.flat_call(traced.get_concrete_function())
        return map_outputs(lambda x: x.numpy(), function(tf.constant(inputs, dtype=dtype)))

    return call


def gradients_function(model, compiled):
    del model
    variables = compiled.variables

    @tf.function(reduce_retracing=True)
    def function(values, x, y):
        compiled.num_traces += 1
        with tf.GradientTape() as tape:
            tape.watch(values)
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                loss = compiled.loss(x, y)
        gradients = tape.gradient(loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return loss, gradients

    return function


def apply_function(model, compiled):
    variables = compiled.variables

    @tf.function(reduce_retracing=True)
    def call(gradients):
        compiled.num_traces += 1
        model.optimizer.apply(gradients, variables)

    return call


def _stacked_steps(model, compiled, xla=False):
    """``run(data)``: one ``model.train_step`` per leading index of the stacked batches
    ``data`` (K, B, ...) in one ``tf.function``; returns the metrics.

    With ``xla``, the function is XLA-compiled, and where XLA cannot compile it (an operation
    without an XLA kernel) it runs as a plain graph, with one warning.
    """

    def part(leaf, index):
        return None if leaf is None else leaf[index]

    # Without autograph: the steps are written in keras.ops, whose control flow is
    # TensorFlow's own, and the loop is an explicit while loop.
    def steps(data):
        compiled.num_traces += 1

        def step(index):
            model.train_step(tf.nest.map_structure(lambda leaf: part(leaf, index), data))
            return index + 1

        count = tf.shape(tf.nest.flatten(data)[0])[0]
        tf.while_loop(lambda index: index < count, step, [tf.constant(0)])
        return model.get_metrics_result()

    plain = tf.function(steps, reduce_retracing=True, autograph=False)
    if not xla:
        return plain
    compiled_steps = tf.function(steps, reduce_retracing=True, autograph=False, jit_compile=True)
    chosen = []

    def run(data):
        if chosen:
            return chosen[0](data)
        try:
            logs = compiled_steps(data)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            # XLA refuses the graph when compiling it, before any variable is changed.
            warnings.warn(
                f"XLA could not compile the fused training steps of {model.name!r}; they run "
                f"without XLA. ({type(error).__name__}: {str(error).splitlines()[0]})",
                stacklevel=2,
            )
            chosen.append(plain)
            return plain(data)
        chosen.append(compiled_steps)
        return logs

    return run


def train_steps_function(model, compiled):
    run = _stacked_steps(model, compiled)

    def call(x, y):
        return run((tf.convert_to_tensor(x), tf.nest.map_structure(tf.convert_to_tensor, y)))

    return call


def fused_fit_function(model, runner):
    """Keras's TensorFlow ``fit`` calls it with its iterator, which it leaves alone: K steps on
    the runner's device-resident batches per call, XLA-compiled together.

    Keras leaves XLA off on a CPU for its one-step function; for K steps of a dense network
    in one call it pays (``benchmarks/host_overhead.py``, a tiny GAN at batch 8: 143 µs per
    step, against 347 µs for a hand-written ``tf.function`` step). Networks with convolutions
    run without XLA on a CPU, where XLA's convolutions are several times slower than
    TensorFlow's own."""
    on_cpu = not tf.config.list_logical_devices("GPU")
    run = _stacked_steps(model, runner, xla=not (on_cpu and has_convolution(model)))

    def function(iterator):
        del iterator  # the batches come from the runner
        logs = None
        for data in runner.call_batches():
            logs = run(data)
        return logs

    return function


def enable_compilation_cache(directory, min_compile_seconds):
    """Nothing to keep: this backend's traced steps are not cached across processes."""
    del directory, min_compile_seconds
    return None


def fit_train_function(model):
    """Keras's own per-batch function (``None``), or ``_tensorflow_fast``'s leaner one."""
    return _tensorflow_fast.fit_train_function(model)


def fit_arguments(model, arguments):
    """``fit``'s arguments, NumPy arrays fed through ``_tensorflow_fast``'s lean pipeline."""
    return _tensorflow_fast.fit_arguments(model, arguments)


# The time loop of recurrent layers (see dlkit.training.recurrence for the measurements).
run_rnn = recurrence.keras_loop
