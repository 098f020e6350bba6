"""Array-based sum tree: the index that makes prioritized replay cheap [notes eq. 9.14]."""

from __future__ import annotations

import math

import numpy as np

from dlkit.validation import check_int

__all__ = ["SumTree"]


class SumTree:
    """Binary tree of partial sums over `capacity` non-negative values, stored in one flat array.

    Prioritized replay draws slot i with probability value_i / Σ_j value_j. A cumulative sum
    recomputed for every draw would cost O(N); the tree keeps each internal node equal to the sum
    of its two children, so both changing values and finding the slot whose cumulative range
    holds a number u cost O(log N). Both operations take whole batches: a batch of B queries
    walks down the tree one level at a time as NumPy array operations on B nodes, with no Python
    loop over the batch.

    Layout: `num_leaves` is `capacity` rounded up to a power of two. Node 1 is the root, node k
    has the children 2k and 2k + 1, and the leaves are the nodes num_leaves ... 2·num_leaves − 1
    (node 0 is unused). Leaves past `capacity` hold 0 and are never found. After an update every
    parent on the changed paths is recomputed from its children instead of being shifted by the
    difference, so rounding errors do not pile up over millions of updates.

    Equation:

        nodes[k] = nodes[2k] + nodes[2k + 1],   total = nodes[1] = Σ_i values[i]
        find(u) = the i with Σ_{j<i} values[j] ≤ u < Σ_{j≤i} values[j]
        [notes eq. 9.14: drawing u uniformly in [0, total) and returning find(u) samples i with
         probability values[i] / total = p_i^α / Σ_t p_t^α when values[i] = p_i^α]

    Args:
        capacity: the number of leaves (an integer >= 1).

    Returns:
        A tree whose leaves all hold 0.

    Example:

        >>> tree = SumTree(4)
        >>> tree.update(np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 3.0, 4.0]))
        >>> print(tree.total)
        10.0
        >>> print(tree.find(np.array([0.5, 1.0, 5.9, 6.0, 9.99])))
        [0 1 2 3 3]

    Reference:
        Schaul et al., "Prioritized Experience Replay", ICLR 2016
        (https://arxiv.org/abs/1511.05952).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = check_int("capacity", capacity)
        self.depth = max(int(np.ceil(np.log2(self.capacity))), 0)
        self.num_leaves = 1 << self.depth
        self.nodes = np.zeros(2 * self.num_leaves, dtype=np.float64)
        self._levels = np.arange(self.depth + 1)

    @property
    def total(self) -> float:
        """Σ_i values[i], the root of the tree."""
        return float(self.nodes[1])

    def values(self, indices: np.ndarray) -> np.ndarray:
        """The leaf values at `indices` (an integer array), as float64."""
        return self.nodes[np.asarray(indices) + self.num_leaves]

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Sets the leaves at `indices` to `values` (repeated indices: the last value wins)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if indices.shape != values.shape:
            raise ValueError(
                "Expected as many values as indices. "
                f"Received: indices.shape={indices.shape}, values.shape={values.shape}"
            )
        if indices.size == 0:
            return
        if indices.size == 1:
            # Checked as Python numbers: for one leaf, array reductions would dominate the cost.
            low = high = int(indices[0])
            finite_non_negative = math.isfinite(values[0]) and values[0] >= 0
        else:
            low, high = int(indices.min()), int(indices.max())
            finite_non_negative = np.all(np.isfinite(values)) and values.min() >= 0
        if low < 0 or high >= self.capacity:
            raise ValueError(
                f"Expected indices in [0, {self.capacity}). Received: indices={indices}"
            )
        if not finite_non_negative:
            raise ValueError(f"Expected finite non-negative values. Received: values={values}")
        if indices.size == 1:
            # One leaf (one environment adding a transition): its path to the root in a few
            # array operations. Going up, each node is the running sum of the new leaf value and
            # the siblings along the path, added in the same order as a level-by-level update.
            path = (low + self.num_leaves) >> self._levels  # (depth + 1,) leaf .. root
            terms = np.empty(self.depth + 1)
            terms[0] = values[0]
            terms[1:] = self.nodes[path[:-1] ^ 1]
            self.nodes[path] = np.cumsum(terms)
            return
        nodes = indices + self.num_leaves
        self.nodes[nodes] = values
        # Recompute every ancestor of a changed leaf from its two children, one level at a time
        # (two updated leaves may share ancestors). children[k] is the pair (2k, 2k + 1).
        children = self.nodes.reshape(-1, 2)
        low, high = low + self.num_leaves, high + self.num_leaves
        if high - low < 8 * len(nodes):
            # Nearby leaves (one step of parallel environments): recompute whole ranges of
            # nodes with slices; the unchanged ones among them keep their value.
            for _ in range(self.depth):
                low, high = low >> 1, high >> 1
                pairs = children[low : high + 1]
                np.add(pairs[:, 0], pairs[:, 1], out=self.nodes[low : high + 1])
            return
        for _ in range(self.depth):
            nodes >>= 1  # shared ancestors repeat; each copy writes the same sum
            pairs = children[nodes]
            self.nodes[nodes] = pairs[:, 0] + pairs[:, 1]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """For each u in `targets` (in [0, total)), the leaf i whose cumulative range holds u."""
        remaining = np.array(targets, dtype=np.float64, copy=True)
        nodes = np.ones(remaining.shape, dtype=np.int64)
        for _ in range(self.depth):
            nodes <<= 1  # the left child
            left_sums = self.nodes[nodes]
            go_right = remaining >= left_sums
            remaining -= left_sums * go_right
            nodes += go_right
        # A target rounded up to `total` walks to the rightmost leaf; keep it inside `capacity`.
        return np.minimum(nodes - self.num_leaves, self.capacity - 1)
