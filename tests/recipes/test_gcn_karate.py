import json

import keras
import numpy as np
import pytest

from dlkit.data.graphs import karate_club
from dlkit.recipes import gcn_karate


def test_tiny_config_trains_and_writes_every_artefact(tmp_path):
    config = gcn_karate.Config(epochs=3, hidden_units=4, output_dir=str(tmp_path), verbose=0)
    results = gcn_karate.main(config)
    assert results["backend"] == keras.backend.backend()
    assert results["num_labelled"] == 4 and results["num_unlabelled"] == 30
    assert 0.0 <= results["test_accuracy"] <= 1.0
    for name in ("model.keras", "graph.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(results["test_accuracy"])
    # The saved model predicts a club for all 34 members.
    graph = karate_club()
    model = keras.saving.load_model(tmp_path / "model.keras")
    inputs = {"features": graph["features"][None], "adjacency": graph["adjacency"][None]}
    logits = keras.ops.convert_to_numpy(model(inputs, training=False))
    assert logits.shape == (1, 34, 2)


def test_spectral_layout_separates_two_disconnected_cliques():
    adjacency = np.zeros((6, 6))
    adjacency[:3, :3] = adjacency[3:, 3:] = 1.0 - np.eye(3)
    positions = gcn_karate.spectral_layout(adjacency)
    assert positions.shape == (6, 2)
    centres = positions[:3].mean(axis=0), positions[3:].mean(axis=0)
    assert np.linalg.norm(centres[0] - centres[1]) > 0.5


@pytest.mark.parametrize(
    "field, value",
    [
        ("dataset", "cora"),
        ("conv", "spatial"),
        ("epochs", 0),
        ("num_per_class", 0),
        ("dropout", 1.0),
    ],
)
def test_bad_config_values_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        gcn_karate.Config(**{field: value})
