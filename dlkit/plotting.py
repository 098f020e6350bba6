"""Figures that recipes and callbacks write as PNG files.

Every function draws with matplotlib's non-interactive Agg canvas, writes the figure to
``path`` (creating its folder) and returns the path, so it works on machines without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dlkit.validation import check_int

__all__ = [
    "confusion_matrix",
    "plot_attention",
    "plot_confusion_matrix",
    "plot_episode_returns",
    "plot_history",
    "plot_image_grid",
    "plot_latent_scatter",
    "plot_manifold",
]


def _new_figure(size: tuple[float, float]):
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100)


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    return path


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    Args:
        labels: integer true classes, shape ``(N,)``.
        predictions: integer predicted classes, shape ``(N,)``.
        num_classes: number of classes ``C``.

    Returns:
        An int64 array of shape ``(C, C)``; row ``i``, column ``j`` counts samples of class
        ``i`` predicted as ``j``.

    Example:

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    predictions = np.asarray(predictions).astype(np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(
            "Expected `labels` and `predictions` of the same length. "
            f"Received: labels.shape={labels.shape}, predictions.shape={predictions.shape}"
        )
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"Expected `{name}` in [0, {num_classes}). "
                f"Received: values from {values.min()} to {values.max()}"
            )
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def plot_confusion_matrix(
    matrix: np.ndarray, path: str | Path, class_names: Sequence[str] | None = None
) -> Path:
    """Draws a confusion matrix with its counts written in each cell."""
    matrix = np.asarray(matrix)
    num_classes = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    figure = _new_figure((0.5 * num_classes + 2, 0.5 * num_classes + 1.5))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    axes.set_xticks(range(num_classes), names)
    axes.set_yticks(range(num_classes), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if count > threshold else "black",
        )
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    axes.set_title(f"accuracy {accuracy:.3f}")
    return _save(figure, path)


def plot_image_grid(
    images: np.ndarray,
    path: str | Path,
    titles: Sequence[str] | None = None,
    num_columns: int = 8,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Path:
    """Draws images of shape ``(N, H, W)`` or ``(N, H, W, C)`` (C = 1 or 3) in a grid."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(
            "Expected `images` of shape (N, H, W) or (N, H, W, C) with C in {1, 3}. "
            f"Received: images.shape={images.shape}"
        )
    low, high = value_range
    images = np.clip((images - low) / (high - low), 0.0, 1.0)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    count = max(len(images), 1)
    num_columns = min(num_columns, count)
    num_rows = -(-count // num_columns)
    figure = _new_figure((1.2 * num_columns, 1.3 * num_rows))
    axes = np.atleast_1d(figure.subplots(num_rows, num_columns, squeeze=False)).ravel()
    for index, axis in enumerate(axes):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index], cmap="gray" if images.ndim == 3 else None, vmin=0, vmax=1)
            if titles is not None:
                axis.set_title(titles[index], fontsize=7)
    return _save(figure, path)


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Draws training curves: one panel per metric, validation (``val_*``) dashed beside it."""
    names = [name for name in history if not name.startswith("val_")]
    if not names:
        raise ValueError(f"Expected at least one metric in `history`. Received: {list(history)}")
    figure = _new_figure((3.2 * len(names), 2.6))
    axes = np.atleast_1d(figure.subplots(1, len(names), squeeze=False)).ravel()
    for axis, name in zip(axes, names):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], "--", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=7)
    return _save(figure, path)


def plot_episode_returns(
    returns: Sequence[float],
    path: str | Path,
    window: int = 100,
    lowest: float | None = None,
) -> Path:
    """Draws every training episode's return (dots) and their moving average over `window`.

    `lowest` clips the vertical axis from below, e.g. to hide early random-walk episodes that
    cost thousands.
    """
    check_int("window", window)
    returns = np.asarray(returns, dtype="float64")
    figure = _new_figure((6, 3))
    axes = figure.subplots()
    episodes = np.arange(1, len(returns) + 1)
    axes.plot(episodes, returns, ".", markersize=2, alpha=0.3, label="episode return")
    if len(returns):
        window = min(window, len(returns))
        average = np.convolve(returns, np.ones(window) / window, mode="valid")
        axes.plot(episodes[window - 1 :], average, label=f"mean of last {window}")
        if lowest is not None:
            axes.set_ylim(max(lowest, returns.min()) - 5.0, max(0.0, returns.max()) + 5.0)
    axes.set_xlabel("episode")
    axes.set_ylabel("return")
    axes.legend(fontsize=7)
    return _save(figure, path)


def plot_latent_scatter(codes: np.ndarray, labels: np.ndarray, path: str | Path) -> Path:
    """Scatters 2-D latent codes of shape (N, 2), coloured by their integer labels (N,)."""
    codes = np.asarray(codes, dtype=np.float32)
    labels = np.asarray(labels).ravel()
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"Expected `codes` of shape (N, 2). Received: codes.shape={codes.shape}")
    if len(labels) != len(codes):
        raise ValueError(
            f"Expected one label per code. Received: {len(codes)} codes, {len(labels)} labels"
        )
    figure = _new_figure((4.5, 4))
    axes = figure.subplots()
    points = axes.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=6)
    figure.colorbar(points, ax=axes, fraction=0.046, label="label")
    axes.set_xlabel("z₁")
    axes.set_ylabel("z₂")
    return _save(figure, path)


def plot_manifold(
    decode_fn,
    path: str | Path,
    grid_size: int = 15,
    extent: float = 2.5,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Path:
    """Decodes a regular grid of a 2-D latent space into one mosaic image.

    Args:
        decode_fn: maps codes (grid_size², 2) to images (grid_size², H, W[, 1]) as numpy.
        path: the PNG file to write.
        grid_size: codes per axis.
        extent: the grid spans [-extent, extent]² (in standard deviations of the prior).
        value_range: the range of the decoded pixels.
    """
    axis = np.linspace(-extent, extent, grid_size, dtype=np.float32)
    codes = np.stack(np.meshgrid(axis, axis[::-1]), axis=-1).reshape(-1, 2)  # (G², 2)
    images = np.asarray(decode_fn(codes), dtype=np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    height, width = images.shape[1:3]
    mosaic = images.reshape(grid_size, grid_size, height, width).transpose(0, 2, 1, 3)
    mosaic = mosaic.reshape(grid_size * height, grid_size * width)  # (G·H, G·W)
    figure = _new_figure((5, 5))
    axes = figure.subplots()
    axes.imshow(mosaic, cmap="gray", vmin=value_range[0], vmax=value_range[1])
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(f"decoded latent grid, z in [-{extent}, {extent}]²")
    return _save(figure, path)


def plot_attention(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Draws attention weights (T, S) as a heat map: one row per target, one column per source.

    Rows are the positions that attend (decoder outputs), columns the positions they read
    (source tokens); a bright cell (t, s) means output t drew mostly on source s.
    """
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim != 2 or weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            "Expected `weights` of shape (len(target_tokens), len(source_tokens)) = "
            f"({len(target_tokens)}, {len(source_tokens)}). Received: weights.shape="
            f"{weights.shape}"
        )
    figure = _new_figure((0.45 * len(source_tokens) + 2, 0.45 * len(target_tokens) + 1.2))
    axes = figure.subplots()
    image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-6))
    axes.set_xticks(range(len(source_tokens)), list(source_tokens))
    axes.set_yticks(range(len(target_tokens)), list(target_tokens))
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, label="attention weight")
    return _save(figure, path)
