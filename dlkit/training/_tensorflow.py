"""TensorFlow implementation of the ``dlkit.training`` interface (GradientTape).

The plain path is Keras's and TensorFlow's own code. Its speed paths (fused Adam, a lean
``fit`` step and input pipeline, a flat acting call) live in ``dlkit.training._tensorflow_fast``
behind the switch ``DLKIT_TF_FAST`` (``0`` turns them off) and the version gates of the private
APIs they use; each of them hands back the plain path where it does not apply.
"""

import keras
import numpy as np
import tensorflow as tf

from dlkit.training import _tensorflow_fast, recurrence


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
