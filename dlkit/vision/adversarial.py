"""Fooling a CNN: adversarial perturbations by gradient steps and by evolution [notes §4.9].

A classifier's input can be pushed, like any other quantity, along the gradient of a score.
Gradient ascent on an image towards another class synthesises an example of that class, and
the notes point out that a tiny perturbation spread consistently over every pixel is already
enough to change the decision, and that mutations and selection (an evolutionary search that
never looks at a gradient) achieve the same. The reason is geometric: natural images of a
class lie near a low-dimensional manifold, and in the high-dimensional pixel space a short step
in a well-chosen direction leaves it.

Here the perturbation ``δ = x_adv − x`` is bounded in the L∞ norm, ``‖δ‖∞ ≤ ε``: no pixel moves
by more than ε, and every pixel stays in the valid range ``clip_range``.

- `fgsm`: one signed-gradient step of the cross-entropy (fast gradient sign method).
- `iterative_attack`: repeated small signed steps, each projected back onto the ε-ball and the
  valid range (basic iterative method / projected gradient descent).
- `evolutionary_attack`: children of the current perturbation per image, each with one square
  rewritten to a corner of the ball, scored with forward passes only; the fittest replaces the
  parent when it is fitter.
- `attack_report`: success rate, clean accuracy and the size of the perturbations.

Every model is a Keras classifier from images (N, H, W, C) to logits (or to probabilities with
``from_logits=False``). Gradients with respect to the images come from
`dlkit.training.value_and_grad`; everything else is `keras.ops` and NumPy, so the functions run
on the TensorFlow, JAX and PyTorch backends alike. Results are NumPy arrays.
"""

from __future__ import annotations

import keras
import numpy as np

from dlkit.training import value_and_grad
from dlkit.validation import check_int, check_positive, check_range
from dlkit.vision._checks import check_images

__all__ = ["attack_report", "evolutionary_attack", "fgsm", "iterative_attack"]

# Images per forward pass when the model only predicts (reports, evolutionary fitness).
_PREDICT_BATCH = 4096


# ----------------------------------------------------------------------------- argument checks


def _check_labels(name: str, labels, num_images: int) -> np.ndarray:
    array = np.asarray(keras.ops.convert_to_numpy(labels))
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != (num_images,):
        raise ValueError(
            f"Expected `{name}` of shape ({num_images},), one class index per image. "
            f"Received: {name} with shape {array.shape}"
        )
    if array.size and (
        not np.issubdtype(array.dtype, np.number)
        or np.any(array != np.round(array))
        or np.any(array < 0)
    ):
        raise ValueError(
            f"Expected `{name}` to hold class indices >= 0. Received: {name}={array!r}"
        )
    return array.astype(np.int32)


def _check_class_range(name: str, labels: np.ndarray, num_classes: int) -> None:
    if labels.size and labels.max() >= num_classes:
        raise ValueError(
            f"Expected `{name}` to hold class indices below {num_classes}, the model's number "
            f"of classes. Received: {name} with maximum {int(labels.max())}"
        )


def _prepare(images, labels, labels_name, epsilon, clip_range):
    images = check_images("images", images)
    labels = _check_labels(labels_name, labels, len(images))
    epsilon = check_positive("epsilon", epsilon, maximum=1)
    low, high = check_range("clip_range", clip_range)
    return images, labels, epsilon, (low, high)


# ------------------------------------------------------------------------------ model helpers


def _log_probabilities(model, images, from_logits: bool):
    """log p(class | image) (N, K) as a backend tensor."""
    outputs = model(images, training=False)
    if from_logits:
        return keras.ops.log_softmax(outputs, axis=-1)
    return keras.ops.log(keras.ops.clip(outputs, 1e-12, 1.0))


def _predict_log_probabilities(model, images: np.ndarray, from_logits: bool) -> np.ndarray:
    """log p (N, K) as NumPy, in chunks of `_PREDICT_BATCH` images."""
    chunks = [
        keras.ops.convert_to_numpy(
            _log_probabilities(model, images[start : start + _PREDICT_BATCH], from_logits)
        )
        for start in range(0, len(images), _PREDICT_BATCH)
    ]
    return np.concatenate(chunks).astype(np.float32)


def _cross_entropy_gradient(model, images: np.ndarray, labels: np.ndarray, from_logits: bool):
    """Gradient (N, H, W, C) of the summed cross-entropy −Σ log p(labels | images)."""
    try:
        num_classes = int(model.output_shape[-1])
    except Exception:  # a model without a static output shape: one_hot ignores the check
        num_classes = None
    if num_classes is not None:
        _check_class_range("labels", labels, num_classes)

    def loss(x):
        log_p = _log_probabilities(model, x, from_logits)
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(log_p)[-1], dtype=log_p.dtype)
        return -keras.ops.sum(one_hot * log_p)

    _, _, (gradient,) = value_and_grad(loss, inputs=[images])
    return keras.ops.convert_to_numpy(gradient).astype(np.float32)


# ------------------------------------------------------------------------------------ attacks


def fgsm(
    model: keras.Model,
    images,
    labels,
    epsilon: float,
    targeted: bool = False,
    clip_range: tuple[float, float] = (0.0, 1.0),
    from_logits: bool = True,
) -> np.ndarray:
    """Fast gradient sign method: one signed step of size ε on the cross-entropy [notes §4.9].

    Every pixel moves by exactly ε (before clipping) in the direction that raises the
    cross-entropy of the true class (untargeted) or lowers that of the target class
    (targeted). To first order, a linear score w·x changes by ε‖w‖₁ under such a step, which
    grows with the number of pixels: the tiny, consistent perturbation the notes describe.

    Equation:
        untargeted:  x_adv = clip(x + ε · sign(∇ₓ CE(f(x), y)), low, high)
        targeted:    x_adv = clip(x − ε · sign(∇ₓ CE(f(x), t)), low, high)

    Args:
        model: classifier from images (N, H, W, C) to logits (N, K).
        images: batch (N, H, W, C) of images with pixels in `clip_range`.
        labels: (N,) class indices: the true classes (untargeted) or the target classes
            (targeted).
        epsilon: L∞ size of the step, 0 < ε ≤ 1.
        targeted: whether to descend towards `labels` instead of ascending away from them.
            Defaults to False.
        clip_range: (low, high) valid pixel range. Defaults to (0, 1).
        from_logits: whether the model outputs logits (True) or probabilities. Defaults to
            True.

    Returns:
        The adversarial images, a float32 array of the shape of `images`.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3)])
    >>> images = np.full((4, 2, 2, 1), 0.5, "float32")
    >>> adversarial = fgsm(model, images, labels=[0, 1, 2, 0], epsilon=0.1)
    >>> bool(np.all(np.abs(adversarial - images) <= 0.1 + 1e-6))
    True

    Reference:
        Goodfellow, Shlens and Szegedy, "Explaining and harnessing adversarial examples",
        ICLR 2015.
    """
    images, labels, epsilon, (low, high) = _prepare(images, labels, "labels", epsilon, clip_range)
    gradient = _cross_entropy_gradient(model, images, labels, from_logits)
    direction = -1.0 if targeted else 1.0
    adversarial = images + direction * epsilon * np.sign(gradient)
    return np.clip(adversarial, low, high).astype(np.float32)


def _project(adversarial: np.ndarray, images: np.ndarray, epsilon: float, low, high):
    """Nearest point of the ε-ball around `images` (L∞) that lies in [low, high]."""
    return np.clip(np.clip(adversarial, images - epsilon, images + epsilon), low, high)


def iterative_attack(
    model: keras.Model,
    images,
    labels,
    epsilon: float = 0.1,
    step_size: float = 0.01,
    steps: int = 40,
    targeted: bool = True,
    clip_range: tuple[float, float] = (0.0, 1.0),
    random_start: bool = False,
    seed: int = 0,
    from_logits: bool = True,
) -> np.ndarray:
    """Iterative signed-gradient attack projected onto the L∞ ball (BIM / PGD) [notes §4.9].

    The gradient ascent of §4.9 with a budget: `steps` small FGSM steps of size `step_size`,
    each followed by a projection back onto the set of allowed images, those within ε of the
    original in every pixel and inside the valid range. With `random_start` the search starts
    from a uniformly random point of the ball (PGD); without it, from the image itself (BIM).
    All images of the batch are attacked together, one gradient per step.

    Equation:
        x⁰ = x   (or x + U(−ε, ε) with random_start)
        xᵏ⁺¹ = Π(xᵏ ∓ α · sign(∇ₓ CE(f(xᵏ), y)))
        Π(z) = clip(clip(z, x − ε, x + ε), low, high)
        (− towards a target class, + away from the true class)

    Args:
        model: classifier from images (N, H, W, C) to logits (N, K).
        images: batch (N, H, W, C) of images with pixels in `clip_range`.
        labels: (N,) target classes (targeted) or true classes (untargeted).
        epsilon: L∞ radius of the allowed perturbation, 0 < ε ≤ 1. Defaults to 0.1.
        step_size: α, the L∞ size of each step. Defaults to 0.01.
        steps: number of steps. Defaults to 40.
        targeted: whether `labels` are targets to reach (True) or classes to leave. Defaults
            to True.
        clip_range: (low, high) valid pixel range. Defaults to (0, 1).
        random_start: start from a random point of the ball (PGD). Defaults to False.
        seed: seed of the random start. Defaults to 0.
        from_logits: whether the model outputs logits (True) or probabilities. Defaults to
            True.

    Returns:
        The adversarial images, a float32 array of the shape of `images`, with
        ``‖x_adv − x‖∞ ≤ ε`` and pixels in `clip_range`.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3)])
    >>> images = np.random.default_rng(0).uniform(size=(4, 2, 2, 1)).astype("float32")
    >>> adversarial = iterative_attack(model, images, [1, 2, 0, 1], epsilon=0.05, steps=3)
    >>> bool(np.abs(adversarial - images).max() <= 0.05 + 1e-6)
    True

    Reference:
        Kurakin, Goodfellow and Bengio, "Adversarial examples in the physical world", 2016;
        Madry et al., "Towards deep learning models resistant to adversarial attacks", ICLR
        2018.
    """
    images, labels, epsilon, (low, high) = _prepare(images, labels, "labels", epsilon, clip_range)
    step_size = check_positive("step_size", step_size)
    steps = check_int("steps", steps)
    direction = -1.0 if targeted else 1.0
    adversarial = images.copy()
    if random_start:
        noise = np.random.default_rng(seed).uniform(-epsilon, epsilon, size=images.shape)
        adversarial = _project(images + noise.astype(np.float32), images, epsilon, low, high)
    for _ in range(steps):
        gradient = _cross_entropy_gradient(model, adversarial, labels, from_logits)
        adversarial = adversarial + direction * step_size * np.sign(gradient)
        adversarial = _project(adversarial, images, epsilon, low, high)
    return adversarial.astype(np.float32)


def _target_margin(log_p: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log p(target) − max over the other classes log p(j): > 0 iff the target is predicted."""
    rows = np.arange(len(targets))
    target = log_p[rows, targets]
    others = log_p.copy()
    others[rows, targets] = -np.inf
    return target - others.max(axis=-1)


# Fractions of the generations at which the mutated square's area halves (the schedule of
# Andriushchenko et al.'s square attack, given there for 10,000 iterations).
_HALVINGS = (0.001, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


def _square_side(square_fraction: float, generation: int, generations: int, height, width):
    """Side of the square a mutation rewrites at `generation`: its area starts at
    `square_fraction` of the image and halves at each fraction of `_HALVINGS` of the run."""
    halvings = sum(generation >= fraction * generations for fraction in _HALVINGS)
    area = square_fraction * 0.5**halvings * height * width
    return int(min(height, width, max(1, round(float(np.sqrt(area))))))


def evolutionary_attack(
    model: keras.Model,
    images,
    targets,
    epsilon: float = 0.1,
    population: int = 40,
    generations: int = 100,
    seed: int = 0,
    clip_range: tuple[float, float] = (0.0, 1.0),
    square_fraction: float = 0.8,
    from_logits: bool = True,
) -> np.ndarray:
    """Targeted attack without gradients: mutation and selection of perturbations [notes §4.9].

    The notes' alternative to gradient ascent, as a (1 + λ) evolution strategy. Each image
    keeps one parent perturbation δ, which starts as vertical stripes of ±ε (a random sign per
    column and channel). Every generation draws `population` children per image: each copies
    δ and rewrites one random square of it, setting the square to +ε or −ε per channel, so a
    child stays on a corner of the ε-ball where a small perturbation changes a score the most.
    The children are projected onto the valid range and scored with the model's forward pass
    only: the fitness is the target-class margin, log p(target) minus the best other class's
    log p, positive exactly when the target is predicted. The fittest child replaces the parent
    if it is fitter (selection never loses ground), and an image stops evolving once its parent
    is classified as the target. The square starts at `square_fraction` of the image's area
    and shrinks on a fixed schedule, from coarse changes to single pixels. One forward pass per
    generation scores the children of all still-running images together.

    Equation:
        fitness(δ) = log p(t | x + δ) − max_{j ≠ t} log p(j | x + δ)
        δ⁰ = Π(ε · s),  s ∈ {−1, +1} constant along each image column
        childᵢ = Π(δ with square Sᵢ set to ±ε per channel),  i = 1 … λ
        δ ← argmax_i fitness(childᵢ)  if it beats fitness(δ)
        |Sᵢ| = square_fraction · H·W · 2^−k, k halvings after 0.1%, 0.5%, 2%, 5%, 10%, 20%,
        40%, 60% and 80% of the generations;  Π: projection onto ‖δ‖∞ ≤ ε and the valid range

    Args:
        model: classifier from images (N, H, W, C) to logits (N, K); only called forward.
        images: batch (N, H, W, C) of images with pixels in `clip_range`.
        targets: (N,) target classes.
        epsilon: L∞ radius of the allowed perturbation, 0 < ε ≤ 1. Defaults to 0.1.
        population: children per image and generation, λ (≥ 1). Defaults to 40.
        generations: maximum number of generations; an image costs at most
            `population · generations` forward passes. Defaults to 100.
        seed: seed of the stripes and the mutations. Defaults to 0.
        clip_range: (low, high) valid pixel range. Defaults to (0, 1).
        square_fraction: the area of the first generation's square, as a fraction of the
            image, in (0, 1]. Defaults to 0.8.
        from_logits: whether the model outputs logits (True) or probabilities. Defaults to
            True.

    Returns:
        The adversarial images, a float32 array of the shape of `images`, with
        ``‖x_adv − x‖∞ ≤ ε`` and pixels in `clip_range`. An image the model already assigns
        to its target is returned unchanged.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(3)])
    >>> images = np.full((2, 2, 2, 1), 0.5, "float32")
    >>> adversarial = evolutionary_attack(model, images, [1, 2], population=4, generations=2)
    >>> bool(np.abs(adversarial - images).max() <= 0.1 + 1e-6)
    True

    Reference:
        Nguyen, Yosinski and Clune, "Deep neural networks are easily fooled", CVPR 2015;
        Beyer and Schwefel, "Evolution strategies: a comprehensive introduction", Natural
        Computing 2002; Andriushchenko et al., "Square attack: a query-efficient black-box
        adversarial attack via random search", ECCV 2020.
    """
    images, targets, epsilon, (low, high) = _prepare(
        images, targets, "targets", epsilon, clip_range
    )
    population = check_int("population", population)
    generations = check_int("generations", generations)
    square_fraction = check_positive("square_fraction", square_fraction, maximum=1)
    rng = np.random.default_rng(seed)
    count, height, width, channels = images.shape

    log_p = _predict_log_probabilities(model, images, from_logits)
    _check_class_range("targets", targets, log_p.shape[-1])
    reached = np.argmax(log_p, axis=-1) == targets
    signs = np.array([-epsilon, epsilon], np.float32)
    stripes = rng.choice(signs, size=(count, 1, width, channels))
    delta = np.where(reached[:, None, None, None], 0.0, stripes).astype(np.float32)
    delta = _project(images + delta, images, epsilon, low, high) - images
    fitness = _target_margin(
        _predict_log_probabilities(model, images + delta, from_logits), targets
    )
    active = np.flatnonzero(fitness <= 0)
    rows, columns = np.arange(height), np.arange(width)
    for generation in range(generations):
        if active.size == 0:
            break
        side = _square_side(square_fraction, generation, generations, height, width)
        shape = (len(active), population)
        top = rng.integers(0, height - side + 1, size=shape)[..., None]
        left = rng.integers(0, width - side + 1, size=shape)[..., None]
        in_rows = (rows >= top) & (rows < top + side)  # (A, P, H)
        in_columns = (columns >= left) & (columns < left + side)  # (A, P, W)
        square = in_rows[..., :, None, None] & in_columns[..., None, :, None]
        values = rng.choice(signs, size=(*shape, 1, 1, channels))
        base = images[active][:, None]
        children = _project(
            base + np.where(square, values, delta[active][:, None]), base, epsilon, low, high
        )
        log_p = _predict_log_probabilities(
            model, children.reshape(-1, height, width, channels), from_logits
        )
        child_fitness = _target_margin(log_p, np.repeat(targets[active], population))
        child_fitness = child_fitness.reshape(shape)
        best = np.argmax(child_fitness, axis=1)
        best_fitness = child_fitness[np.arange(len(active)), best]
        improved = best_fitness > fitness[active]
        winners = active[improved]
        delta[winners] = children[improved, best[improved]] - images[winners]
        fitness[winners] = best_fitness[improved]
        active = active[fitness[active] <= 0]
    return _project(images + delta, images, epsilon, low, high).astype(np.float32)


# ------------------------------------------------------------------------------------- report


def attack_report(
    model: keras.Model,
    clean,
    adversarial,
    labels,
    targets=None,
    from_logits: bool = True,
) -> dict:
    """How well an attack worked and how large its perturbations are.

    The success rate is counted over the images the model classified correctly before the
    attack (and, for a targeted attack, whose target differs from the true class): the share
    of them that the model now assigns to the target class (targeted) or to any class but the
    true one (untargeted). The perturbation norms are over all images.

    Equation:
        δ = adversarial − clean;  L∞ = max |δ|,  L2 = ‖δ‖₂ per image
        success = #{i ∈ S : f(x_adv,i) = tᵢ}/|S|   (targeted)
                  #{i ∈ S : f(x_adv,i) ≠ yᵢ}/|S|   (untargeted)
        S = {i : f(xᵢ) = yᵢ (and tᵢ ≠ yᵢ)}

    Args:
        model: classifier from images (N, H, W, C) to logits (N, K).
        clean: the original images (N, H, W, C).
        adversarial: the attacked images, of the same shape.
        labels: (N,) true classes.
        targets: (N,) target classes of a targeted attack, or None (untargeted). Defaults to
            None.
        from_logits: whether the model outputs logits (True) or probabilities. Defaults to
            True.

    Returns:
        A dict of floats and ints: ``success_rate`` (NaN when no image qualifies),
        ``clean_accuracy``, ``adversarial_accuracy``, ``num_images``, ``num_attacked`` (|S|),
        ``linf_mean``, ``linf_max``, ``l2_mean``, ``l2_max`` and ``targeted``.

    Example:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((1, 1, 2)), keras.layers.Flatten(),
    ...     keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")])
    >>> clean = np.array([[[[1.0, 0.0]]], [[[0.0, 1.0]]]], "float32")  # classes 0 and 1
    >>> adversarial = np.array([[[[0.4, 0.6]]], [[[0.0, 1.0]]]], "float32")
    >>> report = attack_report(model, clean, adversarial, labels=[0, 1])
    >>> report["clean_accuracy"], report["success_rate"], round(report["linf_max"], 2)
    (1.0, 0.5, 0.6)

    Reference:
        Szegedy et al., "Intriguing properties of neural networks", ICLR 2014.
    """
    clean = check_images("clean", clean)
    adversarial = check_images("adversarial", adversarial)
    if adversarial.shape != clean.shape:
        raise ValueError(
            f"Expected `adversarial` of the shape of `clean`, {clean.shape}. "
            f"Received: adversarial with shape {adversarial.shape}"
        )
    labels = _check_labels("labels", labels, len(clean))
    clean_predictions = np.argmax(_predict_log_probabilities(model, clean, from_logits), -1)
    adversarial_predictions = np.argmax(
        _predict_log_probabilities(model, adversarial, from_logits), -1
    )
    attacked = clean_predictions == labels
    if targets is None:
        succeeded = adversarial_predictions != labels
    else:
        targets = _check_labels("targets", targets, len(clean))
        attacked &= targets != labels
        succeeded = adversarial_predictions == targets
    delta = (adversarial - clean).reshape(len(clean), -1).astype(np.float64)
    linf = np.abs(delta).max(axis=1)
    l2 = np.sqrt(np.sum(delta**2, axis=1))
    num_attacked = int(attacked.sum())
    return {
        "targeted": targets is not None,
        "success_rate": float(succeeded[attacked].mean()) if num_attacked else float("nan"),
        "clean_accuracy": float(np.mean(clean_predictions == labels)),
        "adversarial_accuracy": float(np.mean(adversarial_predictions == labels)),
        "num_images": len(clean),
        "num_attacked": num_attacked,
        "linf_mean": float(linf.mean()),
        "linf_max": float(linf.max()),
        "l2_mean": float(l2.mean()),
        "l2_max": float(l2.max()),
    }
