"""TensorFlow implementation of the ``dlkit.training`` interface (GradientTape)."""

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
