import keras
import numpy as np
import pytest

from dlkit.data.graphs import karate_club, split_nodes, stochastic_block_model
from dlkit.layers.graph_conv import ChebConv, GraphConv
from dlkit.models.gcn import build_gcn


def _fit_inputs(graph):
    """The whole graph as a batch of one: features (1, N, F), adjacency (1, N, N)."""
    return {"features": graph["features"][None], "adjacency": graph["adjacency"][None]}


def _train(graph, conv, num_per_class, epochs, seed=0, order=3):
    keras.utils.set_random_seed(seed)
    train_mask, test_mask = split_nodes(graph["labels"], num_per_class, seed=seed)
    model = build_gcn(
        graph["features"].shape[1], int(graph["labels"].max()) + 1, conv=conv, order=order
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],
    )
    inputs = _fit_inputs(graph)
    history = model.fit(
        inputs,
        graph["labels"][None],
        sample_weight=train_mask[None].astype("float32"),
        batch_size=1,
        epochs=epochs,
        verbose=0,
    )
    predictions = np.argmax(model.predict(inputs, verbose=0)[0], axis=-1)  # (N,)
    accuracy = np.mean(predictions[test_mask] == graph["labels"][test_mask])
    return model, history, accuracy


@pytest.mark.parametrize("conv, layer_class", [("gcn", GraphConv), ("chebyshev", ChebConv)])
def test_conv_picks_the_graph_convolution_of_every_layer(conv, layer_class):
    model = build_gcn(34, 2, hidden_units=(8, 4), conv=conv, order=2)
    layers = [model.get_layer(name) for name in ("hidden_1", "hidden_2", "logits")]
    assert [layer.__class__ for layer in layers] == [layer_class] * 3
    assert [layer.units for layer in layers] == [8, 4, 2]


def test_model_predicts_every_node_and_survives_a_keras_round_trip(tmp_path):
    model = build_gcn(34, 2, hidden_units=(8,))
    inputs = _fit_inputs(karate_club())
    logits = keras.ops.convert_to_numpy(model(inputs, training=False))
    assert logits.shape == (1, 34, 2)
    model.save(tmp_path / "gcn.keras")
    restored = keras.saving.load_model(tmp_path / "gcn.keras")
    restored_logits = keras.ops.convert_to_numpy(restored(inputs, training=False))
    np.testing.assert_allclose(restored_logits, logits, atol=1e-5)


def test_loss_only_counts_labelled_nodes():
    graph = karate_club()
    keras.utils.set_random_seed(0)
    model = build_gcn(34, 2, dropout=0.0)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, labels = _fit_inputs(graph), graph["labels"][None]
    mask = np.zeros((1, 34), "float32")
    mask[0, [0, 33]] = 1.0
    flipped = labels.copy()
    flipped[0, 1:33] = 1 - flipped[0, 1:33]  # unlabelled nodes' labels must not matter
    loss = model.evaluate(inputs, labels, sample_weight=mask, verbose=0)
    assert model.evaluate(inputs, flipped, sample_weight=mask, verbose=0) == pytest.approx(loss)
    assert model.evaluate(inputs, flipped, verbose=0) != pytest.approx(loss)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"conv": "spatial"}, r"conv='spatial'"),
        ({"dropout": 1.0}, r"dropout=1.0"),
        ({"num_classes": 1}, r"num_classes=1"),
        ({"hidden_units": (16, 0)}, r"hidden_units=0"),
        ({"order": 0}, r"order=0"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_gcn(**{"num_features": 4, "num_classes": 2, **kwargs})


@pytest.mark.slow
def test_karate_with_two_labelled_members_per_club_classifies_the_rest():
    _, _, accuracy = _train(karate_club(), "gcn", num_per_class=2, epochs=60)
    assert accuracy >= 0.85  # chance is 0.5; the two-layer GCN reaches about 0.95


@pytest.mark.slow
def test_chebyshev_gcn_recovers_the_blocks_of_a_stochastic_block_model():
    graph = stochastic_block_model(num_nodes=90, p_in=0.2, num_features=8, feature_noise=2.0)
    _, _, accuracy = _train(graph, "chebyshev", num_per_class=3, epochs=50, order=2)
    # Chance is 1/3; the features alone (nearest labelled class mean) give about 0.6.
    assert accuracy >= 0.85
