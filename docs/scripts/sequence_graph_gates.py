"""Prints, as JSON lines, the figures behind the quality gates of the chapter 6-8 recipe tests.

Each line is one run of a recipe's gate configuration (the one its test in tests/recipes/
trains) on the current Keras backend: the GCN's default configuration on the karate club and
the stochastic block model, the Transformer's, the sequence classifiers' and the CycleGAN's
``QUICK_CONFIG``. The docs quote these lines, naming the backend.

Run: ``KERAS_BACKEND=jax python docs/scripts/sequence_graph_gates.py [--seeds 0 1 2]``
(default: the seed each test uses).
"""

from __future__ import annotations

import argparse
import json
import tempfile

import keras

from dlkit.recipes import cyclegan, gcn_karate, sequence_classifiers, transformer_digits


def _runs(seed: int | None):
    def quick(config):
        return config if seed is None else {**config, "seed": seed}

    for dataset in gcn_karate.DATASETS:
        yield "gcn_karate", gcn_karate.Config, {"dataset": dataset, **quick({})}, ["test_accuracy"]
    yield (
        "transformer_digits",
        transformer_digits.Config,
        {**quick(transformer_digits.QUICK_CONFIG), "beam_width": 1, "export": "none"},
        ["greedy_exact_accuracy"],
    )
    yield (
        "sequence_classifiers",
        sequence_classifiers.Config,
        quick(sequence_classifiers.QUICK_CONFIG),
        [f"{name}.test_accuracy" for name in sequence_classifiers.MODEL_NAMES],
    )
    yield (
        "cyclegan",
        cyclegan.Config,
        {**quick(cyclegan.QUICK_CONFIG), "export": "none"},
        ["cycle_error_a", "cycle_error_b", "translation_error_ab", "translation_error_ba"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[None])
    for seed in parser.parse_args().seeds:
        for recipe, config_class, overrides, keys in _runs(seed):
            with tempfile.TemporaryDirectory() as output_dir:
                config = config_class(**overrides, output_dir=output_dir, verbose=0)
                results = recipe_main(recipe)(config)
            figures = {}
            for key in keys:
                value = results
                for part in key.split("."):
                    value = value[part]
                figures[key] = round(value, 4)
            line = {"recipe": recipe, "backend": keras.backend.backend(), "seed": config.seed}
            print(json.dumps({**line, **overrides, **figures}), flush=True)


def recipe_main(recipe: str):
    return {
        "gcn_karate": gcn_karate.main,
        "transformer_digits": transformer_digits.main,
        "sequence_classifiers": sequence_classifiers.main,
        "cyclegan": cyclegan.main,
    }[recipe]


if __name__ == "__main__":
    main()
