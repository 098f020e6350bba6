"""What every recipe does around its model: check its Config, train, summarise, export.

``check_config`` validates the usual fields of a recipe's ``Config`` with
``dlkit.validation``; ``start_run`` creates the output folder and seeds the run; ``fit`` trains
with a resumable backup and loss curves; ``run_paths`` names the files of a run,
``run_summary`` and ``write_metrics`` end it; ``export_for_serving`` and ``save_for_serving``
write the serving export. The image recipes add ``dlkit.recipes._images``, the deep-RL ones
``dlkit.recipes._deep_rl``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from dlkit.validation import check_choice, check_non_negative, check_positive

# Formats of the serving export a recipe writes next to its `.keras` file (`dlkit.export`).
EXPORT_FORMATS = ("saved_model", "onnx", "none")


def check_config(config, positive=(), non_negative=(), datasets=None) -> None:
    """Raises ValueError unless the named fields of `config` are > 0 (`positive`) or >= 0
    (`non_negative`), its `export` format is known and, given `datasets`, its `dataset` is
    one of them."""
    for name in positive:
        check_positive(name, getattr(config, name))
    for name in non_negative:
        check_non_negative(name, getattr(config, name))
    if hasattr(config, "export"):
        check_choice("export", config.export, EXPORT_FORMATS)
    if datasets is not None:
        check_choice("dataset", config.dataset, datasets)


def start_run(config) -> Path:
    """Creates ``config.output_dir`` and seeds Python, NumPy and the backend with
    ``config.seed``; returns the folder."""
    import keras

    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    return output_dir


def run_paths(output_dir: Path, **files) -> dict:
    """The files of a run: `files` (name → path), then the loss curves (``history.png``, drawn
    by `fit`) and the metrics (``metrics.json``, written by `write_metrics`)."""
    return {**files, "history": output_dir / "history.png", "metrics": output_dir / "metrics.json"}


def fit(model, fit_arguments: dict, config, output_dir: Path, callbacks=()):
    """Trains with ``fit`` for ``config.epochs``, resuming from ``output_dir/backup`` and
    drawing the loss curves to ``output_dir/history.png``; returns (history, train seconds)."""
    import keras

    from dlkit.callbacks import LossCurves

    start = time.perf_counter()
    history = model.fit(
        **fit_arguments,
        epochs=config.epochs,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(output_dir / "backup")),
            LossCurves(output_dir / "history.png"),
            *callbacks,
        ],
        verbose=config.verbose,
    )
    return history, time.perf_counter() - start


def run_summary(config, history, train_seconds: float) -> dict:
    """What every run reports: backend, the last epoch's logged values (losses), epochs run,
    seconds and configuration."""
    import keras

    return {
        "backend": keras.backend.backend(),
        **({"dataset": config.dataset} if hasattr(config, "dataset") else {}),
        **{name: float(values[-1]) for name, values in history.history.items()},
        "epochs_run_this_session": len(next(iter(history.history.values()), [])),
        "train_seconds": round(train_seconds, 2),
        "config": asdict(config),
    }


def write_metrics(results: dict, paths: dict) -> dict:
    """Writes `results` to ``paths["metrics"]`` and returns them with the files' paths (a path
    or a list of paths per name)."""
    Path(paths["metrics"]).write_text(json.dumps(results, indent=2))
    files = {
        name: [str(p) for p in path] if isinstance(path, list) else str(path)
        for name, path in paths.items()
    }
    return {**results, "files": files}


def export_for_serving(paths: dict, name: str, model, output_dir: Path, export_format: str) -> None:
    """Exports `model` for serving (``dlkit.export``) as ``output_dir/<name>`` (``.onnx`` for
    ONNX) and records the path in `paths` under `name`, unless `export_format` is "none"."""
    if export_format == "none":
        return
    from dlkit.export import export

    suffix = ".onnx" if export_format == "onnx" else ""
    paths[name] = export(model, output_dir / f"{name}{suffix}", format=export_format)


def save_for_serving(paths: dict, name: str, network, output_dir: Path, export_format: str) -> None:
    """Saves `network` to ``paths[name]`` (a ``.keras`` file) and exports it for serving as
    ``output_dir/<name>_export`` (`export_for_serving`)."""
    network.save(paths[name])
    export_for_serving(paths, f"{name}_export", network, output_dir, export_format)
