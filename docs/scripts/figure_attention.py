"""Draws attention masks and learned attention weights for the docs.

Writes docs/pages/layers/img/attention.png: the mask a decoder's self-attention uses for a
padded sequence (causal and padding combined), and the attention weights of two heads of a
one-block transformer encoder trained for a few seconds to reverse sequences of 8 tokens.
Run from the repository root: python docs/scripts/figure_attention.py
"""

from __future__ import annotations

import pathlib

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from dlkit.layers.attention import MultiHeadAttention
from dlkit.layers.transformer import TransformerEncoder

matplotlib.use("Agg")  # no display needed; the figure is only written to a file

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "pages" / "layers" / "img"
LENGTH, VOCABULARY, WIDTH = 8, 10, 32


def decoder_mask(length: int = LENGTH, num_real: int = 6) -> np.ndarray:
    """The self-attention mask of one decoder sequence whose last tokens are padding."""
    layer = MultiHeadAttention(num_heads=1, key_dim=4)
    x = np.zeros((1, length, 4), dtype="float32")
    padding_mask = np.arange(length)[None] < num_real
    _, weights = layer(
        x, x, value_mask=padding_mask, use_causal_mask=True, return_attention_scores=True
    )
    # With equal scores every allowed key gets the same weight: non-zero exactly where allowed.
    return keras.ops.convert_to_numpy(weights)[0, 0] > 0


def trained_reversal_weights(seed: int = 0) -> np.ndarray:
    """Attention weights (H, T, T) of an encoder block trained to reverse token sequences."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCABULARY, size=(4096, LENGTH))
    inputs = keras.Input((LENGTH,), dtype="int32")
    positions = keras.ops.zeros_like(inputs) + keras.ops.arange(LENGTH, dtype="int32")
    embedded = keras.layers.Embedding(VOCABULARY, WIDTH)(inputs)
    embedded = embedded + keras.layers.Embedding(LENGTH, WIDTH)(positions)
    encoder = TransformerEncoder(intermediate_dim=64, num_heads=2)
    outputs = keras.layers.Dense(VOCABULARY)(encoder(embedded))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(tokens, tokens[:, ::-1], batch_size=64, epochs=6, verbose=0)
    # Post-norm: the self-attention reads the embeddings directly.
    example = keras.Model(inputs, embedded)(tokens[:1])
    _, weights = encoder.self_attention(example, example, return_attention_scores=True)
    return keras.ops.convert_to_numpy(weights)[0]


def main() -> pathlib.Path:
    mask = decoder_mask()
    weights = trained_reversal_weights()
    panels = [
        (
            "decoder mask, black = may attend\n(causal ∧ padding; 6 real tokens, 2 padding)",
            mask,
            "Greys",
        ),
        ("head 1 after learning to reverse", weights[0], "viridis"),
        ("head 2 after learning to reverse", weights[1], "viridis"),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2), constrained_layout=True)
    for axis, (title, values, colormap) in zip(axes, panels):
        image = axis.imshow(values, cmap=colormap, vmin=0.0, vmax=1.0)
        axis.set_title(title)
        axis.set_xlabel("key position j")
        axis.set_ylabel("query position i")
        if colormap != "Greys":
            figure.colorbar(image, ax=axis, shrink=0.85)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "attention.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(main())
