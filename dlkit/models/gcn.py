"""Node classification with a graph convolutional network [notes ch. 8, §8.1.1]."""

from __future__ import annotations

import keras

from dlkit.layers.graph_conv import ChebConv, GraphConv
from dlkit.validation import check_choice, check_fraction, check_int

__all__ = ["GCN_CONV_TYPES", "build_gcn"]

# The graph convolutions `build_gcn` can stack, by its `conv` argument.
GCN_CONV_TYPES = ("gcn", "chebyshev")


def build_gcn(
    num_features: int,
    num_classes: int,
    hidden_units=(16,),
    dropout: float = 0.5,
    conv: str = "gcn",
    order: int = 3,
    name: str = "gcn",
) -> keras.Model:
    """A graph convolutional network that predicts a class for every node of a graph.

    Graph convolutions with ReLU, each preceded by dropout, then a last graph convolution to
    `num_classes` logits per node: the two-layer model of Kipf and Welling with the default
    `hidden_units=(16,)`. With `conv="chebyshev"` every layer is a `ChebConv` filter with
    `order` terms instead of a `GraphConv`.

    The model is a functional `keras.Model` with two inputs, so it trains with plain
    `model.fit` on every backend. Training is full-batch and semi-supervised: the whole graph is
    one example (a batch of one), every node gets a prediction, and the loss is restricted to
    the labelled nodes by a per-node `sample_weight`:

        x = {"features": features[None], "adjacency": adjacency[None]}  # (1, N, F), (1, N, N)
        model.compile(
            optimizer=keras.optimizers.Adam(0.01),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=["accuracy"],
        )
        model.fit(x, labels[None], sample_weight=train_mask[None].astype("float32"),
                  batch_size=1, epochs=200)                  # labels (1, N), weights (1, N)
        predictions = model.predict(x).argmax(-1)[0]         # (N,), every node

    Unlabelled nodes still take part through the graph: their features reach the labelled
    nodes' predictions, which is where the semi-supervised signal comes from.

    Equation (two layers, `conv="gcn"`):

        Â       = D̃^(−1/2) (A + I) D̃^(−1/2)
        hidden  = ReLU(Â · dropout(features) · W_1 + b_1)
        logits  = Â · dropout(hidden) · W_2 + b_2                [notes ch. 8, §8.1.1]

    Args:
        num_features: features per node F.
        num_classes: classes K (>= 2).
        hidden_units: units of each hidden graph convolution; `()` gives a single layer.
            Defaults to `(16,)`.
        dropout: dropout rate before every graph convolution, in [0, 1). Defaults to 0.5.
        conv: `"gcn"` (`GraphConv`) or `"chebyshev"` (`ChebConv`). Defaults to `"gcn"`.
        order: Chebyshev terms K of every `ChebConv` (only with `conv="chebyshev"`).
            Defaults to 3.
        name: name of the model. Defaults to `"gcn"`.

    Call arguments:
        inputs: a dict with `"features"` (B, N, F) and `"adjacency"` (B, N, N), a dense 0/1 or
            weighted adjacency matrix without self-loops (the layers add and normalise them).

    Returns:
        A `keras.Model` (not compiled) whose output is the logits of every node, shape
        (B, N, num_classes). Its hidden graph convolutions are named `"hidden_1"`,
        `"hidden_2"`, …, its last one `"logits"`.

    Example:

        >>> import numpy as np
        >>> model = build_gcn(num_features=3, num_classes=2)
        >>> inputs = {
        ...     "features": np.ones((1, 5, 3), dtype="float32"),
        ...     "adjacency": np.ones((1, 5, 5), dtype="float32"),
        ... }
        >>> print(tuple(model(inputs).shape))
        (1, 5, 2)

    Reference:
        Kipf and Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
        ICLR 2017 (https://arxiv.org/abs/1609.02907); Defferrard et al., "Convolutional Neural
        Networks on Graphs with Fast Localized Spectral Filtering", NeurIPS 2016
        (https://arxiv.org/abs/1606.09375).
    """
    check_int("num_features", num_features)
    check_int("num_classes", num_classes, 2)
    hidden_units = tuple(hidden_units)
    for units in hidden_units:
        check_int("hidden_units", units)
    check_fraction("dropout", dropout)
    check_choice("conv", conv, GCN_CONV_TYPES)
    check_int("order", order)

    def graph_convolution(units, activation, layer_name):
        if conv == "gcn":
            return GraphConv(units, activation=activation, name=layer_name)
        return ChebConv(units, order=order, activation=activation, name=layer_name)

    features = keras.Input((None, num_features), name="features")
    adjacency = keras.Input((None, None), name="adjacency")
    hidden = features
    layer_sizes = [(units, "relu", f"hidden_{i + 1}") for i, units in enumerate(hidden_units)]
    for units, activation, layer_name in [*layer_sizes, (num_classes, None, "logits")]:
        hidden = keras.layers.Dropout(dropout)(hidden)
        hidden = graph_convolution(units, activation, layer_name)(hidden, adjacency=adjacency)
    return keras.Model({"features": features, "adjacency": adjacency}, hidden, name=name)
