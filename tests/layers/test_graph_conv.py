import keras
import numpy as np
import pytest
from keras import ops

from dlkit.layers.graph_conv import ChebConv, GraphConv, normalize_adjacency
from dlkit.testing import run_layer_test

NUM_NODES, NUM_FEATURES, UNITS = 5, 3, 4


def _random_graph(seed=0):
    """A directed weighted graph with an isolated node, as a dense matrix and an edge list."""
    rng = np.random.default_rng(seed)
    adjacency = (rng.random((NUM_NODES, NUM_NODES)) < 0.5) * rng.uniform(0.5, 2.0, (5, 5))
    np.fill_diagonal(adjacency, 0.0)
    adjacency[-1, :] = adjacency[:, -1] = 0.0  # node 4 has no neighbour
    targets, sources = np.nonzero(adjacency)  # A[target, source]: a message source → target
    edges = np.stack([sources, targets], axis=1).astype("int32")
    return adjacency.astype("float32"), edges, adjacency[targets, sources].astype("float32")


def _numpy_normalize(adjacency, add_self_loops=True):
    adjacency = adjacency + np.eye(len(adjacency)) if add_self_loops else adjacency
    degree = adjacency.sum(axis=1)
    inverse_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)), 0.0)
    return inverse_sqrt[:, None] * adjacency * inverse_sqrt[None, :]


def _features(batch_size=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch_size, NUM_NODES, NUM_FEATURES)).astype("float32")


@pytest.mark.parametrize("add_self_loops", [True, False])
def test_normalize_adjacency_matches_numpy_for_single_and_batched_graphs(add_self_loops):
    adjacency, _, _ = _random_graph()
    batch = np.stack([adjacency, _random_graph(seed=3)[0]])
    expected = np.stack([_numpy_normalize(a, add_self_loops) for a in batch])
    result = ops.convert_to_numpy(normalize_adjacency(batch, add_self_loops=add_self_loops))
    np.testing.assert_allclose(result, expected, atol=1e-6)
    single = ops.convert_to_numpy(normalize_adjacency(adjacency, add_self_loops=add_self_loops))
    np.testing.assert_allclose(single, expected[0], atol=1e-6)
    assert np.all(np.isfinite(result))  # the isolated node divides by no zero degree


def test_graph_conv_matches_numpy():
    adjacency, _, _ = _random_graph()
    features = _features()
    layer = GraphConv(UNITS, activation="relu", bias_initializer="ones")
    outputs = ops.convert_to_numpy(layer(features, adjacency=adjacency))
    kernel, bias = (ops.convert_to_numpy(w) for w in (layer.kernel, layer.bias))
    expected = np.maximum(_numpy_normalize(adjacency) @ features @ kernel + bias, 0.0)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    assert outputs.shape == (2, NUM_NODES, UNITS)


def test_graph_conv_without_normalize_uses_the_matrix_as_given():
    adjacency, _, _ = _random_graph()
    features = _features()[0]  # (N, F), one graph
    layer = GraphConv(UNITS, use_bias=False, normalize=False)
    outputs = ops.convert_to_numpy(layer(features, adjacency=adjacency))
    expected = adjacency @ features @ ops.convert_to_numpy(layer.kernel)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    assert layer.bias is None


def _numpy_chebyshev(features, adjacency, kernel, bias):
    rescaled_laplacian = -_numpy_normalize(adjacency, add_self_loops=False)
    terms = [features, rescaled_laplacian @ features]
    while len(terms) < len(kernel):
        terms.append(2.0 * rescaled_laplacian @ terms[-1] - terms[-2])
    return sum(term @ weights for term, weights in zip(terms, kernel)) + bias


@pytest.mark.parametrize("order", [1, 2, 4])
def test_cheb_conv_matches_numpy_recurrence(order):
    adjacency, _, _ = _random_graph()
    features = _features()
    layer = ChebConv(UNITS, order=order, bias_initializer="ones")
    outputs = ops.convert_to_numpy(layer(features, adjacency=adjacency))
    kernel, bias = (ops.convert_to_numpy(w) for w in (layer.kernel, layer.bias))
    assert kernel.shape == (order, NUM_FEATURES, UNITS)
    expected = _numpy_chebyshev(features, adjacency, kernel, bias)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


@pytest.mark.parametrize("layer_class", [GraphConv, ChebConv])
@pytest.mark.parametrize("batched", [False, True])
def test_edge_list_gives_the_dense_result(layer_class, batched):
    adjacency, edges, edge_weights = _random_graph()
    features = _features() if batched else _features()[0]
    layer = layer_class(UNITS, bias_initializer="ones")
    dense = ops.convert_to_numpy(layer(features, adjacency=adjacency))
    sparse = ops.convert_to_numpy(layer(features, edges=edges, edge_weights=edge_weights))
    np.testing.assert_allclose(sparse, dense, atol=1e-5)
    # Unweighted edges are an adjacency of ones.
    ones = ops.convert_to_numpy(layer(features, edges=edges))
    np.testing.assert_allclose(
        ones, ops.convert_to_numpy(layer(features, adjacency=adjacency > 0)), atol=1e-5
    )


@pytest.mark.parametrize(
    "layer, graph_form",
    [
        (lambda: GraphConv(UNITS, activation="tanh"), "edges"),
        (lambda: ChebConv(UNITS, order=3), "adjacency"),
    ],
)
def test_keras_round_trip_inside_a_functional_model(tmp_path, layer, graph_form):
    adjacency, edges, _ = _random_graph()
    if graph_form == "adjacency":  # a batch of graphs: (B, N, F) and (B, N, N)
        graph_input = keras.Input((NUM_NODES, NUM_NODES), name="adjacency")
        features_input = keras.Input((NUM_NODES, NUM_FEATURES), name="features")
        inputs = {"features": _features(), "adjacency": np.stack([adjacency] * 2)}
    else:  # one graph: the leading axis of features (N, F) and edges (E, 2) is not a batch
        graph_input = keras.Input((2,), dtype="int32", name="edges")
        features_input = keras.Input((NUM_FEATURES,), name="features")
        inputs = {"features": _features()[0], "edges": edges}
    outputs = layer()(features_input, **{graph_form: graph_input})
    model = keras.Model({"features": features_input, graph_form: graph_input}, outputs)
    expected = ops.convert_to_numpy(model(inputs))
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(restored(inputs)), expected, atol=1e-6)
    restored_layer = restored.layers[-1]
    assert restored_layer.get_config() == model.layers[-1].get_config()


def test_get_config_restores_every_argument():
    layer = ChebConv(7, order=5, activation="relu", use_bias=False, name="cheb")
    clone = ChebConv.from_config(layer.get_config())
    assert (clone.units, clone.order, clone.use_bias, clone.name) == (7, 5, False, "cheb")
    assert clone.activation is keras.activations.relu
    graph_conv = GraphConv.from_config(GraphConv(3, normalize=False).get_config())
    assert (graph_conv.units, graph_conv.normalize) == (3, False)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GraphConv(0), r"units=0"),
        (lambda: ChebConv(2, order=0), r"order=0"),
        (lambda: ChebConv(2.5), r"units=2.5"),
    ],
)
def test_bad_constructor_arguments_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("layer_class", [GraphConv, ChebConv])
def test_bad_graphs_are_rejected_with_the_received_value(layer_class):
    features = _features()[0]  # (5, 3)
    adjacency, edges, _ = _random_graph()
    layer = layer_class(UNITS)
    with pytest.raises(ValueError, match=r"adjacency.shape=\(5, 4\)"):
        layer(features, adjacency=adjacency[:, :4])
    with pytest.raises(ValueError, match=r"adjacency.shape=\(4, 4\)"):
        layer(features, adjacency=adjacency[:4, :4])
    with pytest.raises(ValueError, match=r"edges.shape=\(\d+, 3\)"):
        layer(features, edges=np.concatenate([edges, edges[:, :1]], axis=1))
    with pytest.raises(ValueError, match=r"edges with ids from 0 to 5"):
        layer(features, edges=np.concatenate([edges, [[0, 5]]]).astype("int32"))
    with pytest.raises(ValueError, match=r"edges with ids from -1"):
        layer(features, edges=np.concatenate([edges, [[-1, 0]]]).astype("int32"))
    with pytest.raises(ValueError, match=r"Expected exactly one of `adjacency` and `edges`"):
        layer(features)
    with pytest.raises(ValueError, match=r"edge_weights.shape=\(2,\)"):
        layer(features, edges=edges, edge_weights=np.ones(2, "float32"))


def test_normalize_adjacency_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match=r"adjacency.shape=\(2, 3\)"):
        normalize_adjacency(np.zeros((2, 3), "float32"))


def _batched_graphs():
    """Two graphs as positional inputs: features (B, N, F) and dense adjacency (B, N, N)."""
    return _features(), np.stack([_random_graph()[0], _random_graph(seed=3)[0]])


# Constant weights give the outputs of the layer checks exactly from the NumPy references above.
CONSTANT_WEIGHTS = {
    "kernel_initializer": keras.initializers.Constant(0.5),
    "bias_initializer": "ones",
}
# What both graph convolutions must give on `_batched_graphs()`: kernel and bias, (B, N, units).
GRAPH_LAYER_CHECKS = {
    "expected_output_shape": (2, NUM_NODES, UNITS),
    "expected_num_trainable_weights": 2,
    "expected_num_non_trainable_weights": 0,
    "atol": 1e-5,
    "rtol": 1e-5,
}


def test_graph_conv_passes_the_layer_checks():
    features, adjacency = _batched_graphs()
    propagation = np.stack([_numpy_normalize(a) for a in adjacency])  # (B, N, N)
    expected = np.tanh(propagation @ features @ np.full((NUM_FEATURES, UNITS), 0.5) + 1.0)
    run_layer_test(
        GraphConv,
        {"units": UNITS, "activation": "tanh", **CONSTANT_WEIGHTS},
        input_data=(features, adjacency),
        expected_output=expected,
        **GRAPH_LAYER_CHECKS,
    )


def test_cheb_conv_passes_the_layer_checks():
    features, adjacency = _batched_graphs()
    kernel = np.full((3, NUM_FEATURES, UNITS), 0.5)
    expected = np.stack(
        [_numpy_chebyshev(f, a, kernel, np.ones(UNITS)) for f, a in zip(features, adjacency)]
    )
    run_layer_test(
        ChebConv,
        {"units": UNITS, "order": 3, **CONSTANT_WEIGHTS},
        input_data=(features, adjacency),
        expected_output=expected,
        **GRAPH_LAYER_CHECKS,
    )


def test_batched_adjacency_and_features_of_different_batch_sizes_name_both_shapes():
    layer = GraphConv(4)
    pattern = r"batch size\. Received: adjacency\.shape=\(3, 5, 5\), features\.shape=\(2, 5, 6\)"
    with pytest.raises(ValueError, match=pattern):
        layer(np.ones((2, 5, 6), "float32"), adjacency=np.ones((3, 5, 5), "float32"))
