import json

import keras
import numpy as np
import pytest

from dlkit.data.graphs import split_nodes
from dlkit.recipes import gcn_karate


@pytest.mark.slow
@pytest.mark.parametrize("dataset, num_nodes, num_classes", [("karate", 34, 2), ("sbm", 300, 3)])
def test_default_config_classifies_the_unlabelled_nodes(tmp_path, dataset, num_nodes, num_classes):
    # The default configuration (100 full-batch steps) takes seconds: no smaller one is needed.
    config = gcn_karate.Config(dataset=dataset, output_dir=str(tmp_path), verbose=0)
    results = gcn_karate.main(config)
    assert results["backend"] == keras.backend.backend()
    num_labelled = config.num_per_class * num_classes
    assert results["num_labelled"] == num_labelled
    assert results["num_unlabelled"] == num_nodes - num_labelled
    assert results["test_accuracy"] >= gcn_karate.ACCURACY_GATES[dataset]
    assert results["train_accuracy"] == 1.0  # the few labelled nodes are fitted
    for name in ("model.keras", "graph.png", "history.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] == pytest.approx(results["test_accuracy"])
    # The saved model reproduces the reported accuracy on the unlabelled nodes.
    graph = gcn_karate.load_graph(config)
    _, test_mask = split_nodes(graph["labels"], config.num_per_class, seed=config.seed)
    model = keras.saving.load_model(tmp_path / "model.keras")
    inputs = {"features": graph["features"][None], "adjacency": graph["adjacency"][None]}
    logits = keras.ops.convert_to_numpy(model(inputs, training=False))
    assert logits.shape == (1, num_nodes, num_classes)
    predictions = np.argmax(logits[0], axis=-1)
    accuracy = np.mean(predictions[test_mask] == graph["labels"][test_mask])
    assert accuracy == pytest.approx(results["test_accuracy"])


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
