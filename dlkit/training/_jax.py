"""JAX implementation of the ``dlkit.training`` interface (stateless tracing)."""

import jax
import keras


def value_and_grad(fn, variables, inputs, state_variables):
    def pure(variable_values, input_values, state_values):
        mapping = list(zip(variables, variable_values)) + list(zip(state_variables, state_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
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


def list_devices():
    return [f"{d.platform}:{d.id}" for d in jax.devices()]
