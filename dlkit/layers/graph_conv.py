"""Spectral graph convolutions: the renormalised GCN layer and Chebyshev filters [notes §8.1.1]."""

from __future__ import annotations

import keras
from keras import ops

from dlkit.validation import check_int

__all__ = ["ChebConv", "GraphConv", "GraphConvolution", "normalize_adjacency"]


def normalize_adjacency(adjacency, add_self_loops=True):
    """Symmetrically normalised adjacency matrix D̃^(−1/2) Ã D̃^(−1/2) of a graph.

    With `add_self_loops=True` this is the renormalisation trick of the GCN: every node becomes
    its own neighbour (Ã = A + I), and each entry is divided by the square root of the degrees
    of its two nodes, so that repeated products with the matrix neither blow up nor vanish. The
    degree of node i is the sum of row i (its weighted in-degree under the convention that row i
    aggregates over columns j). Nodes without any neighbour get a zero row and column instead of
    a division by zero.

    Equation:

        Ã         = A + I                 (only if add_self_loops)
        d̃_i       = Σ_j Ã_ij
        normalized = D̃^(−1/2) Ã D̃^(−1/2),  normalized_ij = Ã_ij / √(d̃_i d̃_j)
                                                              [notes ch. 8, §8.1.1]

    Args:
        adjacency: a dense adjacency matrix, 0/1 or weighted (non-negative), shape (N, N) or a
            batch (B, N, N).
        add_self_loops: whether to add the identity before normalising. Defaults to `True`.

    Returns:
        The normalised adjacency matrix, the shape of `adjacency`, in its floating dtype
        (float32 for integer input).

    Example:

        >>> import numpy as np
        >>> adjacency = np.array([[0, 1], [1, 0]], dtype="float32")
        >>> print(tuple(normalize_adjacency(adjacency).shape))
        (2, 2)

    Reference:
        Kipf and Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
        ICLR 2017 (https://arxiv.org/abs/1609.02907).
    """
    adjacency = ops.convert_to_tensor(adjacency)
    _check_adjacency_shape(adjacency.shape)
    if "float" not in keras.backend.standardize_dtype(adjacency.dtype):
        adjacency = ops.cast(adjacency, "float32")
    if add_self_loops:
        adjacency = adjacency + ops.eye(adjacency.shape[-1], dtype=adjacency.dtype)
    degree = ops.sum(adjacency, axis=-1)  # (..., N)
    inverse_sqrt_degree = _safe_inverse_sqrt(degree)  # (..., N)
    return (
        ops.expand_dims(inverse_sqrt_degree, -1)
        * adjacency
        * ops.expand_dims(inverse_sqrt_degree, -2)
    )  # (..., N, N)


class GraphConvolution(keras.layers.Layer):
    """What `GraphConv` and `ChebConv` share with `keras.layers.Dense`: the arguments, checked
    and stored, their config and the output shape (..., N, units).

    Its constructor arguments are those of `GraphConv`, documented there.
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def compute_output_shape(
        self, features_shape, adjacency_shape=None, edges_shape=None, edge_weights_shape=None
    ):
        return (*features_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="dlkit")
class GraphConv(GraphConvolution):
    """Graph convolution of Kipf and Welling: average over neighbours, then a shared linear map.

    Every node's new features are a degree-weighted average of its own features and those of its
    neighbours, mapped by one weight matrix W shared by all nodes: the first-order approximation
    of a spectral filter, with self-loops and the renormalisation D̃^(−1/2) Ã D̃^(−1/2). Stacking
    k layers lets information travel k hops.

    The graph comes in one of two forms, giving the same result:

    - `adjacency`, a dense (N, N) or batched (B, N, N) matrix, 0/1 or weighted; row i lists the
      nodes that node i aggregates from (A_ij ≠ 0 means a message from j to i);
    - `edges`, an (E, 2) integer array of (source, target) pairs, one row per direction of an
      undirected edge, with optional `edge_weights` (E,) (default 1); pair (j, i) is A_ij.
      Messages are summed with `segment_sum`, so memory grows with E instead of N². The same
      edge list serves every graph of a (B, N, F) batch of features. Repeated pairs add up.

    With `normalize=False` the given adjacency or edge weights are used as they are (already
    normalised, or any other propagation matrix) and no self-loops are added.

    Equation:

        Ã       = A + I,  d̃_i = Σ_j Ã_ij
        Â       = D̃^(−1/2) Ã D̃^(−1/2)                        (normalize_adjacency)
        outputs = σ(Â · features · kernel + bias)              [notes ch. 8, §8.1.1]

    Args:
        units: output features per node (an integer >= 1).
        activation: activation σ. Defaults to `None` (linear).
        use_bias: whether to add a bias. Defaults to `True`.
        kernel_initializer: initializer of the (F, units) kernel. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.
        normalize: whether to add self-loops and normalise the graph. Defaults to `True`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        features: node features, shape (N, F) or (B, N, F).
        adjacency: dense adjacency, shape (N, N), or (B, N, N) with batched features.
        edges: integer (source, target) pairs, shape (E, 2); instead of `adjacency`.
        edge_weights: optional weights of the edges, shape (E,).

    Returns:
        The new node features, shape (N, units) or (B, N, units).

    Example:

        >>> import numpy as np
        >>> features = np.ones((4, 3), dtype="float32")
        >>> adjacency = np.array(
        ...     [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype="float32"
        ... )
        >>> print(tuple(GraphConv(8)(features, adjacency=adjacency).shape))
        (4, 8)

    Reference:
        Kipf and Welling, "Semi-Supervised Classification with Graph Convolutional Networks",
        ICLR 2017 (https://arxiv.org/abs/1609.02907).
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        normalize=True,
        **kwargs,
    ):
        super().__init__(
            units, activation, use_bias, kernel_initializer, bias_initializer, **kwargs
        )
        self.normalize = normalize

    def build(
        self, features_shape, adjacency_shape=None, edges_shape=None, edge_weights_shape=None
    ):
        num_features = _check_features_shape(features_shape)
        self.kernel = self.add_weight(
            name="kernel", shape=(num_features, self.units), initializer=self.kernel_initializer
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer=self.bias_initializer
            )

    def call(self, features, adjacency=None, edges=None, edge_weights=None):
        propagate = _graph_operator(
            features, adjacency, edges, edge_weights, self.normalize, self_loops=True
        )
        # Â (features · kernel) = (Â · features) · kernel; the kernel first is cheaper when
        # units < F (and no slower otherwise for the sparse form).
        outputs = propagate(ops.matmul(features, self.kernel))  # (..., N, units)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def get_config(self):
        return {**super().get_config(), "normalize": self.normalize}


@keras.saving.register_keras_serializable(package="dlkit")
class ChebConv(GraphConvolution):
    """Chebyshev spectral graph convolution: a learned polynomial of the graph Laplacian.

    A spectral filter scales each Fourier component of a signal on the graph (an eigenvector of
    the Laplacian) by a function of its eigenvalue. Defferrard et al. take that function to be a
    polynomial of degree K − 1 in the rescaled Laplacian L̃, written in the Chebyshev basis, so the
    filter needs no eigendecomposition: the terms T_k follow from a three-term recurrence of
    products with L̃, and the filter only mixes nodes up to K − 1 hops apart. Each term has its
    own (F, units) weight matrix.

    With the usual bound λ_max = 2 of the normalised Laplacian L = I − D^(−1/2) A D^(−1/2), the
    rescaled Laplacian reduces to L̃ = 2L/λ_max − I = −D^(−1/2) A D^(−1/2) (no self-loops). With
    `order=2` the layer is the first-order filter that GraphConv simplifies further.

    Equation:

        L̃   = 2 L / λ_max − I = −D^(−1/2) A D^(−1/2)        (λ_max = 2)
        T_0 = features,  T_1 = L̃ T_0,  T_k = 2 L̃ T_(k−1) − T_(k−2)
        outputs = σ(Σ_(k=0)^(K−1) T_k · kernel[k] + bias)      [notes ch. 8, §8.1.1]

    Args:
        units: output features per node (an integer >= 1).
        order: the number K of Chebyshev terms T_0 … T_(K−1) (an integer >= 1); the filter
            reaches K − 1 hops. Defaults to 3.
        activation: activation σ. Defaults to `None` (linear).
        use_bias: whether to add a bias. Defaults to `True`.
        kernel_initializer: initializer of the (K, F, units) kernel. Defaults to
            `"glorot_uniform"`.
        bias_initializer: initializer of the bias. Defaults to `"zeros"`.
        **kwargs: other keyword arguments of `keras.layers.Layer` (`name`, `dtype`, ...).

    Call arguments:
        features: node features, shape (N, F) or (B, N, F).
        adjacency: dense adjacency A (0/1 or weighted), shape (N, N), or (B, N, N) with
            batched features.
        edges: integer (source, target) pairs, shape (E, 2); instead of `adjacency`, as in
            `GraphConv` (pair (j, i) is A_ij).
        edge_weights: optional weights of the edges, shape (E,).

    Returns:
        The filtered node features, shape (N, units) or (B, N, units).

    Example:

        >>> import numpy as np
        >>> features = np.ones((4, 3), dtype="float32")
        >>> adjacency = np.array(
        ...     [[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype="float32"
        ... )
        >>> print(tuple(ChebConv(8, order=3)(features, adjacency=adjacency).shape))
        (4, 8)

    Reference:
        Defferrard, Bresson and Vandergheynst, "Convolutional Neural Networks on Graphs with
        Fast Localized Spectral Filtering", NeurIPS 2016 (https://arxiv.org/abs/1606.09375).
    """

    def __init__(
        self,
        units,
        order=3,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(
            units, activation, use_bias, kernel_initializer, bias_initializer, **kwargs
        )
        self.order = check_int("order", order)

    def build(
        self, features_shape, adjacency_shape=None, edges_shape=None, edge_weights_shape=None
    ):
        num_features = _check_features_shape(features_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.order, num_features, self.units),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer=self.bias_initializer
            )

    def call(self, features, adjacency=None, edges=None, edge_weights=None):
        # Normalised without self-loops; the minus sign makes it L̃ = −D^(−1/2) A D^(−1/2).
        propagate = _graph_operator(
            features, adjacency, edges, edge_weights, normalize=True, self_loops=False
        )

        def rescaled_laplacian(signal):
            return -propagate(signal)

        chebyshev_previous, chebyshev = None, features  # T_(k−1), T_k with k = 0
        outputs = ops.matmul(chebyshev, self.kernel[0])  # (..., N, units)
        for k in range(1, self.order):
            if k == 1:
                chebyshev_next = rescaled_laplacian(chebyshev)
            else:
                chebyshev_next = 2.0 * rescaled_laplacian(chebyshev) - chebyshev_previous
            chebyshev_previous, chebyshev = chebyshev, chebyshev_next
            outputs = outputs + ops.matmul(chebyshev, self.kernel[k])  # (..., N, units)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def get_config(self):
        return {**super().get_config(), "order": self.order}


def _graph_operator(features, adjacency, edges, edge_weights, normalize, self_loops):
    """Returns `propagate(signal)` = Â · signal for signals of shape (..., N, C), with Â the
    (optionally normalised, optionally self-looped) adjacency from either graph form."""
    num_nodes = _check_features_shape(features.shape, return_num_nodes=True)
    if (adjacency is None) == (edges is None):
        raise ValueError(
            "Expected exactly one of `adjacency` and `edges`. "
            f"Received: adjacency={_describe(adjacency)}, edges={_describe(edges)}"
        )
    if adjacency is not None:
        if edge_weights is not None:
            raise ValueError(
                "Expected `edge_weights` only with `edges`. "
                f"Received: edge_weights={_describe(edge_weights)}"
            )
        _check_adjacency_shape(adjacency.shape, features.shape)
        if normalize:
            adjacency = normalize_adjacency(adjacency, add_self_loops=self_loops)
        adjacency = ops.cast(adjacency, features.dtype)
        return lambda signal: ops.matmul(adjacency, signal)  # (..., N, C)

    _check_edges(edges, edge_weights, num_nodes)
    edges = ops.cast(edges, "int32")
    sources, targets = edges[:, 0], edges[:, 1]  # (E,), (E,)
    if edge_weights is None:
        weights = ops.ones(ops.shape(sources), dtype=features.dtype)
    else:
        weights = ops.cast(edge_weights, features.dtype)
    self_weight = None
    if normalize:
        # Degree of node i = Σ over edges into i (row sum of A), plus 1 for the self-loop.
        degree = ops.segment_sum(weights, targets, num_segments=num_nodes)  # (N,)
        if self_loops:
            degree = degree + 1.0
            self_weight = _safe_inverse_sqrt(degree) ** 2  # (N,): Ã_ii / d̃_i
        inverse_sqrt_degree = _safe_inverse_sqrt(degree)  # (N,)
        weights = (
            weights
            * ops.take(inverse_sqrt_degree, sources)
            * ops.take(inverse_sqrt_degree, targets)
        )  # (E,)

    def propagate(signal):
        node_axis = len(signal.shape) - 2
        messages = ops.take(signal, sources, axis=node_axis)  # (..., E, C)
        messages = messages * ops.expand_dims(weights, -1)
        if node_axis:  # segment_sum reduces the leading axis: move the edges there.
            messages = ops.moveaxis(messages, node_axis, 0)  # (E, B, C)
        aggregated = ops.segment_sum(messages, targets, num_segments=num_nodes)  # (N, [B,] C)
        if node_axis:
            aggregated = ops.moveaxis(aggregated, 0, node_axis)  # (B, N, C)
        if self_weight is not None:
            aggregated = aggregated + ops.expand_dims(self_weight, -1) * signal
        return aggregated

    return propagate


def _safe_inverse_sqrt(degree):
    """1/√degree, and 0 where the degree is 0 (isolated nodes)."""
    positive = degree > 0
    return ops.where(positive, ops.rsqrt(ops.where(positive, degree, 1.0)), 0.0)


def _check_features_shape(features_shape, return_num_nodes=False):
    features_shape = tuple(features_shape)
    if len(features_shape) not in (2, 3):
        raise ValueError(
            "Expected `features` of shape (N, F) or (B, N, F). "
            f"Received: features.shape={features_shape}"
        )
    if return_num_nodes:
        return features_shape[-2]
    if features_shape[-1] is None:
        raise ValueError(
            "Expected the feature axis of `features` to be known. "
            f"Received: features.shape={features_shape}"
        )
    return features_shape[-1]


def _check_adjacency_shape(adjacency_shape, features_shape=None):
    adjacency_shape = tuple(adjacency_shape)
    rows, columns = adjacency_shape[-2:] if len(adjacency_shape) >= 2 else (None, None)
    if len(adjacency_shape) not in (2, 3) or (None not in (rows, columns) and rows != columns):
        raise ValueError(
            "Expected `adjacency` to be a square matrix of shape (N, N) or (B, N, N). "
            f"Received: adjacency.shape={adjacency_shape}"
        )
    if features_shape is None:
        return
    features_shape = tuple(features_shape)
    if (
        len(adjacency_shape) == 3
        and len(features_shape) == 3
        and None not in (adjacency_shape[0], features_shape[0])
        and adjacency_shape[0] != features_shape[0]
    ):
        raise ValueError(
            "Expected `adjacency` and `features` with the same batch size. Received: "
            f"adjacency.shape={adjacency_shape}, features.shape={features_shape}"
        )
    num_nodes = features_shape[-2]
    node_counts = (rows, columns, num_nodes)
    batched_adjacency_needs_batched_features = len(adjacency_shape) > len(features_shape)
    if (
        None not in node_counts and (rows != num_nodes or columns != num_nodes)
    ) or batched_adjacency_needs_batched_features:
        raise ValueError(
            "Expected `adjacency` of shape (N, N) or (B, N, N) with the N nodes of `features` "
            f"{features_shape}. Received: adjacency.shape={adjacency_shape}"
        )


def _check_edges(edges, edge_weights, num_nodes):
    edges_shape = tuple(edges.shape)
    if len(edges_shape) != 2 or edges_shape[1] != 2:
        raise ValueError(
            "Expected `edges` of shape (E, 2), (source, target) pairs. "
            f"Received: edges.shape={edges_shape}"
        )
    if edge_weights is not None:
        weights_shape = tuple(edge_weights.shape)
        if len(weights_shape) != 1 or (
            None not in (weights_shape[0], edges_shape[0]) and (weights_shape[0] != edges_shape[0])
        ):
            raise ValueError(
                f"Expected `edge_weights` of shape (E,) with the E = {edges_shape[0]} rows of "
                f"`edges`. Received: edge_weights.shape={weights_shape}"
            )
    values = _concrete_values(edges)
    if values is None or num_nodes is None or values.size == 0:
        return
    if values.min() < 0 or values.max() >= num_nodes:
        raise ValueError(
            f"Expected node ids in `edges` in [0, {num_nodes}), the nodes of `features`. "
            f"Received: edges with ids from {values.min()} to {values.max()}"
        )


def _concrete_values(tensor):
    """The values of `tensor` as a NumPy array when it has them (eager execution), else None.

    Inside a traced function (`jax.jit`, `tf.function`) or a functional model the values are
    not known yet; the range check of the edge ids then has to be skipped.
    """
    try:
        return ops.convert_to_numpy(tensor)
    except Exception:  # tracers and symbolic tensors refuse to convert; each backend differently
        return None


def _describe(value):
    return None if value is None else f"<tensor of shape {tuple(value.shape)}>"
