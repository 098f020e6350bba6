"""Measures a generative recipe's judge-based gate over several seeds, for the docs.

Runs the recipe `NAME` (gan_digits, cgan_digits, acgan_digits, cvae_digits, vaegan_digits) once
per seed with its defaults and the `--set field=value` overrides, and prints one JSON line per
seed: the requested-class accuracy of a conditional recipe, or the smallest class share of an
unconditional one, as judged by `dlkit.vision.judge.digit_judge`, with the training time
(wall and process CPU seconds). The backend is KERAS_BACKEND's.

Run from the repository root, e.g.
    KERAS_BACKEND=jax python docs/scripts/generator_gates.py cgan_digits --seeds 0 1 2
    KERAS_BACKEND=jax python docs/scripts/generator_gates.py cgan_digits \
        --set dataset=mnist_sample --set epochs=10
"""

from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import time

import keras


def parse_value(text: str):
    """An override's value: a number where it reads as one, else the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="recipe name, e.g. cgan_digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], help="field=value override")
    arguments = parser.parse_args()
    recipe = importlib.import_module(f"dlkit.recipes.{arguments.name}")
    overrides = dict(item.split("=", 1) for item in arguments.set)
    overrides = {field: parse_value(value) for field, value in overrides.items()}
    for seed in arguments.seeds:
        with tempfile.TemporaryDirectory() as output_dir:
            config = recipe.Config(
                **{**overrides, "seed": seed},
                export="none",
                output_dir=output_dir,
                verbose=0,
            )
            cpu_start = time.process_time()
            results = recipe.main(config)
        shares = results.get("class_shares_of_samples", results.get("class_shares"))
        line = {
            "recipe": arguments.name,
            "backend": keras.backend.backend(),
            "seed": seed,
            "overrides": overrides,
            "requested_class_accuracy": results.get("requested_class_accuracy"),
            "smallest_class_share": None if shares is None else min(shares),
            "train_seconds": results["train_seconds"],
            "cpu_seconds": round(time.process_time() - cpu_start, 1),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
