"""See what a digits CNN learned: activation maximisation, feature inversion, saliency maps.

Trains the small CNN of ``dlkit.vision`` on the embedded 8x8 digits (``--dataset mnist_sample``:
5,000 real 28×28 MNIST digits, offline), then looks inside it with
the input-gradient techniques of notes §4.8 (``dlkit.vision.visualize``): the image that each
class score likes most and the patterns ``conv2``'s channels respond to (gradient ascent from
noise), images rebuilt from their encodings at ``conv1``, ``conv2`` and ``dense`` (eq. 4.3),
and which pixels each decision depends on (plain gradients, SmoothGrad and guided
backpropagation).

Artefacts in ``output_dir``: ``model.keras``, ``activation_maximization.png``,
``feature_inversion.png``, ``saliency.png`` and ``metrics.json``.

Run: ``dlkit run visualize_digits --steps 100`` or ``python recipes/visualize_digits.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit import plotting
from dlkit.recipes._recipe import check_config, write_metrics
from dlkit.vision import train_digits_classifier
from dlkit.vision.classifier import DIGIT_DATASETS
from dlkit.vision.visualize import (
    _starting_noise,
    activation_maximization,
    feature_distance,
    feature_inversion,
    guided_backpropagation,
    saliency_map,
    unit_activation,
)

INVERTED_LAYERS = ("conv1", "conv2", "dense")


@dataclass
class Config:
    dataset: str = "digits"
    """Images: digits (embedded, 8×8) or mnist_sample (28×28, needs the mnist extra)."""
    epochs: int = 15
    """Training passes of the classifier over the digits."""
    steps: int = 200
    """Gradient-ascent steps of activation maximisation."""
    step_size: float = 0.05
    """Adam step of activation maximisation, as a share of the pixel range."""
    l2_weight: float = 0.1
    """L2 penalty of activation maximisation (distance from mid-grey)."""
    blur_every: int = 4
    """Blur the conv2 patterns every this many steps (0: never)."""
    conv2_channels: int = 20
    """conv2 channels drawn (the first ones)."""
    inversion_steps: int = 300
    """Gradient-descent steps of feature inversion."""
    regularization_weight: float = 0.05
    """Weight λ of the total-variation regulariser of feature inversion (eq. 4.3)."""
    num_images: int = 6
    """Test digits inverted and explained by saliency maps."""
    smoothgrad_samples: int = 20
    """Noisy copies averaged by SmoothGrad."""
    seed: int = 0
    """Seed of weights, shuffling and starting noise."""
    output_dir: str = "runs/visualize_digits"
    """Folder for the model, figures and metrics."""

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=("epochs", "steps", "step_size", "conv2_channels", "inversion_steps"),
            non_negative=("l2_weight", "blur_every", "regularization_weight", "smoothgrad_samples"),
            datasets=DIGIT_DATASETS,
        )
        check_config(self, positive=("num_images",))
        if self.conv2_channels > 64:
            raise ValueError(
                f"Expected conv2_channels <= 64. Received: conv2_channels={self.conv2_channels}"
            )


def _unit_scale(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its maximum, into [0, 1]."""
    peaks = np.max(maps.reshape(len(maps), -1), axis=1).reshape(-1, *[1] * (maps.ndim - 1))
    return maps / np.maximum(peaks, 1e-12)


def main(config: Config) -> dict:
    """Trains the classifier, draws the three figures and returns the metrics and file paths."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"Training the digits CNN on {config.dataset} for {config.epochs} epochs")
    model, (test_images, test_labels) = train_digits_classifier(
        config.epochs, config.seed, dataset=config.dataset
    )
    _, test_accuracy = model.evaluate(test_images, test_labels, verbose=0)
    print(f"Test accuracy {test_accuracy:.3f}")
    paths = {
        "model": output_dir / "model.keras",
        "activation_maximization": output_dir / "activation_maximization.png",
        "feature_inversion": output_dir / "feature_inversion.png",
        "saliency": output_dir / "saliency.png",
        "metrics": output_dir / "metrics.json",
    }
    model.save(paths["model"])

    # Activation maximisation: one image per class score, one per conv2 channel.
    print("Activation maximisation: logits and conv2 channels")
    classes = list(range(10))
    channels = list(range(config.conv2_channels))
    common = {"steps": config.steps, "step_size": config.step_size, "seed": config.seed}
    class_images = activation_maximization(
        model, "logits", classes, l2_weight=config.l2_weight, **common
    )
    channel_images = activation_maximization(
        model,
        "conv2",
        channels,
        l2_weight=config.l2_weight,
        blur_every=config.blur_every,
        **common,
    )
    noise = _starting_noise(class_images.shape, 0.0, 1.0, config.seed)  # where the ascent began
    logits_start = unit_activation(model, "logits", noise, classes)
    logits_end = unit_activation(model, "logits", class_images, classes)
    noise = np.repeat(noise[:1], len(channels), axis=0)
    conv2_start = unit_activation(model, "conv2", noise, channels)
    conv2_end = unit_activation(model, "conv2", channel_images, channels)
    predicted = np.argmax(keras.ops.convert_to_numpy(model(class_images)), axis=-1)
    plotting.plot_image_grid(
        np.concatenate([class_images, channel_images]),
        paths["activation_maximization"],
        titles=[f"class {c}" for c in classes] + [f"conv2 #{c}" for c in channels],
        num_columns=10,
    )

    # Feature inversion (eq. 4.3) of a few test digits at three depths.
    originals = test_images[: config.num_images]
    inversions, feature_errors = {}, {}
    for layer_name in INVERTED_LAYERS:
        print(f"Feature inversion from {layer_name}")
        inversions[layer_name] = feature_inversion(
            model,
            layer_name,
            originals,
            steps=config.inversion_steps,
            regularization_weight=config.regularization_weight,
            seed=config.seed,
        )
        initial = _starting_noise(originals.shape, 0.0, 1.0, config.seed)
        feature_errors[layer_name] = {
            "start": float(np.mean(feature_distance(model, layer_name, initial, originals))),
            "end": float(
                np.mean(feature_distance(model, layer_name, inversions[layer_name], originals))
            ),
            "pixel_mae": float(np.mean(np.abs(inversions[layer_name] - originals))),
        }
    count = len(originals)
    plotting.plot_image_grid(
        np.concatenate([originals, *inversions.values()]),
        paths["feature_inversion"],
        titles=[name for name in ("original", *INVERTED_LAYERS) for _ in range(count)],
        num_columns=count,
    )

    # Saliency: plain gradient, SmoothGrad and guided backpropagation for the predicted class.
    print("Saliency maps")
    plain = saliency_map(model, originals)
    smooth = saliency_map(model, originals, samples=config.smoothgrad_samples, seed=config.seed)
    guided = np.max(np.abs(guided_backpropagation(model, originals)), axis=-1)
    rows = [originals[..., 0], _unit_scale(plain), _unit_scale(smooth), _unit_scale(guided)]
    plotting.plot_image_grid(
        np.concatenate(rows),
        paths["saliency"],
        titles=[
            name
            for name in ("digit", "gradient", "SmoothGrad", "guided backprop")
            for _ in range(count)
        ],
        num_columns=count,
    )
    # Share of the saliency on the digit's strokes (pixels > 0.5), against their share of area.
    strokes = originals[..., 0] > 0.5
    results = {
        "backend": keras.backend.backend(),
        "dataset": config.dataset,
        "test_accuracy": float(test_accuracy),
        "logit_start_mean": float(np.mean(logits_start)),
        "logit_end_mean": float(np.mean(logits_end)),
        "logit_end_per_class": [round(float(v), 3) for v in logits_end],
        "class_images_predicted_as_target": float(np.mean(predicted == np.array(classes))),
        "conv2_activation_start_mean": float(np.mean(conv2_start)),
        "conv2_activation_end_mean": float(np.mean(conv2_end)),
        "feature_inversion_error": feature_errors,
        "saliency_share_on_strokes": float(np.sum(plain * strokes) / np.sum(plain)),
        "smoothgrad_share_on_strokes": float(np.sum(smooth * strokes) / np.sum(smooth)),
        "stroke_area_share": float(np.mean(strokes)),
        "seconds": round(time.perf_counter() - start, 2),
        "config": asdict(config),
    }
    print(
        f"Logits {results['logit_start_mean']:.2f} → {results['logit_end_mean']:.2f}; "
        f"conv2 {results['conv2_activation_start_mean']:.2f} → "
        f"{results['conv2_activation_end_mean']:.2f}"
    )
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
