"""Deep dream: let a digits CNN amplify the patterns it sees in an image, over octaves.

Trains the small CNN of ``dlkit.vision`` on the embedded 8x8 digits and runs inceptionism
(notes §4.10, ``dlkit.vision.deep_dream``): gradient ascent on the size of its convolutional
layers' activations, from a shrunk copy of the image up to full size, re-injecting at each
octave the detail that shrinking removed. The convolutions accept any image size, so the
network trained on 8x8 digits dreams on a larger picture: by default a generated image of
shapes (offline, in greyscale), or your own image with ``--image PATH``.

Artefacts in ``output_dir``: ``model.keras``, ``dream.png`` (the image, the dream after each
octave, enlarged to full size) and ``metrics.json`` (the activation norm before and after).

Run: ``dlkit run deep_dream --image photo.jpg`` or ``python recipes/deep_dream.py``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit import plotting
from dlkit.data import shapes
from dlkit.recipes._recipe import check_config, write_metrics
from dlkit.vision import train_digits_classifier
from dlkit.vision.dream import activation_norm, deep_dream, octave_shapes


@dataclass
class Config:
    epochs: int = 15
    """Training passes of the classifier over the digits."""
    image: str = ""
    """An image file to dream on (read in greyscale); empty: a generated image of shapes."""
    image_size: int = 48
    """Height and width the image is resized to."""
    layers: str = "conv1,conv2"
    """Comma-separated layers whose activations are amplified."""
    octaves: int = 3
    """Scales of the dream, smallest first."""
    octave_scale: float = 1.4
    """Size ratio between neighbouring octaves."""
    steps_per_octave: int = 30
    """Gradient-ascent steps at each octave."""
    step_size: float = 0.01
    """Mean pixel change per step, as a share of the pixel range."""
    seed: int = 0
    """Seed of the classifier and of the generated image."""
    output_dir: str = "runs/deep_dream"
    """Folder for the model, the figure and the metrics."""

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=("epochs", "image_size", "octaves", "steps_per_octave", "step_size"),
        )
        if self.octave_scale <= 1:
            raise ValueError(
                f"Expected octave_scale > 1. Received: octave_scale={self.octave_scale!r}"
            )
        if not [name for name in self.layers.split(",") if name.strip()]:
            raise ValueError(f"Expected at least one layer. Received: layers={self.layers!r}")


def load_image(config: Config) -> np.ndarray:
    """The image to dream on, (1, S, S, 1) in [0, 1]: the file, or a generated one."""
    if config.image:
        path = Path(config.image)
        if not path.is_file():
            raise ValueError(f"Expected an image file. Received: image={config.image!r}")
        picture = keras.utils.load_img(
            path, color_mode="grayscale", target_size=(config.image_size, config.image_size)
        )
        return keras.utils.img_to_array(picture)[None] / 255.0
    picture = shapes(1, image_size=config.image_size, seed=config.seed)["images"]
    return np.mean(picture, axis=-1, keepdims=True).astype("float32")


def main(config: Config) -> dict:
    """Trains the classifier, dreams, draws the octaves and returns the metrics and paths."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    image = load_image(config)
    layer_names = [name.strip() for name in config.layers.split(",") if name.strip()]
    print(f"Training the digits CNN for {config.epochs} epochs")
    model, _ = train_digits_classifier(config.epochs, config.seed)
    paths = {
        "model": output_dir / "model.keras",
        "dream": output_dir / "dream.png",
        "metrics": output_dir / "metrics.json",
    }
    model.save(paths["model"])
    sizes = octave_shapes(image.shape[1:3], config.octaves, config.octave_scale)
    print(f"Dreaming with {layer_names} over octaves {sizes}")
    dream, per_octave = deep_dream(
        model,
        image,
        layer_names,
        octaves=config.octaves,
        octave_scale=config.octave_scale,
        steps_per_octave=config.steps_per_octave,
        step_size=config.step_size,
        return_octaves=True,
    )
    full_size = image.shape[1:3]
    enlarged = [
        keras.ops.convert_to_numpy(keras.ops.image.resize(o, full_size, interpolation="nearest"))
        for o in per_octave
    ]
    plotting.plot_image_grid(
        np.concatenate([image, *enlarged]),
        paths["dream"],
        titles=["image"] + [f"octave {h}x{w}" for h, w in sizes],
        num_columns=len(sizes) + 1,
    )
    norm_before = float(activation_norm(model, image, layer_names)[0])
    norm_after = float(activation_norm(model, dream, layer_names)[0])
    print(f"Activation norm {norm_before:.3f} → {norm_after:.3f}")
    results = {
        "backend": keras.backend.backend(),
        "layers": layer_names,
        "octave_sizes": [list(size) for size in sizes],
        "activation_norm_before": norm_before,
        "activation_norm_after": norm_after,
        "mean_pixel_change": float(np.mean(np.abs(dream - image))),
        "seconds": round(time.perf_counter() - start, 2),
        "config": asdict(config),
    }
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
