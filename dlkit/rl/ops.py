"""The targets and losses of value-based agents, as small pure functions in ``keras.ops``.

Each function works on batches of transitions as the replay buffers return them
(``dlkit.rl.ReplayBuffer.sample``): ``rewards`` (B,) are n-step returns, ``dones`` (B,) are 1 only
where the episode terminated (truncation still bootstraps) and ``discounts`` (B,) are γ^m for
the m steps a transition spans. They run unchanged on TensorFlow, JAX and PyTorch, inside a
compiled training step.
"""

from __future__ import annotations

from keras import ops

from dlkit.validation import check_positive

__all__ = ["categorical_projection", "huber_loss", "q_learning_targets"]


def _bootstrap(rewards, dones, discounts, next_values):
    dtype = next_values.dtype
    rewards, dones, discounts = (ops.cast(x, dtype) for x in (rewards, dones, discounts))
    return rewards + discounts * (1.0 - dones) * next_values


def q_learning_targets(rewards, dones, discounts, target_q_values, online_q_values=None):
    """The one-step (or n-step) Q-learning target of every transition in a batch.

    The target network's values of the next state give the bootstrap (fixed Q-targets). With
    `online_q_values`, the greedy next action is chosen by the online network and evaluated by
    the target network (double Q-learning), which removes the upward bias of taking the maximum
    of noisy estimates.

    Equation:

        target   = rewards + discounts · (1 − dones) · max_a' target_q_values[a']
                                                               [notes eqs. 9.10–9.11]
        double:    a* = argmax_a' online_q_values[a']
                   target = rewards + discounts · (1 − dones) · target_q_values[a*]
                                                               [notes §9.1.2, double Q-learning]

    Args:
        rewards: (B,) rewards (n-step returns for n-step transitions).
        dones: (B,) 1 where the episode terminated after the transition, else 0.
        discounts: (B,) the discount γ^m of the bootstrap, m the transition's steps.
        target_q_values: (B, A) the target network's Q-values of the next states.
        online_q_values: (B, A) the online network's Q-values of the next states, for double
            Q-learning; None for the plain maximum.

    Returns:
        (B,) targets, in the dtype of `target_q_values`.

    Example:

        >>> import numpy as np
        >>> targets = q_learning_targets(
        ...     np.array([1.0, 1.0]), np.array([0.0, 1.0]), np.array([0.9, 0.9]),
        ...     np.array([[2.0, 3.0], [2.0, 3.0]]))
        >>> print(np.round(np.asarray(targets), 3))
        [3.7 1. ]

    Reference:
        Mnih et al., "Human-level control through deep reinforcement learning", Nature 2015;
        van Hasselt, Guez and Silver, "Deep Reinforcement Learning with Double Q-learning",
        AAAI 2016 (https://arxiv.org/abs/1509.06461).
    """
    target_q_values = ops.convert_to_tensor(target_q_values)
    if online_q_values is None:
        next_values = ops.max(target_q_values, axis=-1)  # (B,)
    else:
        greedy = ops.argmax(online_q_values, axis=-1)  # (B,)
        one_hot = ops.one_hot(greedy, ops.shape(target_q_values)[-1], dtype=target_q_values.dtype)
        next_values = ops.sum(target_q_values * one_hot, axis=-1)  # (B,)
    return ops.stop_gradient(_bootstrap(rewards, dones, discounts, next_values))


def categorical_projection(next_probabilities, rewards, dones, discounts, support):
    """Projects the shifted return distribution of C51 back onto its fixed atoms.

    The distributional Bellman update moves every atom z_j of the next state's return
    distribution to r + γ z_j (or to r alone at a terminal), which falls between the fixed atoms.
    Each shifted atom's probability is split between its two neighbouring atoms in proportion
    to closeness, after clipping to [v_min, v_max], so that the target is again a distribution
    on `support` and the cross-entropy to the predicted one is defined.

    Equation:

        Z(s, a) = r + γ Z(s', a*)                                    [notes eqs. 9.17–9.18]
        Tz_j   = clip(rewards + discounts · (1 − dones) · support[j], v_min, v_max)
        b_j    = (Tz_j − v_min) / Δz,   l = ⌊b_j⌋,   u = ⌈b_j⌉,   Δz = support[1] − support[0]
        target[l] += p_j · (u − b_j),   target[u] += p_j · (b_j − l)   (all of p_j if l = u)
        with p_j = next_probabilities[j] of the greedy next action a*

    Args:
        next_probabilities: (B, N) the target network's probabilities over the N atoms for the
            greedy next action of each transition.
        rewards: (B,) rewards (n-step returns for n-step transitions).
        dones: (B,) 1 where the episode terminated after the transition, else 0.
        discounts: (B,) the discount γ^m of the bootstrap.
        support: (N,) the atoms, evenly spaced from v_min to v_max
            (`dlkit.layers.CategoricalQHead.support`).

    Returns:
        (B, N) target probabilities: non-negative, each row summing to 1.

    Example:

        >>> import numpy as np
        >>> target = categorical_projection(
        ...     np.array([[0.0, 1.0, 0.0]]), np.array([0.5]), np.array([0.0]), np.array([1.0]),
        ...     np.array([-1.0, 0.0, 1.0]))
        >>> print(np.round(np.asarray(target), 3))
        [[0.  0.5 0.5]]

    Reference:
        Bellemare, Dabney and Munos, "A Distributional Perspective on Reinforcement Learning",
        ICML 2017, Algorithm 1 (https://arxiv.org/abs/1707.06887).
    """
    next_probabilities = ops.convert_to_tensor(next_probabilities)
    dtype = next_probabilities.dtype
    support = ops.cast(ops.convert_to_tensor(support), dtype)
    num_atoms = ops.shape(support)[0]
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / ops.cast(num_atoms - 1, dtype)
    shifted = _bootstrap(
        rewards[:, None], dones[:, None], discounts[:, None], support[None, :]
    )  # (B, N)
    positions = (ops.clip(shifted, v_min, v_max) - v_min) / delta  # (B, N), in [0, N − 1]
    lower = ops.floor(positions)
    upper = ops.ceil(positions)
    # Weight of each shifted atom on its lower and upper neighbour; an atom that lands exactly
    # on a fixed atom (lower = upper) gives it all of its mass.
    upper_weight = positions - lower
    lower_weight = 1.0 - upper_weight
    atoms = ops.arange(num_atoms, dtype=dtype)  # (N,)
    # (B, N_shifted, N_fixed) one-hot rows of each shifted atom's neighbours.
    lower_hits = ops.cast(ops.equal(lower[:, :, None], atoms[None, None, :]), dtype)
    upper_hits = ops.cast(ops.equal(upper[:, :, None], atoms[None, None, :]), dtype)
    spread = lower_hits * lower_weight[:, :, None] + upper_hits * upper_weight[:, :, None]
    target = ops.sum(next_probabilities[:, :, None] * spread, axis=1)  # (B, N)
    return ops.stop_gradient(target)


def huber_loss(errors, delta=1.0):
    """The Huber loss of TD errors: quadratic within ±delta, linear beyond.

    Large TD errors, common early in training, then give bounded gradients (the error clipping
    of the DQN paper) instead of the squared loss of notes eq. 9.10.

    Equation:

        loss = ½ errors²                      if |errors| ≤ delta
               delta · (|errors| − ½ delta)    otherwise

    Args:
        errors: TD errors of any shape.
        delta: the threshold between the two regimes, > 0.

    Returns:
        The element-wise loss, the shape of `errors`.

    Example:

        >>> import numpy as np
        >>> print(np.asarray(huber_loss(np.array([0.5, -3.0]))))
        [0.125 2.5  ]

    Reference:
        Huber, "Robust Estimation of a Location Parameter", Annals of Mathematical Statistics,
        1964; Mnih et al., Nature 2015.
    """
    delta = check_positive("delta", delta)
    errors = ops.convert_to_tensor(errors)
    absolute = ops.abs(errors)
    quadratic = ops.minimum(absolute, delta)
    return 0.5 * ops.square(quadratic) + delta * (absolute - quadratic)
