"""Loss functions of the generative and sequence models, written with ``keras.ops`` (any backend).

Each function returns a scalar (the mean over the batch) and names the place in the notes it
implements. Logits, not probabilities, go into the adversarial losses: ``softplus`` gives the
binary cross-entropy of a sigmoid without its saturation.
"""

from __future__ import annotations

from keras import ops

from dlkit.validation import check_fraction

__all__ = [
    "cycle_consistency_loss",
    "discriminator_loss",
    "generator_loss",
    "kl_divergence_to_standard_normal",
    "sequence_cross_entropy",
]


def kl_divergence_to_standard_normal(mean, log_variance):
    """KL(N(mean, exp(log_variance)) ‖ N(0, I)), summed over the latent axis, batch mean.

    The regulariser of the VAE objective, in closed form for a diagonal Gaussian encoder.

    Equation:

        KL = ½ Σ_j (exp(log_variance_j) + mean_j² − 1 − log_variance_j)   [notes §5.2, eq. 5.4]

    Args:
        mean: encoder means μ, shape (B, latent_dim).
        log_variance: encoder log-variances log σ², shape (B, latent_dim).

    Returns:
        A scalar: the batch mean of the per-sample KL divergence (≥ 0).

    Example:

        >>> import numpy as np
        >>> float(kl_divergence_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 3))))
        0.0
    """
    mean = ops.convert_to_tensor(mean)
    log_variance = ops.convert_to_tensor(log_variance)
    if tuple(mean.shape) != tuple(log_variance.shape):
        raise ValueError(
            "Expected `mean` and `log_variance` of the same shape. "
            f"Received: mean.shape={tuple(mean.shape)}, log_variance.shape="
            f"{tuple(log_variance.shape)}"
        )
    per_sample = 0.5 * ops.sum(
        ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance, axis=-1
    )
    return ops.mean(per_sample)


def discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss: binary cross-entropy of real as 1 and generated as 0.

    Minimising it is ascending the discriminator's side of the minimax value V(D, G).

    Equation:

        loss = −E_x[log D(x)] − E_z[log(1 − D(G(z)))]                         [notes eq. 6.1]
             = mean(softplus(−real_logits)) + mean(softplus(fake_logits)),   D = sigmoid(logit)

    Args:
        real_logits: discriminator logits on real samples, any shape.
        fake_logits: discriminator logits on generated samples, any shape.

    Returns:
        A scalar; 2·log 2 ≈ 1.386 when the discriminator cannot tell them apart (D = ½).

    Example:

        >>> import numpy as np
        >>> round(float(discriminator_loss(np.zeros((4, 1)), np.zeros((4, 1)))), 3)
        1.386
    """
    return ops.mean(ops.softplus(-ops.convert_to_tensor(real_logits))) + ops.mean(
        ops.softplus(ops.convert_to_tensor(fake_logits))
    )


def generator_loss(fake_logits, saturating: bool = False):
    """The generator's loss on the discriminator's logits for generated samples.

    The minimax form of eq. 6.1 minimises log(1 − D(G(z))), whose gradient vanishes while the
    discriminator confidently rejects the samples (early in training). The non-saturating form
    maximises log D(G(z)) instead; it has the same fixed point and strong early gradients.

    Equation:

        saturating:      loss = E_z[log(1 − D(G(z)))]  = −mean(softplus(fake_logits))
        non-saturating:  loss = −E_z[log D(G(z))]      =  mean(softplus(−fake_logits))
                                                                              [notes eq. 6.1]

    Args:
        fake_logits: discriminator logits on generated samples, any shape.
        saturating: use the minimax (saturating) form instead of the non-saturating one.

    Returns:
        A scalar.

    Example:

        >>> import numpy as np
        >>> round(float(generator_loss(np.zeros((4, 1)))), 3)
        0.693
    """
    fake_logits = ops.convert_to_tensor(fake_logits)
    if saturating:
        return -ops.mean(ops.softplus(fake_logits))
    return ops.mean(ops.softplus(-fake_logits))


def cycle_consistency_loss(inputs, reconstructions):
    """Mean absolute (L1) error between images and their round trip through both generators.

    Equation:

        loss = E_x[‖F(G(x)) − x‖₁], averaged over pixels                       [notes §6.2]

    Args:
        inputs: the original images x, shape (B, ...).
        reconstructions: F(G(x)), the same shape.

    Returns:
        A scalar.

    Example:

        >>> import numpy as np
        >>> float(cycle_consistency_loss(np.ones((2, 3)), np.zeros((2, 3))))
        1.0
    """
    inputs = ops.convert_to_tensor(inputs)
    reconstructions = ops.convert_to_tensor(reconstructions)
    if tuple(inputs.shape) != tuple(reconstructions.shape):
        raise ValueError(
            "Expected `inputs` and `reconstructions` of the same shape. "
            f"Received: {tuple(inputs.shape)} and {tuple(reconstructions.shape)}"
        )
    return ops.mean(ops.abs(reconstructions - inputs))


def sequence_cross_entropy(targets, logits, label_smoothing=0.0, padding_id=0):
    """Token cross-entropy of a sequence model, averaged over the tokens that are not padding.

    The training loss of a translation model under teacher forcing: every target token is a
    classification over the vocabulary, and padding positions count for nothing (neither in
    the sum nor in the number of tokens it is divided by). Label smoothing replaces the one-hot
    target by a mixture with the uniform distribution over the vocabulary, which keeps the
    model from becoming over-confident (Szegedy et al. 2016; used by the original transformer).

    Equation (V the vocabulary size, ε = label_smoothing, p = softmax(logits)):

        q = (1 − ε)·onehot(targets) + ε / V                          (smoothed target)
        token_loss[b, t] = −Σ_v q[v] · log p[b, t, v]
        loss = Σ_{b,t} mask[b, t] · token_loss[b, t] / Σ_{b,t} mask[b, t]
            with mask[b, t] = (targets[b, t] != padding_id)          [notes §7.3]

    Args:
        targets: integer target ids, shape (B, T).
        logits: unnormalised scores, shape (B, T, V).
        label_smoothing: ε in [0, 1). Defaults to `0.0` (plain cross-entropy).
        padding_id: the id whose positions are ignored. Defaults to `0`.

    Returns:
        A scalar (0 when every position is padding).

    Example:

        >>> import numpy as np
        >>> logits = np.zeros((1, 3, 4), "float32")  # uniform predictions: loss log(4)
        >>> print(round(float(sequence_cross_entropy(np.array([[1, 2, 0]]), logits)), 4))
        1.3863
    """
    label_smoothing = check_fraction("label_smoothing", label_smoothing)
    logits = ops.convert_to_tensor(logits)
    targets = ops.cast(targets, "int32")
    if len(logits.shape) != len(targets.shape) + 1:
        raise ValueError(
            "Expected `logits` with one more axis (the vocabulary) than `targets`. Received: "
            f"targets of shape {tuple(targets.shape)}, logits of shape {tuple(logits.shape)}"
        )
    log_probabilities = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)  # (B, T, V)
    num_classes = log_probabilities.shape[-1]
    one_hot = ops.one_hot(targets, num_classes, dtype="float32")  # (B, T, V)
    smoothed = (1.0 - label_smoothing) * one_hot + label_smoothing / num_classes
    token_loss = -ops.sum(smoothed * log_probabilities, axis=-1)  # (B, T)
    mask = ops.cast(ops.not_equal(targets, padding_id), "float32")  # (B, T)
    return ops.sum(token_loss * mask) / ops.maximum(ops.sum(mask), 1.0)
