"""Training steps per second of the sequence and graph models, per backend.

Times ``train_on_batch`` (one compiled forward pass, loss, backward pass and Adam update) after
warm-up, for each model of notes ch. 7-8 at the size its recipe uses: the encoder-decoder
Transformer on digit reversal, the LSTM and transformer classifiers on palindromes, the LSTM
forecaster on sine windows and the GCN on a 300-node stochastic block model. For the
Transformer it also times decoding: held-out sequences per second, greedy and beam search (the
whole search in one compiled call). dlkit's LSTM is timed next to ``keras.layers.LSTM`` in the
same classifier, for reference. Prints one JSON object per backend.

Usage::

    python benchmarks/sequences.py                 # the backend of KERAS_BACKEND (or tensorflow)
    python benchmarks/sequences.py --backend jax
    python benchmarks/sequences.py --all           # each backend in its own process, a JSON list
"""

from __future__ import annotations

import time

from _common import steps_benchmark_main

BATCH_SIZE = 64


def cases():
    """(name, model factory, x, y, sample_weight): each model compiled, with one batch of data."""
    import keras
    import numpy as np

    from dlkit.data import (
        VOCABULARY_SIZE,
        digit_classification,
        digit_sequences,
        noisy_sine_windows,
        stochastic_block_model,
    )
    from dlkit.models import (
        Transformer,
        build_gcn,
        build_lstm_classifier,
        build_lstm_forecaster,
        build_transformer_classifier,
    )

    def compiled(model, **kwargs):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), **kwargs)
        return model

    classification = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    sequences = digit_sequences("reverse", num_train=BATCH_SIZE, num_test=1)["train"]
    tokens, labels = digit_classification(num_train=BATCH_SIZE, num_test=2)["train"]
    windows, next_values = noisy_sine_windows(num_windows=BATCH_SIZE, window=32)
    graph = stochastic_block_model()

    def keras_lstm_classifier():
        inputs = keras.Input((None,), dtype="int32")
        x = keras.layers.Embedding(VOCABULARY_SIZE, 32, mask_zero=True)(inputs)
        x = keras.layers.LSTM(64)(x)
        return keras.Model(inputs, keras.layers.Dense(2)(x))

    return [
        (
            "Transformer seq2seq (2+2 blocks, d 64, reverse 3-10 digits)",
            lambda: compiled(Transformer(VOCABULARY_SIZE, VOCABULARY_SIZE, max_length=11)),
            {"source": sequences["source"], "decoder_inputs": sequences["decoder_inputs"]},
            sequences["targets"],
            None,
        ),
        (
            "LSTM classifier (dlkit LSTM 64, palindromes of 4-12)",
            lambda: compiled(build_lstm_classifier(VOCABULARY_SIZE, 2), loss=classification),
            tokens,
            labels,
            None,
        ),
        (
            "LSTM classifier (keras.layers.LSTM 64, same data)",
            lambda: compiled(keras_lstm_classifier(), loss=classification),
            tokens,
            labels,
            None,
        ),
        (
            "Transformer classifier (1 block, d 32, palindromes of 4-12)",
            lambda: compiled(
                build_transformer_classifier(VOCABULARY_SIZE, 2, max_length=tokens.shape[1]),
                loss=classification,
            ),
            tokens,
            labels,
            None,
        ),
        (
            "LSTM forecaster (32 units, windows of 32)",
            lambda: compiled(build_lstm_forecaster(32), loss="mse"),
            windows,
            next_values,
            None,
        ),
        (
            "GCN (2 layers, SBM of 300 nodes, full batch)",
            lambda: compiled(
                build_gcn(graph["features"].shape[1], int(graph["labels"].max()) + 1),
                loss=classification,
            ),
            {"features": graph["features"][None], "adjacency": graph["adjacency"][None]},
            graph["labels"][None],
            np.ones((1, len(graph["labels"])), "float32"),
        ),
    ]


def time_steps(model, x, y, sample_weight, steps: int, repeats: int) -> float:
    """Best-of-``repeats`` training steps per second of ``train_on_batch``."""
    for _ in range(3):  # compile and warm up
        model.train_on_batch(x, y, sample_weight=sample_weight)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y, sample_weight=sample_weight)
        best = min(best, (time.perf_counter() - start) / steps)
    return 1.0 / best


def time_decoding(model, source, beam_width: int, repeats: int) -> float:
    """Best-of-``repeats`` sequences per second of ``Transformer.generate`` (after warm-up)."""
    model.generate(source, beam_width=beam_width)  # compiles
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.generate(source, beam_width=beam_width)
        best = min(best, time.perf_counter() - start)
    return len(source) / best


def run(steps: int, repeats: int) -> dict:
    import keras

    from dlkit.data import digit_sequences

    results = []
    for name, make_model, x, y, sample_weight in cases():
        keras.utils.set_random_seed(0)
        model = make_model()
        steps_per_second = time_steps(model, x, y, sample_weight, steps, repeats)
        results.append({"model": name, "train_steps_per_s": round(steps_per_second, 1)})
        if name.startswith("Transformer seq2seq"):
            source = digit_sequences("reverse", num_train=1, num_test=256)["test"]["source"]
            for beam_width in (1, 3):
                results.append(
                    {
                        "model": f"{name}: decoding, beam width {beam_width}",
                        "sequences_per_s": round(time_decoding(model, source, beam_width, 2), 1),
                    }
                )
    return {
        "backend": keras.backend.backend(),
        "measure": f"train_on_batch steps/s at batch {BATCH_SIZE} (GCN: one graph), best of "
        "repeats; decoding: 256 held-out sources per generate call",
        "cases": results,
    }


if __name__ == "__main__":
    steps_benchmark_main(__file__, __doc__.splitlines()[0], run)
