"""TensorFlow implementation of the ``dlkit.training`` interface (GradientTape)."""

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
            optimizer.apply(gradients, variables)
            tracker.update_state(loss)
    model.optimizer.iterations.assign_add(1)
    return model.get_metrics_result()


def alternating_test_step(model, data):
    for update, _, tracker in model._resolved_updates():
        tracker.update_state(model._checked_loss(update, data))
    return model.get_metrics_result()


def inference_function(model, compiled):
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

            # Calling the concrete function skips tf.function's argument matching, and
            # tf.constant is cheaper than tf.convert_to_tensor: about 100 µs less per call.
            function = traced.get_concrete_function()
        outputs = function(tf.constant(inputs, dtype=dtype))
        return keras.tree.map_structure(lambda x: x.numpy(), outputs)

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
