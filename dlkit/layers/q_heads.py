"""Output heads of value-based agents: dueling and categorical (C51) [notes §9.1.2]."""

from __future__ import annotations

import keras
from keras import ops

from dlkit.validation import check_int, check_number

__all__ = ["CategoricalQHead", "DuelingHead"]


@keras.saving.register_keras_serializable(package="dlkit")
class DuelingHead(keras.layers.Layer):
    """Dueling Q-value head: a state-value stream and an advantage stream, recombined into Q.

    Put it on top of any feature extractor in place of the final `Dense(num_actions)` of a DQN.
    The value stream estimates how good the state is, V(s); the advantage stream estimates how
    much better each action is than the others, A(s, a). Many states are good or bad whatever the
    agent does, and the value stream learns this from every transition, not only from those of
    the action taken.

    Why the mean is subtracted: eq. 9.15 of the notes writes Q = V + A. From Q alone V and A are
    not identifiable: V + c and A − c give the same Q for any c, so nothing ties the value stream
    to the state value. Wang et al. (2016) pin the split down by subtracting an aggregate of the
    advantages. With the maximum, Q = V + A − max_a' A, the greedy action has zero advantage and
    V equals max_a Q exactly; with the mean (used here, as in the paper's experiments) the
    advantages have zero mean and V equals the mean of Q over actions. The mean changes the
    meaning of V and A by a constant only, leaves the greedy action unchanged, and trains more
    stably: the advantages only have to move as fast as their mean, whereas the maximum ties the
    subtracted term to whichever action is currently best.

    Equation:

        value     = value_dense(value_hidden(features))              (B, 1)   V(s)
        advantage = advantage_dense(advantage_hidden(features))      (B, A)   A(s, a)
        q_values  = value + advantage − mean_a'(advantage)           (B, A)
        [notes eq. 9.15 with the mean-advantage correction of Wang et al. 2016, eq. 9]

        The hidden layers exist only when `hidden_units` is given.

    Args:
        num_actions: the number of discrete actions A (an integer >= 1).
        hidden_units: if an integer, each stream first applies its own
            `Dense(hidden_units, activation)`; if `None` (default), each stream is one linear layer.
        activation: activation of the hidden layers. Defaults to `"relu"`.
        kernel_initializer: initializer of every kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of every bias. Defaults to `"zeros"`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        features: the state features, shape (B, F).

    Returns:
        The Q-values, shape (B, num_actions).

    Example:

        >>> import numpy as np
        >>> head = DuelingHead(num_actions=3, hidden_units=16)
        >>> print(tuple(head(np.ones((4, 8), dtype="float32")).shape))
        (4, 3)

    Reference:
        Wang et al., "Dueling Network Architectures for Deep Reinforcement Learning", ICML 2016
        (https://arxiv.org/abs/1511.06581).
    """

    def __init__(
        self,
        num_actions,
        hidden_units=None,
        activation="relu",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_actions = check_int("num_actions", num_actions)
        self.hidden_units = (
            None if hidden_units is None else check_int("hidden_units", hidden_units)
        )
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

        def dense(units, activation, name):
            return keras.layers.Dense(
                units,
                activation=activation,
                kernel_initializer=self.kernel_initializer,
                bias_initializer=self.bias_initializer,
                dtype=self.dtype_policy,
                name=name,
            )

        self.value_hidden = None
        self.advantage_hidden = None
        if hidden_units is not None:
            self.value_hidden = dense(self.hidden_units, self.activation, "value_hidden")
            self.advantage_hidden = dense(self.hidden_units, self.activation, "advantage_hidden")
        self.value_dense = dense(1, None, "value_dense")
        self.advantage_dense = dense(self.num_actions, None, "advantage_dense")

    def build(self, input_shape):
        stream_input_shape = input_shape
        if self.hidden_units is not None:
            self.value_hidden.build(input_shape)
            self.advantage_hidden.build(input_shape)
            stream_input_shape = (*input_shape[:-1], self.hidden_units)
        self.value_dense.build(stream_input_shape)
        self.advantage_dense.build(stream_input_shape)

    def call(self, features):
        value_features = advantage_features = features
        if self.hidden_units is not None:
            value_features = self.value_hidden(features)
            advantage_features = self.advantage_hidden(features)
        value = self.value_dense(value_features)  # (B, 1)
        advantage = self.advantage_dense(advantage_features)  # (B, A)
        # Deviation from eq. 9.15 of the notes (Q = V + A): the mean advantage is subtracted so
        # that V and A are identifiable, as in Wang et al. 2016.
        return value + advantage - ops.mean(advantage, axis=-1, keepdims=True)  # (B, A)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_actions)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_actions": self.num_actions,
                "hidden_units": self.hidden_units,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="dlkit")
class CategoricalQHead(keras.layers.Layer):
    """Categorical (C51) distributional head: a return distribution over fixed atoms per action.

    Distributional RL learns the whole distribution of the return Z(s, a) rather than its mean
    Q(s, a) (notes eqs. 9.17-9.18). C51 represents that distribution on `num_atoms` fixed return
    values, the atoms z_j, evenly spaced from `v_min` to `v_max` (`support`), and predicts one
    probability per atom and action with a softmax over the atoms. The Q-values, needed to act
    greedily, are the expectations Σ_j z_j p_j (`q_values`). The projected distributional Bellman
    target and the cross-entropy loss belong to the agent, not to this head.

    Equation:

        logits        = dense(features), reshaped to                 (B, A, N)
        probabilities = softmax over the last axis (the atoms) of logits
        support       = linspace(v_min, v_max, num_atoms):  z_j = v_min + j (v_max − v_min)/(N − 1)
        q_values      = Σ_j support[j] · probabilities[..., j]        (B, A)
        [notes eqs. 9.17-9.18; Bellemare et al. 2017, §4]

    Args:
        num_actions: the number of discrete actions A (an integer >= 1).
        num_atoms: the number of atoms N (an integer >= 2). Defaults to `51`.
        v_min: the smallest atom, the lowest representable return. Defaults to `-10.0`.
        v_max: the largest atom, greater than `v_min`. Defaults to `10.0`.
        kernel_initializer: initializer of the kernel. Defaults to `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        features: the state features, shape (B, F).

    Returns:
        The probabilities of the atoms, shape (B, num_actions, num_atoms); each row over the
        atoms sums to 1. `q_values(probabilities)` turns them into Q-values, (B, num_actions).

    Example:

        >>> import numpy as np
        >>> head = CategoricalQHead(num_actions=3, num_atoms=11, v_min=-1.0, v_max=1.0)
        >>> probabilities = head(np.ones((4, 8), dtype="float32"))
        >>> print(tuple(probabilities.shape), tuple(head.q_values(probabilities).shape))
        (4, 3, 11) (4, 3)

    Reference:
        Bellemare et al., "A Distributional Perspective on Reinforcement Learning", ICML 2017
        (https://arxiv.org/abs/1707.06887).
    """

    def __init__(
        self,
        num_actions,
        num_atoms=51,
        v_min=-10.0,
        v_max=10.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_actions = check_int("num_actions", num_actions)
        self.num_atoms = check_int("num_atoms", num_atoms, minimum=2)
        self.v_min = check_number("v_min", v_min)
        self.v_max = check_number("v_max", v_max)
        if not self.v_min < self.v_max:
            raise ValueError(
                "Expected `v_min` to be smaller than `v_max`. "
                f"Received: v_min={v_min!r}, v_max={v_max!r}"
            )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dense = keras.layers.Dense(
            self.num_actions * self.num_atoms,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="dense",
        )

    @property
    def support(self):
        """The atoms z_j, linspace(v_min, v_max, num_atoms), shape (num_atoms,)."""
        return ops.linspace(self.v_min, self.v_max, self.num_atoms, dtype=self.compute_dtype)

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, features):
        logits = self.dense(features)  # (B, A * N)
        logits = ops.reshape(
            logits, (*ops.shape(logits)[:-1], self.num_actions, self.num_atoms)
        )  # (B, A, N)
        return ops.softmax(logits, axis=-1)  # (B, A, N)

    def q_values(self, probabilities):
        """Expected return per action, Σ_j z_j p_j: (B, A, N) probabilities → (B, A)."""
        probabilities = ops.convert_to_tensor(probabilities)
        support = ops.cast(self.support, probabilities.dtype)
        return ops.sum(probabilities * support, axis=-1)  # (B, A)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_actions, self.num_atoms)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_actions": self.num_actions,
                "num_atoms": self.num_atoms,
                "v_min": self.v_min,
                "v_max": self.v_max,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
