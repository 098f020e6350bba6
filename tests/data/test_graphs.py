import numpy as np
import pytest

from dlkit.data.graphs import karate_club, split_nodes, stochastic_block_model


def _check_graph_dict(graph, num_nodes, num_features):
    assert graph["features"].shape == (num_nodes, num_features)
    assert graph["features"].dtype == np.float32
    adjacency, edges = graph["adjacency"], graph["edges"]
    assert adjacency.shape == (num_nodes, num_nodes) and adjacency.dtype == np.float32
    assert edges.dtype == np.int32 and edges.shape[1] == 2
    assert graph["labels"].shape == (num_nodes,) and graph["labels"].dtype == np.int32
    np.testing.assert_array_equal(adjacency, adjacency.T)
    assert set(np.unique(adjacency)) <= {0.0, 1.0}
    assert np.all(np.diag(adjacency) == 0)
    # The edge list holds each nonzero entry once: (source, target) is A[target, source].
    rebuilt = np.zeros_like(adjacency)
    np.add.at(rebuilt, (edges[:, 1], edges[:, 0]), 1.0)
    np.testing.assert_array_equal(rebuilt, adjacency)


def test_karate_club_has_the_published_size_and_format():
    graph = karate_club()
    _check_graph_dict(graph, num_nodes=34, num_features=34)
    np.testing.assert_array_equal(graph["features"], np.eye(34))
    assert len(graph["edges"]) == 156
    assert np.bincount(graph["labels"]).tolist() == [17, 17]
    assert graph["labels"][0] == 0 and graph["labels"][33] == 1  # the instructor, the officer
    assert graph["adjacency"].sum(axis=1).max() == 17  # node 33 has 17 friends


def test_karate_club_equals_networkx():
    networkx = pytest.importorskip("networkx")
    reference = networkx.karate_club_graph()
    graph = karate_club()
    expected = networkx.to_numpy_array(reference, nodelist=range(34), weight=None)
    np.testing.assert_array_equal(graph["adjacency"], expected)
    clubs = [0 if reference.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(34)]
    np.testing.assert_array_equal(graph["labels"], clubs)


def test_stochastic_block_model_is_seeded_and_has_its_blocks():
    graph = stochastic_block_model(num_nodes=90, num_blocks=3, p_in=0.3, p_out=0.02, seed=4)
    _check_graph_dict(graph, num_nodes=90, num_features=16)
    assert np.bincount(graph["labels"]).tolist() == [30, 30, 30]
    same_block = graph["labels"][:, None] == graph["labels"][None, :]
    off_diagonal = ~np.eye(90, dtype=bool)
    inside = graph["adjacency"][same_block & off_diagonal].mean()
    across = graph["adjacency"][~same_block].mean()
    assert 0.2 < inside < 0.4 and across < 0.05
    # Features cluster around their block's mean.
    means = np.stack([graph["features"][graph["labels"] == k].mean(axis=0) for k in range(3)])
    distances = ((graph["features"][:, None] - means[None]) ** 2).sum(axis=-1)
    assert np.mean(distances.argmin(axis=1) == graph["labels"]) > 0.8
    again = stochastic_block_model(num_nodes=90, num_blocks=3, p_in=0.3, p_out=0.02, seed=4)
    for name in graph:
        np.testing.assert_array_equal(graph[name], again[name])
    other = stochastic_block_model(num_nodes=90, num_blocks=3, p_in=0.3, p_out=0.02, seed=5)
    assert not np.array_equal(graph["adjacency"], other["adjacency"])


def test_split_nodes_labels_a_few_nodes_per_class():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2], dtype=np.int32)
    train_mask, test_mask = split_nodes(labels, num_per_class=2, seed=3)
    assert train_mask.dtype == bool and train_mask.shape == labels.shape
    np.testing.assert_array_equal(test_mask, ~train_mask)
    assert np.bincount(labels[train_mask]).tolist() == [2, 2, 2]
    np.testing.assert_array_equal(split_nodes(labels, 2, seed=3)[0], train_mask)
    choices = {tuple(np.flatnonzero(split_nodes(labels, 1, seed=seed)[0])) for seed in range(10)}
    assert len(choices) > 1


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: stochastic_block_model(num_blocks=0), r"num_blocks=0"),
        (lambda: stochastic_block_model(num_nodes=2, num_blocks=3), r"num_nodes=2"),
        (lambda: stochastic_block_model(p_in=1.5), r"p_in=1.5"),
        (lambda: stochastic_block_model(p_out=-0.1), r"p_out=-0.1"),
        (lambda: stochastic_block_model(num_features=0), r"num_features=0"),
        (lambda: stochastic_block_model(feature_noise=-1.0), r"feature_noise=-1.0"),
        (lambda: split_nodes(np.array([0, 0, 1, 1]), num_per_class=0), r"num_per_class=0"),
        (lambda: split_nodes(np.array([0, 0, 1, 1]), num_per_class=2), r"num_per_class=2"),
        (lambda: split_nodes(np.zeros((2, 2), int), num_per_class=1), r"labels"),
    ],
)
def test_bad_arguments_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()
