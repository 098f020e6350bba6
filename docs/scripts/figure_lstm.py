"""Draws what a small trained LSTM keeps in its cell state, for the docs.

Trains `LSTM(8)` to tell the sign of the sum of a sequence of numbers, then steps its cell through
one longer sequence and writes docs/pages/layers/img/lstm.png: the inputs and their running sum,
the cell state unit that follows the running sum, and the gates at each step.
Run from the repository root: python docs/scripts/figure_lstm.py
"""

from __future__ import annotations

import pathlib

import keras
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from dlkit.layers.lstm import LSTM

matplotlib.use("Agg")  # no display needed; the figure is only written to a file

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "pages" / "layers" / "img"


def train(seed: int = 0) -> LSTM:
    rng = np.random.default_rng(seed)
    sequences = rng.normal(size=(2048, 12, 1)).astype("float32")
    labels = (sequences.sum(axis=(1, 2)) > 0).astype("float32")[:, None]
    keras.utils.set_random_seed(seed)
    lstm = LSTM(8)
    model = keras.Sequential(
        [keras.Input((None, 1)), lstm, keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
    model.fit(sequences, labels, batch_size=64, epochs=15, verbose=0)
    return lstm


def step_through(lstm: LSTM, sequence: np.ndarray) -> dict[str, np.ndarray]:
    """Runs the cell step by step and records its gates and states, each of shape (T, units)."""
    kernel, recurrent_kernel, bias = lstm.get_weights()
    units = lstm.units
    hidden_state, cell_state = np.zeros(units), np.zeros(units)
    records: dict[str, list] = {"forget_gate": [], "input_gate": [], "cell_state": []}
    for x in sequence:
        z = x @ kernel + hidden_state @ recurrent_kernel + bias
        z_input, z_forget, z_candidate, z_output = np.split(z, 4)
        forget_gate = 1 / (1 + np.exp(-z_forget))
        input_gate = 1 / (1 + np.exp(-z_input))
        cell_state = forget_gate * cell_state + input_gate * np.tanh(z_candidate)
        hidden_state = 1 / (1 + np.exp(-z_output)) * np.tanh(cell_state)
        records["forget_gate"].append(forget_gate)
        records["input_gate"].append(input_gate)
        records["cell_state"].append(cell_state)
    return {name: np.array(values) for name, values in records.items()}


def main() -> pathlib.Path:
    lstm = train()
    sequence = np.random.default_rng(1).normal(size=(24, 1)).astype("float32")
    running_sum = np.cumsum(sequence[:, 0])
    records = step_through(lstm, sequence)
    correlations = [
        abs(np.corrcoef(records["cell_state"][:, unit], running_sum)[0, 1])
        for unit in range(lstm.units)
    ]
    unit = int(np.argmax(correlations))
    steps = np.arange(1, len(sequence) + 1)

    figure, axes = plt.subplots(3, 1, figsize=(7, 6.5), sharex=True)
    axes[0].bar(steps, sequence[:, 0], color="0.7", label="input x_t")
    axes[0].plot(steps, running_sum, "k.-", label="running sum")
    axes[0].axhline(0, color="0.5", linewidth=0.5)
    axes[0].set_title("A sequence twice as long as those seen in training")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].plot(steps, records["cell_state"][:, unit], "C0.-")
    axes[1].axhline(0, color="0.5", linewidth=0.5)
    axes[1].set_title(
        f"cell_state of unit {unit} (|correlation| with the running sum {correlations[unit]:.2f})"
    )
    axes[2].plot(steps, records["forget_gate"][:, unit], "C1.-", label="forget_gate")
    axes[2].plot(steps, records["input_gate"][:, unit], "C2.-", label="input_gate")
    axes[2].set_ylim(0, 1.05)
    axes[2].set_title(f"gates of unit {unit}")
    axes[2].set_xlabel("time step t")
    axes[2].legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "lstm.png"
    figure.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    print(main())
