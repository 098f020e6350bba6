"""Teach a Transformer to reverse (or sort) digit strings, then decode held-out ones.

An encoder-decoder Transformer [notes §7.3] learns a sequence-to-sequence task generated
offline (``dlkit.data.digit_sequences``): the source is a string of 3-10 digits, the target is
the same digits reversed (``task="reverse"``) or sorted (``task="sort"``). Training uses teacher
forcing and label smoothing; evaluation decodes every held-out source from scratch, greedily and
by beam search, and counts the exact-sequence matches. No held-out source occurs in training.

Artefacts in ``output_dir``: ``model.keras`` (the Transformer), ``generator.keras`` and its
SavedModel export ``generator_export`` (source ids → decoded ids, the whole search in one
graph), ``attention.png`` (cross-attention of the last decoder block on a held-out example),
``history.png`` and ``metrics.json``. An interrupted run resumes from ``output_dir/backup``.

Run: ``dlkit run transformer_digits --task sort`` or ``python recipes/transformer_digits.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from dlkit.data import VOCABULARY, VOCABULARY_SIZE, digit_sequences, tokens_to_text
from dlkit.models import Transformer
from dlkit.plotting import plot_attention
from dlkit.recipes._recipe import check_config, export_for_serving, fit, run_summary, write_metrics

TASKS = ("reverse", "sort")
# Held-out exact-sequence accuracy of greedy decoding that a trained model must reach.
EXACT_MATCH_GATE = 0.95
# A small configuration of the reverse task (3-6 digits, 1,500 training strings, 180 steps)
# that reaches the gate in seconds: tests/recipes/test_transformer_digits.py trains it on
# every backend.
QUICK_CONFIG = {
    "num_train": 1500,
    "num_test": 200,
    "max_length": 6,
    "model_dim": 32,
    "num_layers": 1,
    "dropout": 0.0,
    "epochs": 6,
    "batch_size": 50,
    "learning_rate": 3e-3,
}


@dataclass
class Config:
    task: str = "reverse"
    """The task: "reverse" or "sort" the source digits."""
    num_train: int = 6000
    """Training sequences (all distinct)."""
    num_test: int = 500
    """Held-out sequences, none of which occurs in training."""
    min_length: int = 3
    """Fewest digits in a source."""
    max_length: int = 10
    """Most digits in a source."""
    model_dim: int = 64
    """Embedding and model width d_model."""
    num_heads: int = 4
    """Attention heads per block."""
    num_layers: int = 2
    """Encoder blocks and decoder blocks (as many of each)."""
    dropout: float = 0.1
    """Dropout of embeddings, attention weights and sublayers."""
    label_smoothing: float = 0.1
    """Label smoothing ε of the token cross-entropy."""
    epochs: int = 12
    """Passes over the training sequences."""
    batch_size: int = 64
    """Sequences per gradient step."""
    learning_rate: float = 1e-3
    """Adam step size."""
    beam_width: int = 3
    """Beams of the beam-search evaluation (greedy decoding is always evaluated too)."""
    seed: int = 0
    """Seed of the data, the weights and dropout."""
    export: str = "saved_model"
    """Serving export of the generator: saved_model, onnx or none."""
    output_dir: str = "runs/transformer_digits"
    """Folder for the models, figures, metrics and the resumable backup."""
    verbose: int = 2
    """Keras progress output: 0 silent, 1 progress bar, 2 one line per epoch."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"Expected `task` to be one of {TASKS}. Received: task={self.task!r}")
        check_config(
            self,
            positive=(
                "num_train",
                "num_test",
                "min_length",
                "max_length",
                "model_dim",
                "num_heads",
                "num_layers",
                "epochs",
                "batch_size",
                "learning_rate",
                "beam_width",
            ),
            non_negative=("dropout", "label_smoothing"),
        )


def exact_match(generated: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Whether each generated sequence equals its target up to and including END, (N,)."""
    return np.array([tokens_to_text(g) == tokens_to_text(t) for g, t in zip(generated, targets)])


def main(config: Config) -> dict:
    """Trains, decodes the held-out sources and writes the artefacts; returns the metrics."""
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    data = digit_sequences(
        config.task,
        num_train=config.num_train,
        num_test=config.num_test,
        min_length=config.min_length,
        max_length=config.max_length,
        seed=config.seed,
    )
    train, test = data["train"], data["test"]
    print(
        f"{config.task}: {len(train['source'])} training and {len(test['source'])} held-out "
        f"sequences of {config.min_length}-{config.max_length} digits"
    )

    model = Transformer(
        VOCABULARY_SIZE,
        VOCABULARY_SIZE,
        max_length=config.max_length + 1,  # START and the digits in, the digits and END out
        model_dim=config.model_dim,
        num_heads=config.num_heads,
        intermediate_dim=2 * config.model_dim,
        num_layers=config.num_layers,
        dropout=config.dropout,
        label_smoothing=config.label_smoothing,
    )
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))

    def inputs(split):
        return {"source": split["source"], "decoder_inputs": split["decoder_inputs"]}

    # The resumable backup needs the weights before `fit`.
    model.build({name: (None, array.shape[1]) for name, array in inputs(train).items()})

    history, train_seconds = fit(
        model,
        {
            "x": inputs(train),
            "y": train["targets"],
            "batch_size": config.batch_size,
            "validation_data": (inputs(test), test["targets"]),
        },
        config,
        output_dir,
    )

    greedy = model.generate(test["source"])
    beam = model.generate(test["source"], beam_width=config.beam_width)
    greedy_correct = exact_match(greedy, test["targets"])
    beam_correct = exact_match(beam, test["targets"])
    print(
        f"held-out exact-sequence accuracy: greedy {greedy_correct.mean():.3f}, "
        f"beam search (width {config.beam_width}) {beam_correct.mean():.3f}"
    )

    # The attention heat map of the longest held-out example.
    example = int(np.argmax(np.sum(test["source"] != 0, axis=1)))
    source = test["source"][example : example + 1]
    generated = greedy[example]
    # The digits and END (all max_length positions when no END was generated).
    length = min(len(tokens_to_text(generated)) + 1, len(generated))
    # Row t reads START and the first t generated tokens, and predicts generated[t].
    decoder_inputs = np.concatenate([test["decoder_inputs"][example, :1], generated[: length - 1]])
    weights = model.cross_attention_weights(source, decoder_inputs[None])  # (1, H, T, S)
    source_length = int(np.sum(source != 0))
    paths = {
        "model": output_dir / "model.keras",
        "generator": output_dir / "generator.keras",
        "attention": plot_attention(
            weights[0].mean(axis=0)[:, :source_length],  # heads averaged: (T, S)
            [VOCABULARY[i] for i in source[0, :source_length]],
            [VOCABULARY[i] for i in generated[:length]],
            output_dir / "attention.png",
            title=f"{config.task}: cross-attention of the last decoder block",
        ),
        "history": output_dir / "history.png",
        "metrics": output_dir / "metrics.json",
    }
    model.save(paths["model"])
    generator = model.generator()
    generator.save(paths["generator"])
    export_for_serving(paths, "generator_export", generator, output_dir, config.export)
    results = {
        **run_summary(config, history, train_seconds),
        "greedy_exact_accuracy": float(greedy_correct.mean()),
        "beam_exact_accuracy": float(beam_correct.mean()),
        "examples": [
            {
                "source": tokens_to_text(test["source"][i]),
                "target": tokens_to_text(test["targets"][i]),
                "greedy": tokens_to_text(greedy[i]),
            }
            for i in range(5)
        ],
        "num_train": len(train["source"]),
        "num_test": len(test["source"]),
    }
    return write_metrics(results, paths)


if __name__ == "__main__":
    from dlkit.cli import recipe_entry_point

    recipe_entry_point(Config, main)
