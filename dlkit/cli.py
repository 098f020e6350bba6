"""The ``dlkit`` command line.

Commands:

- ``dlkit info``: versions, the active Keras backend and its devices.
- ``dlkit recipes``: the installed recipes with a one-line description each.
- ``dlkit run NAME [--field value ...]``: runs a recipe, overriding fields of its ``Config``;
  ``dlkit run NAME --help`` documents every field.
- ``dlkit export MODEL.keras DIR [--format saved_model|onnx|all]``: exports a saved model for
  serving (``dlkit.export``), checked by reloading it.
- ``dlkit demo``: the main job, a tour of the toolkit on embedded data.

``--backend tensorflow|jax|torch`` before the command selects the Keras backend (otherwise
``KERAS_BACKEND`` or Keras' default). User errors print one line and exit with status 2.

Commands start quietly: TensorFlow's C++ start-up logs (oneDNN notices, CUDA probing on a
machine without a GPU) are filtered out of standard error (``dlkit._native_logs``).
``--verbose`` before the command, or ``DLKIT_VERBOSE=1``, brings them back.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import importlib.util
import json
import os
import pkgutil
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlkit import __version__
from dlkit._native_logs import filter_native_logs, verbose_requested
from dlkit.config import ConfigError, format_help, parse_overrides

__all__ = ["DEMO_STAGES", "export_model", "main", "recipe_entry_point"]

BACKENDS = ("tensorflow", "jax", "torch")

# The stages of `dlkit demo`: (recipe name, overrides). Each runs on embedded data.
DEMO_STAGES: list[tuple[str, dict[str, Any]]] = [
    ("classifier_digits", {"epochs": 5}),
    ("vae_digits", {"epochs": 10}),
    ("gan_digits", {"epochs": 40}),
    # CartPole is local to gymnasium; PPO ends at the first evaluation that solves it.
    ("ppo_cartpole", {"total_timesteps": 30_000, "stop_at_solved": True}),
]


class UsageError(Exception):
    """A mistake on the command line, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def recipe_names() -> list[str]:
    """Names of the installed recipes (the module names of ``dlkit.recipes``)."""
    import dlkit.recipes

    return sorted(
        info.name
        for info in pkgutil.iter_modules(dlkit.recipes.__path__)
        if not info.name.startswith("_")
    )


def recipe_description(name: str) -> str:
    """First line of a recipe's docstring, read without importing it (imports are slow)."""
    spec = importlib.util.find_spec(f"dlkit.recipes.{name}")
    if spec is None or spec.origin is None:
        return ""
    docstring = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
    return (docstring or "").strip().splitlines()[0] if docstring else ""


def _load_recipe(name: str):
    if name not in recipe_names():
        raise UsageError(
            f"unknown recipe {name!r}; run `dlkit recipes` to list them "
            f"({', '.join(recipe_names())})"
        )
    return importlib.import_module(f"dlkit.recipes.{name}")


def run_recipe(name: str, argv: Sequence[str]) -> dict:
    """Runs recipe ``name`` with ``--field value`` overrides and returns its results.

    ``--distribute`` among the arguments runs the recipe inside ``dlkit.distribute.scope()``,
    data-parallel on every device (and host) the backend's engine is given.
    """
    module = _load_recipe(name)
    if any(argument in ("-h", "--help") for argument in argv):
        print(format_help(name, recipe_description(name), module.Config))
        print("  --distribute  (flag)\n      Train data-parallel with dlkit.distribute.scope().")
        return {}
    distribute = "--distribute" in argv
    argv = [argument for argument in argv if argument != "--distribute"]
    try:
        config = parse_overrides(module.Config, argv)
    except ConfigError as error:
        raise UsageError(f"{name}: {error}") from None
    if not distribute:
        return _run_main(name, module.main, config)
    from dlkit import distribute as distribute_module

    context = distribute_module.scope()
    try:
        engine = context.__enter__()
    except ValueError as error:
        raise UsageError(f"--distribute: {error}") from None
    print(f"[dlkit] {name}: distributed with {type(engine).__name__}", flush=True)
    try:
        return _run_main(name, module.main, config)
    finally:
        context.__exit__(None, None, None)


def _run_main(name: str, main_fn: Callable, config: Any) -> dict:
    print(f"[dlkit] {name}: {config}", flush=True)
    start = time.perf_counter()
    try:
        results = main_fn(config)
    except KeyboardInterrupt:
        print(
            f"[dlkit] {name} interrupted; run the same command again to resume from its "
            "checkpoint.",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    print(f"[dlkit] {name} finished in {time.perf_counter() - start:.1f} s", flush=True)
    print(json.dumps(results, indent=2, default=str), flush=True)
    return results


def recipe_entry_point(config_cls: type, main_fn: Callable, argv: Sequence[str] | None = None):
    """Runs a recipe file as a script: ``python recipes/NAME.py [--field value ...]``."""
    name = Path(sys.argv[0]).stem
    _configure_logging(verbose=False, script=argv is None)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if any(argument in ("-h", "--help") for argument in argv):
            module_doc = sys.modules[main_fn.__module__].__doc__ or ""
            print(format_help(name, module_doc.strip().splitlines()[0], config_cls))
            return
        try:
            config = parse_overrides(config_cls, argv)
        except ConfigError as error:
            raise UsageError(f"{name}: {error}") from None
        _run_main(name, main_fn, config)
    except UsageError as error:
        print(f"dlkit: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def info() -> dict:
    """Versions, the active backend and its devices."""
    import keras

    from dlkit.training import list_devices

    versions = {"dlkit": __version__, "python": platform.python_version()}
    for package in ("keras", "tensorflow", "jax", "torch", "tensorflow-datasets", "gymnasium"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {"versions": versions, "backend": keras.backend.backend(), "devices": list_devices()}


def export_model(model_path: str, output_dir: str, format: str = "saved_model") -> list[str]:
    """``dlkit export``: loads a ``.keras`` file, writes ``saved_model/`` and/or ``model.onnx``."""
    if not model_path.endswith(".keras") or not os.path.isfile(model_path):
        raise UsageError(f"expected an existing .keras file, received {model_path!r}")
    import keras

    import dlkit.layers  # noqa: F401  (registers dlkit's layers for loading)
    from dlkit.export import export

    try:
        model = keras.saving.load_model(model_path, compile=False)
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"cannot load {model_path!r}: {' '.join(str(error).split())[:300]}"
        ) from None
    formats = ("saved_model", "onnx") if format == "all" else (format,)
    targets = {"saved_model": "saved_model", "onnx": "model.onnx"}
    paths = []
    for name in formats:
        try:
            paths.append(str(export(model, os.path.join(output_dir, targets[name]), name)))
        except (ImportError, ValueError) as error:
            raise UsageError(" ".join(str(error).split())) from None
    return paths


def demo(output_root: str = "runs") -> dict:
    """Runs every stage of the demo and returns {stage: results}."""
    results = {}
    for index, (name, overrides) in enumerate(DEMO_STAGES, start=1):
        print(f"[dlkit demo] stage {index}/{len(DEMO_STAGES)}: {name}", flush=True)
        module = _load_recipe(name)
        config = module.Config(**overrides, output_dir=os.path.join(output_root, name))
        results[name] = _run_main(name, module.main, config)
    return results


def _configure_logging(verbose: bool, script: bool) -> None:
    """Quietens TensorFlow's start-up logs unless `verbose` or ``DLKIT_VERBOSE`` asks for them.

    The descriptor-level filter is installed only for a real command (`script`): a caller that
    passes its own argv, such as a test, keeps its standard error as it is.
    """
    if verbose or verbose_requested():
        return
    # TensorFlow's Python-side and later C++ messages drown the progress output of a recipe.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if script:
        filter_native_logs()


def _build_parser() -> _Parser:
    parser = _Parser(prog="dlkit", description="Deep-learning course techniques on any backend.")
    parser.add_argument("--backend", choices=BACKENDS, help="Keras backend to use.")
    parser.add_argument("--version", action="version", version=f"dlkit {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the native libraries' start-up logs (also DLKIT_VERBOSE=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("info", help="versions, active backend and devices")
    commands.add_parser("recipes", help="list the recipes")
    run = commands.add_parser("run", help="run a recipe", add_help=False)
    run.add_argument("name", help="recipe name (see `dlkit recipes`)")
    run.add_argument("overrides", nargs=argparse.REMAINDER, help="--field value ...")
    export_parser = commands.add_parser("export", help="export a .keras model for serving")
    export_parser.add_argument("model", help="path of a .keras file")
    export_parser.add_argument("output_dir", help="folder to write the export(s) into")
    export_parser.add_argument(
        "--format", choices=("saved_model", "onnx", "all"), default="saved_model"
    )
    demo_parser = commands.add_parser("demo", help="the main job on embedded data")
    demo_parser.add_argument("--output-root", default="runs", help="where artefacts go")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlkit`` console script; returns the exit status.

    Without `argv` (the console script) it reads ``sys.argv`` and filters the native start-up
    logs out of standard error; with `argv` it leaves standard error alone.
    """
    script = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        arguments = _build_parser().parse_args(argv)
        if arguments.backend:
            os.environ["KERAS_BACKEND"] = arguments.backend
        _configure_logging(arguments.verbose, script)
        if arguments.command == "info":
            print(json.dumps(info(), indent=2))
        elif arguments.command == "recipes":
            names = recipe_names()
            width = max(map(len, names), default=0)
            for name in names:
                print(f"{name:<{width}}  {recipe_description(name)}")
        elif arguments.command == "run":
            run_recipe(arguments.name, arguments.overrides)
        elif arguments.command == "export":
            for path in export_model(arguments.model, arguments.output_dir, arguments.format):
                print(path)
        elif arguments.command == "demo":
            demo(arguments.output_root)
    except UsageError as error:
        print(f"dlkit: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
