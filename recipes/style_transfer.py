"""Style transfer: repaint an image with the texture of another by optimising its pixels.

Notes §4.11: the image starts as the content image and follows the gradient of a content loss
(its deep features should stay those of the content image) plus a style loss (the Gram
matrices of its features at several layers should become those of the style image), with the
network's weights fixed. Offline by default: the features come from a small CNN with random
weights (random convolutions already capture local texture statistics), the content image is
one of `dlkit.data.shapes` and the style image a texture drawn with NumPy (diagonal stripes,
checkerboard or noise). ``--weights imagenet`` uses VGG16 with ImageNet weights (downloaded by
Keras once, about 60 MB), and ``--content PATH --style PATH`` your own images.

Artefacts in ``output_dir``: ``style_transfer.png`` (content, style, result), ``losses.png``
(the losses per step) and ``metrics.json`` (content and style loss at the start and the end).

Run: ``dlkit run style_transfer --steps 200`` or ``python recipes/style_transfer.py``.
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
from dlkit.vision.style import style_transfer

TEXTURES = ("stripes", "checkerboard", "noise")
WEIGHTS = ("random", "imagenet")
# Layers of VGG16 for --weights imagenet (Gatys et al. 2016).
VGG_CONTENT_LAYERS = ("block4_conv2",)
VGG_STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


@dataclass
class Config:
    steps: int = 100
    """Optimisation steps on the image."""
    learning_rate: float = 0.03
    """Adam step size on the pixels (in [0, 1])."""
    content_weight: float = 1.0
    """Weight of the content loss."""
    style_weight: float = 1e4
    """Weight of the style loss."""
    tv_weight: float = 1e-3
    """Weight of the total-variation smoothness loss."""
    image_size: int = 64
    """Height and width of the images, in pixels."""
    texture: str = "stripes"
    """Built-in style image: stripes, checkerboard or noise."""
    content: str = ""
    """Path of a content image; empty for a generated image of coloured shapes."""
    style: str = ""
    """Path of a style image; empty for the built-in texture."""
    weights: str = "random"
    """Feature network: random (small CNN with random weights, offline) or imagenet (VGG16)."""
    filters: int = 32
    """Channels of the first convolution of the random CNN (doubled at each of its stages)."""
    seed: int = 0
    """Seed of the random CNN, the shapes image and the texture."""
    output_dir: str = "runs/style_transfer"
    """Folder for the figures and the metrics."""
    verbose: int = 1
    """0 silent, 1 the losses every 25 steps."""

    def __post_init__(self) -> None:
        check_config(
            self,
            positive=("steps", "learning_rate", "filters"),
            non_negative=("content_weight", "style_weight", "tv_weight"),
        )
        if self.image_size < 16:
            raise ValueError(f"Expected image_size >= 16. Received: image_size={self.image_size}")
        if self.texture not in TEXTURES:
            raise ValueError(
                f"Expected texture to be one of {TEXTURES}. Received: texture={self.texture!r}"
            )
        if self.weights not in WEIGHTS:
            raise ValueError(
                f"Expected weights to be one of {WEIGHTS}. Received: weights={self.weights!r}"
            )


def make_texture(kind: str, image_size: int, seed: int = 0) -> np.ndarray:
    """A style image (1, S, S, 3) in [0, 1]: diagonal stripes, a checkerboard or smooth noise."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:image_size, 0:image_size].astype("float32")
    colours = rng.uniform(0.1, 0.9, size=(2, 3)).astype("float32")
    if kind == "stripes":
        mask = (np.sin(2 * np.pi * (rows + columns) / 8.0) > 0).astype("float32")
    elif kind == "checkerboard":
        mask = ((rows // 6 + columns // 6) % 2).astype("float32")
    elif kind == "noise":
        coarse = rng.random((image_size // 4 + 1, image_size // 4 + 1))
        mask = np.kron(coarse, np.ones((4, 4)))[:image_size, :image_size].astype("float32")
    else:
        raise ValueError(f"Expected kind to be one of {TEXTURES}. Received: kind={kind!r}")
    image = mask[..., None] * colours[0] + (1.0 - mask[..., None]) * colours[1]
    return image[None].astype("float32")


def load_image(path: str, image_size: int) -> np.ndarray:
    """An RGB image file resized to (1, S, S, 3) in [0, 1]."""
    if not Path(path).is_file():
        raise ValueError(f"Expected an image file. Received: path={path!r}")
    image = keras.utils.load_img(path, color_mode="rgb", target_size=(image_size, image_size))
    return (keras.utils.img_to_array(image, dtype="float32") / 255.0)[None]


def random_feature_cnn(image_size: int, filters: int, seed: int) -> keras.Model:
    """Three stages of 3×3 convolutions (ReLU) and average pooling, with random weights."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    for stage in range(1, 4):
        units = filters * 2 ** (stage - 1)
        x = keras.layers.Conv2D(units, 3, padding="same", activation="relu", name=f"conv{stage}")(x)
        if stage < 3:
            x = keras.layers.AveragePooling2D(2, name=f"pool{stage}")(x)
    return keras.Model(inputs, x, name="random_cnn")


def feature_network(config: Config):
    """(model, content layers, style layers, preprocess) of the chosen feature network."""
    if config.weights == "random":
        model = random_feature_cnn(config.image_size, config.filters, config.seed)
        return model, ["conv3"], ["conv1", "conv2", "conv3"], None
    try:
        model = keras.applications.VGG16(
            weights="imagenet",
            include_top=False,
            input_shape=(config.image_size, config.image_size, 3),
        )
    except Exception as error:  # a failed download surfaces as many error types
        raise RuntimeError(
            "Could not load VGG16's ImageNet weights, which Keras downloads once to "
            f"~/.keras/models (about 60 MB): {error}. Connect to the internet or place the "
            "file there, or run with --weights random."
        ) from error

    def preprocess(images):
        return keras.applications.vgg16.preprocess_input(images * 255.0)

    return model, list(VGG_CONTENT_LAYERS), list(VGG_STYLE_LAYERS), preprocess


def _plot_losses(history: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(10, 3))
    for axis, key in zip(axes, ("loss", "content_loss", "style_loss")):
        axis.plot(history[key])
        axis.set_title(key.replace("_", " "))
        axis.set_xlabel("step")
        if key != "content_loss":
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(config: Config) -> dict:
    """Runs the optimisation and writes the figures and metrics; returns the metrics and files."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    size = config.image_size
    if config.content:
        content = load_image(config.content, size)
    else:
        content = shapes(1, image_size=size, max_shapes=3, seed=config.seed)["images"]
    if config.style:
        style = load_image(config.style, size)
    else:
        style = make_texture(config.texture, size, seed=config.seed)
    model, content_layers, style_layers, preprocess = feature_network(config)

    def report(step, losses):
        if config.verbose and (step % 25 == 0 or step == config.steps):
            print(
                f"step {step:4d}: loss {losses['loss']:.4g}, content {losses['content_loss']:.4g}"
                f", style {losses['style_loss']:.4g}",
                flush=True,
            )

    start = time.perf_counter()
    image, history = style_transfer(
        model,
        content,
        style,
        content_layers,
        style_layers,
        steps=config.steps,
        learning_rate=config.learning_rate,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
        preprocess=preprocess,
        callback=report,
    )
    seconds = time.perf_counter() - start
    paths = {
        "style_transfer": plotting.plot_image_grid(
            np.concatenate([content, style, image]),
            output_dir / "style_transfer.png",
            titles=["content", "style", "result"],
            num_columns=3,
        ),
        "losses": _plot_losses(history, output_dir / "losses.png"),
        "metrics": output_dir / "metrics.json",
    }
    results = {
        "backend": keras.backend.backend(),
        "feature_network": model.name,
        **{
            f"{key}_{when}": float(f"{history[key][index]:.6g}")
            for key in ("loss", "content_loss", "style_loss")
            for when, index in (("start", 0), ("end", -1))
        },
        "style_loss_reduction": round(1.0 - history["style_loss"][-1] / history["style_loss"][0], 4)
        if history["style_loss"][0] > 0
        else 0.0,
        "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / config.steps, 4),
        "config": asdict(config),
    }
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
