"""Small graphs for node classification: Zachary's karate club and a stochastic block model.

Every graph is a dict of NumPy arrays in the form the graph layers take [notes ch. 8]:

- ``features`` (N, F) float32 node features;
- ``adjacency`` (N, N) float32, symmetric 0/1, no self-loops;
- ``edges`` (E, 2) int32 (source, target) pairs, each undirected edge in both directions;
- ``labels`` (N,) int32 node classes.

``split_nodes`` picks the few labelled nodes of a semi-supervised task.
"""

from __future__ import annotations

import numpy as np

from dlkit.validation import check_int, check_non_negative, check_unit_interval

__all__ = [
    "karate_club",
    "split_nodes",
    "stochastic_block_model",
]

# The 78 friendships among the 34 members of a university karate club (Zachary 1977), node ids
# 0-33 as in networkx.karate_club_graph(), each edge once with the smaller id first.
_KARATE_CLUB_EDGES = (
    (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (0, 8), (0, 10), (0, 11), (0, 12),
    (0, 13), (0, 17), (0, 19), (0, 21), (0, 31), (1, 2), (1, 3), (1, 7), (1, 13), (1, 17),
    (1, 19), (1, 21), (1, 30), (2, 3), (2, 7), (2, 8), (2, 9), (2, 13), (2, 27), (2, 28),
    (2, 32), (3, 7), (3, 12), (3, 13), (4, 6), (4, 10), (5, 6), (5, 10), (5, 16), (6, 16),
    (8, 30), (8, 32), (8, 33), (9, 33), (13, 33), (14, 32), (14, 33), (15, 32), (15, 33),
    (18, 32), (18, 33), (19, 33), (20, 32), (20, 33), (22, 32), (22, 33), (23, 25), (23, 27),
    (23, 29), (23, 32), (23, 33), (24, 25), (24, 27), (24, 31), (25, 31), (26, 29), (26, 33),
    (27, 33), (28, 31), (28, 33), (29, 32), (29, 33), (30, 32), (30, 33), (31, 32), (31, 33),
    (32, 33),
)  # fmt: skip
# The club each member joined after the split: 0 = "Mr. Hi" (the instructor, node 0),
# 1 = "Officer" (the administrator, node 33).
_KARATE_CLUB_LABELS = (
    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0,
    0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
)  # fmt: skip


def karate_club() -> dict[str, np.ndarray]:
    """Zachary's karate club: 34 members, 78 friendships, two clubs after a split.

    The classic small benchmark of community detection and semi-supervised node
    classification. Nodes have no attributes, so the features are the identity matrix (each
    node gets its own learned embedding in the first layer).

    Returns:
        A dict with ``features`` (34, 34) float32 identity, ``adjacency`` (34, 34) float32
        symmetric 0/1, ``edges`` (156, 2) int32 (both directions of every friendship) and
        ``labels`` (34,) int32 (0 = "Mr. Hi", 1 = "Officer").

    Example:

        >>> graph = karate_club()
        >>> print(graph["adjacency"].shape, graph["edges"].shape)
        (34, 34) (156, 2)

    Reference:
        Zachary, "An Information Flow Model for Conflict and Fission in Small Groups", Journal
        of Anthropological Research 33(4), 1977.
    """
    num_nodes = len(_KARATE_CLUB_LABELS)
    undirected = np.asarray(_KARATE_CLUB_EDGES, dtype=np.int32)  # (78, 2)
    return _graph_dict(
        features=np.eye(num_nodes, dtype=np.float32),
        undirected_edges=undirected,
        labels=np.asarray(_KARATE_CLUB_LABELS, dtype=np.int32),
    )


def stochastic_block_model(
    num_nodes: int = 300,
    num_blocks: int = 3,
    p_in: float = 0.1,
    p_out: float = 0.01,
    num_features: int = 16,
    feature_noise: float = 1.0,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A random graph with planted communities and noisy community-dependent features.

    Nodes are split into `num_blocks` blocks of (nearly) equal size; two nodes are linked with
    probability `p_in` inside a block and `p_out` across blocks. Each block has a random mean
    feature vector (standard normal entries), and every node's features are its block's mean
    plus Gaussian noise of standard deviation `feature_noise`. With a large noise the features
    alone are ambiguous and the graph's neighbourhoods decide the block.

    Args:
        num_nodes: number of nodes N (>= num_blocks).
        num_blocks: number of blocks, the classes (>= 1).
        p_in: edge probability within a block, in [0, 1].
        p_out: edge probability between blocks, in [0, 1].
        num_features: features per node F (>= 1).
        feature_noise: standard deviation of the feature noise (>= 0).
        seed: seed of the graph, the block means and the noise.

    Returns:
        A dict with ``features`` (N, F) float32, ``adjacency`` (N, N) float32 symmetric 0/1,
        ``edges`` (E, 2) int32 (both directions) and ``labels`` (N,) int32 block ids.

    Example:

        >>> graph = stochastic_block_model(num_nodes=30, num_blocks=2, num_features=4)
        >>> print(graph["features"].shape, graph["labels"].shape)
        (30, 4) (30,)

    Reference:
        Holland, Laskey and Leinhardt, "Stochastic Blockmodels: First Steps", Social Networks
        5(2), 1983.
    """
    check_int("num_blocks", num_blocks, 1)
    check_int("num_nodes", num_nodes, num_blocks)
    check_int("num_features", num_features, 1)
    check_unit_interval("p_in", p_in)
    check_unit_interval("p_out", p_out)
    check_non_negative("feature_noise", feature_noise)
    rng = np.random.default_rng(seed)
    labels = (np.arange(num_nodes) * num_blocks // num_nodes).astype(np.int32)  # sorted blocks
    same_block = labels[:, None] == labels[None, :]
    probability = np.where(same_block, p_in, p_out)
    upper = np.triu(rng.random((num_nodes, num_nodes)) < probability, k=1)
    sources, targets = np.nonzero(upper)
    block_means = rng.normal(size=(num_blocks, num_features))
    features = block_means[labels] + feature_noise * rng.normal(size=(num_nodes, num_features))
    return _graph_dict(
        features=features.astype(np.float32),
        undirected_edges=np.stack([sources, targets], axis=1).astype(np.int32),
        labels=labels,
    )


def split_nodes(labels, num_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Picks `num_per_class` labelled nodes of every class at random; the rest are unlabelled.

    Args:
        labels: node classes, shape (N,), integers 0 … K − 1.
        num_per_class: labelled nodes per class (>= 1, and fewer than the nodes of each class,
            so that every class keeps an unlabelled node).
        seed: seed of the choice.

    Returns:
        ``(train_mask, test_mask)``, boolean arrays of shape (N,) that are each other's
        complement.

    Example:

        >>> train_mask, test_mask = split_nodes(karate_club()["labels"], num_per_class=2)
        >>> print(int(train_mask.sum()), int(test_mask.sum()))
        4 30
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            "Expected `labels` to be a 1-D integer array. "
            f"Received: labels with shape {labels.shape} and dtype {labels.dtype}"
        )
    check_int("num_per_class", num_per_class, 1)
    rng = np.random.default_rng(seed)
    train_mask = np.zeros(labels.shape, dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if num_per_class >= len(members):
            raise ValueError(
                f"Expected `num_per_class` < {len(members)}, the nodes of class {label}. "
                f"Received: num_per_class={num_per_class}"
            )
        train_mask[rng.choice(members, size=num_per_class, replace=False)] = True
    return train_mask, ~train_mask


def _graph_dict(features, undirected_edges, labels) -> dict[str, np.ndarray]:
    num_nodes = len(labels)
    edges = np.concatenate([undirected_edges, undirected_edges[:, ::-1]])  # both directions
    adjacency = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    adjacency[edges[:, 1], edges[:, 0]] = 1.0  # row = target, column = source
    return {
        "features": features,
        "adjacency": adjacency,
        "edges": edges.astype(np.int32),
        "labels": labels,
    }
