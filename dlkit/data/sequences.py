"""Toy sequence tasks over the ten digits, and noisy sine waves, for the models of chapter 7.

Each task is small enough to train on a CPU in seconds, yet can only be solved by a model that
reads the whole sequence in order, so it tells a working recurrent or attention model from a
broken one:

- ``digit_sequences``: sequence to sequence (reverse or sort a digit string), with the
  ``<start>``/``<end>`` tokens and teacher-forcing inputs of an encoder-decoder (notes §7.1-7.3).
- ``digit_classification``: sequence to one label (is the string a palindrome?).
- ``noisy_sine_windows``: sequence to one forecast (the next values of a noisy periodic series).

Token ids are shared by every task: ``PAD_ID = 0``, ``START_ID = 1``, ``END_ID = 2`` and digit
``d`` has id ``d + 3``, so ``VOCABULARY[id]`` names every id. Everything is NumPy and
deterministic for a ``seed``; held-out test sequences never occur in the training split.
"""

from __future__ import annotations

import numpy as np

from dlkit.validation import check_choice, check_int, check_non_negative

PAD_ID = 0
START_ID = 1
END_ID = 2
_FIRST_DIGIT_ID = 3
VOCABULARY = ("<pad>", "<start>", "<end>", *(str(digit) for digit in range(10)))
VOCABULARY_SIZE = len(VOCABULARY)

_SEQUENCE_TASKS = ("reverse", "sort")
_CLASSIFICATION_TASKS = ("palindrome",)
# Up to this many distinct sequences of one length, they are drawn exactly without replacement
# from an enumeration; above it, by rejection sampling (collisions are then rare).
_MAX_ENUMERATED = 1_000_000


def _check_lengths(min_length: int, max_length: int, minimum: int) -> None:
    check_int("min_length", min_length, minimum)
    check_int("max_length", max_length, minimum)
    if min_length > max_length:
        raise ValueError(
            "Expected `min_length` <= `max_length`. "
            f"Received: min_length={min_length}, max_length={max_length}"
        )


def _code_digits(codes: np.ndarray, num_digits: int) -> np.ndarray:
    """Writes integer codes as ``num_digits`` decimal digits, most significant first."""
    powers = 10 ** np.arange(num_digits - 1, -1, -1, dtype=np.int64)
    return (codes[:, np.newaxis] // powers) % 10  # (N, num_digits)


def _mirror(halves: np.ndarray, length: int) -> np.ndarray:
    """Palindromes of ``length`` whose first ``ceil(length / 2)`` digits are ``halves``."""
    return np.concatenate([halves, halves[:, : length // 2][:, ::-1]], axis=1)  # (N, length)


class _Family:
    """The digit strings of one length and kind: how many exist, how to enumerate and draw them.

    ``decode`` maps codes ``0 .. capacity - 1`` one to one onto the strings; ``draw`` samples
    strings at random (with repeats), for families too large to enumerate.
    """

    def __init__(self, kind: str, length: int):
        self.kind = kind
        self.length = length
        half = (length + 1) // 2
        num_pairs = length // 2
        if kind == "any":
            self.capacity = 10**length
        elif kind == "palindrome":
            self.capacity = 10**half
        else:  # "near_palindrome": one mirror pair differs, by one of 9 other digits.
            self.capacity = 10**half * num_pairs * 9
        self._half = half
        self._num_pairs = num_pairs

    def _build(self, halves, pair_indices, shifts):
        if self.kind == "any":
            return halves
        sequences = _mirror(halves, self.length)
        if self.kind == "near_palindrome":
            # Change the second digit of the chosen mirror pair, so the pair no longer matches.
            rows = np.arange(len(sequences))
            columns = self.length - 1 - pair_indices
            sequences[rows, columns] = (sequences[rows, columns] + shifts) % 10
        return sequences

    def decode(self, codes: np.ndarray) -> np.ndarray:
        num_digits = self.length if self.kind == "any" else self._half
        halves = _code_digits(codes % 10**num_digits, num_digits)
        rest = codes // 10**num_digits
        pair_indices = rest % max(self._num_pairs, 1)
        shifts = rest // max(self._num_pairs, 1) + 1
        return self._build(halves, pair_indices, shifts)

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        num_digits = self.length if self.kind == "any" else self._half
        halves = rng.integers(0, 10, size=(count, num_digits))
        pair_indices = rng.integers(0, max(self._num_pairs, 1), size=count)
        shifts = rng.integers(1, 10, size=count)
        return self._build(halves, pair_indices, shifts)

    def sample_distinct(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` distinct strings in random order, as digits of shape ``(count, length)``."""
        if self.capacity <= _MAX_ENUMERATED:
            codes = rng.choice(self.capacity, size=count, replace=False)
            return self.decode(codes.astype(np.int64))
        found = np.zeros((0, self.length), dtype=np.int64)
        while len(found) < count:
            batch = self.draw(rng, 2 * (count - len(found)) + 16)
            found = np.unique(np.concatenate([found, batch]), axis=0)
        return found[rng.permutation(len(found))[:count]]


def _allocate_lengths(rng: np.random.Generator, total: int, capacities: list[int]) -> np.ndarray:
    """Draws how many strings of each length to use: uniform, capped at each length's capacity.

    A length with fewer distinct strings than its share gives its excess to the others, drawn
    uniformly among those with room left. Requires ``total <= sum(capacities)``.
    """
    capacities = np.array([min(capacity, total) for capacity in capacities], dtype=np.int64)
    counts = rng.multinomial(total, np.full(len(capacities), 1.0 / len(capacities)))
    while True:
        excess = int(np.maximum(counts - capacities, 0).sum())
        if excess == 0:
            return counts
        counts = np.minimum(counts, capacities)
        has_room = counts < capacities
        counts[has_room] += rng.multinomial(excess, has_room[has_room] / has_room.sum())


def _sample_pool(
    rng: np.random.Generator, kind: str, lengths: list[int], counts: np.ndarray
) -> list[np.ndarray]:
    """Distinct strings of each length, as a list of ``(count, length)`` digit arrays."""
    return [
        _Family(kind, length).sample_distinct(rng, int(count))
        for length, count in zip(lengths, counts, strict=True)
    ]


def _pad(rows: list[np.ndarray], width: int, offset: int = 0) -> np.ndarray:
    """Writes digit rows as ids starting at column ``offset``, PAD after; shape (N, width)."""
    ids = np.full((len(rows), width), PAD_ID, dtype=np.int32)
    for index, row in enumerate(rows):
        ids[index, offset : offset + len(row)] = np.asarray(row) + _FIRST_DIGIT_ID
    return ids


def _check_available(available: int, needed: int, description: str, received: str) -> None:
    if needed > available:
        raise ValueError(
            f"Expected the requested splits to need at most {available} {description}, the "
            f"number of distinct ones that exist; they need {needed}. Received: {received}"
        )


def digit_sequences(
    task: str = "reverse",
    num_train: int = 4000,
    num_test: int = 500,
    min_length: int = 3,
    max_length: int = 10,
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Generates a sequence-to-sequence task over digit strings: reverse them or sort them.

    The source is a random string of digits; the target is the same digits reversed
    (``task="reverse"``) or in ascending order (``task="sort"``). Neither output can be produced
    digit by digit from the matching input position, so an encoder-decoder must carry the whole
    input across: through the final state of an LSTM encoder (notes §7.1), through attention
    over the encoder states (§7.2), or through a Transformer (§7.3). Reversal rewards
    attention, which can look up the mirrored position; sorting needs counting.

    The decoder is trained with teacher forcing: it reads ``<start>`` followed by the target
    and predicts the target followed by ``<end>``, one position ahead, so that
    ``decoder_inputs[:, t + 1] == targets[:, t]`` up to ``<end>``. Lengths are uniform in
    ``[min_length, max_length]`` (a length with fewer distinct strings than its share gives the
    rest to the others). All strings are distinct, so no test source occurs in the training
    split.

    Args:
        task: ``"reverse"`` or ``"sort"``.
        num_train: number of training sequences, at least 1.
        num_test: number of held-out test sequences, at least 1.
        min_length: shortest source, at least 1.
        max_length: longest source, at least ``min_length``.
        seed: seed of the generator.

    Returns:
        ``{"train": split, "test": split}``; each split is a dict of int32 arrays:
        ``"source"`` of shape ``(N, max_length)``: digit ids then ``PAD_ID``;
        ``"decoder_inputs"`` of shape ``(N, max_length + 1)``: ``START_ID``, the target digit
        ids, then ``PAD_ID``; ``"targets"`` of shape ``(N, max_length + 1)``: the target digit
        ids, ``END_ID``, then ``PAD_ID``.

    Raises:
        ValueError: for an unknown ``task``, invalid sizes or lengths, or more sequences than
            exist with lengths in ``[min_length, max_length]``.

    Example:

    >>> data = digit_sequences("reverse", num_train=64, num_test=16, max_length=6)
    >>> print({name: array.shape for name, array in data["train"].items()})
    {'source': (64, 6), 'decoder_inputs': (64, 7), 'targets': (64, 7)}
    >>> source = text_to_tokens("2024", 6)
    >>> print(source, tokens_to_text(source))
    [5 3 5 7 0 0] 2024
    """
    check_choice("task", task, _SEQUENCE_TASKS)
    check_int("num_train", num_train, 1)
    check_int("num_test", num_test, 1)
    _check_lengths(min_length, max_length, 1)
    lengths = list(range(min_length, max_length + 1))
    capacities = [_Family("any", length).capacity for length in lengths]
    _check_available(
        sum(capacities),
        num_train + num_test,
        f"digit sequences of length {min_length} to {max_length}",
        f"num_train={num_train}, num_test={num_test}, min_length={min_length}, "
        f"max_length={max_length}",
    )

    rng = np.random.default_rng(seed)
    counts = _allocate_lengths(rng, num_train + num_test, capacities)
    sources = [row for rows in _sample_pool(rng, "any", lengths, counts) for row in rows]
    order = rng.permutation(len(sources))
    sources = [sources[index] for index in order]
    outputs = [row[::-1] if task == "reverse" else np.sort(row) for row in sources]

    source_ids = _pad(sources, max_length)  # (N, max_length)
    decoder_inputs = _pad(outputs, max_length + 1, offset=1)  # (N, max_length + 1)
    decoder_inputs[:, 0] = START_ID
    targets = _pad(outputs, max_length + 1)  # (N, max_length + 1)
    targets[np.arange(len(outputs)), [len(row) for row in outputs]] = END_ID

    def split(part: slice) -> dict[str, np.ndarray]:
        return {
            "source": source_ids[part],
            "decoder_inputs": decoder_inputs[part],
            "targets": targets[part],
        }

    return {"train": split(slice(num_test, None)), "test": split(slice(0, num_test))}


def digit_classification(
    task: str = "palindrome",
    num_train: int = 4000,
    num_test: int = 500,
    min_length: int = 4,
    max_length: int = 12,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Generates a binary sequence-classification task over digit strings: is it a palindrome?

    Half of each split are palindromes (label 1); the other half are near-palindromes (label 0):
    palindromes with one digit changed, so they differ from a palindrome in a single mirror
    pair. Counting digits or looking at one end of the string cannot tell the classes apart;
    the model must compare positions far apart, in order. It is a quick check that an LSTM
    (notes §7.1) carries information across the sequence, or that attention (§7.2-7.3) relates
    distant positions. Both classes have the same distribution of lengths, so the length gives
    nothing away. All strings are distinct, so no test string occurs in the training split.

    Args:
        task: ``"palindrome"``.
        num_train: number of training strings, at least 1; ``num_train // 2`` are palindromes.
        num_test: number of held-out test strings, at least 1; ``num_test // 2`` are
            palindromes.
        min_length: shortest string, at least 2 (a single digit is always a palindrome).
        max_length: longest string, at least ``min_length``.
        seed: seed of the generator.

    Returns:
        ``{"train": (tokens, labels), "test": (tokens, labels)}``: tokens int32 of shape
        ``(N, max_length)``, digit ids then ``PAD_ID``; labels int32 of shape ``(N,)``, 1 for a
        palindrome and 0 otherwise. Each split is shuffled.

    Raises:
        ValueError: for an unknown ``task``, invalid sizes or lengths, or more palindromes than
            exist with lengths in ``[min_length, max_length]``.

    Example:

    >>> data = digit_classification(num_train=64, num_test=16, max_length=8)
    >>> tokens, labels = data["train"]
    >>> print(tokens.shape, labels.shape, labels.mean())
    (64, 8) (64,) 0.5
    """
    check_choice("task", task, _CLASSIFICATION_TASKS)
    check_int("num_train", num_train, 1)
    check_int("num_test", num_test, 1)
    _check_lengths(min_length, max_length, 2)
    num_positive = {"train": num_train // 2, "test": num_test // 2}
    num_negative = {"train": num_train - num_train // 2, "test": num_test - num_test // 2}
    total_negative = num_negative["train"] + num_negative["test"]
    lengths = list(range(min_length, max_length + 1))
    # Palindromes are the scarcer class at every length; near-palindromes take the same counts.
    capacities = [_Family("palindrome", length).capacity for length in lengths]
    _check_available(
        sum(capacities),
        total_negative,
        f"palindromes of length {min_length} to {max_length} (half of each split)",
        f"num_train={num_train}, num_test={num_test}, min_length={min_length}, "
        f"max_length={max_length}",
    )

    rng = np.random.default_rng(seed)
    counts = {"near_palindrome": {}, "palindrome": {}}
    all_negative = _allocate_lengths(rng, total_negative, capacities)
    counts["near_palindrome"]["test"] = rng.multivariate_hypergeometric(
        all_negative, num_negative["test"]
    )
    counts["near_palindrome"]["train"] = all_negative - counts["near_palindrome"]["test"]
    # In each split, positives take the negatives' length counts, less the odd example if any.
    for name in ("train", "test"):
        positive_counts = counts["near_palindrome"][name].copy()
        if num_negative[name] > num_positive[name]:
            positive_counts[rng.choice(np.flatnonzero(positive_counts))] -= 1
        counts["palindrome"][name] = positive_counts

    rows = {"train": ([], []), "test": ([], [])}  # (positives, negatives) of each split
    for length_index, length in enumerate(lengths):
        for label, kind in ((1, "palindrome"), (0, "near_palindrome")):
            num_test_rows = int(counts[kind]["test"][length_index])
            num_rows = num_test_rows + int(counts[kind]["train"][length_index])
            # Distinct strings, cut into the two splits, so that no test string is in train.
            strings = list(_Family(kind, length).sample_distinct(rng, num_rows))
            rows["test"][1 - label].extend(strings[:num_test_rows])
            rows["train"][1 - label].extend(strings[num_test_rows:])

    splits = {}
    for name in ("train", "test"):
        positives, negatives = rows[name]
        tokens = _pad(positives + negatives, max_length)  # (N, max_length)
        labels = np.array([1] * len(positives) + [0] * len(negatives), dtype=np.int32)
        order = rng.permutation(len(labels))
        splits[name] = (tokens[order], labels[order])
    return {"train": splits["train"], "test": splits["test"]}


def noisy_sine_windows(
    num_windows: int = 2000,
    window: int = 32,
    horizon: int = 1,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cuts a noisy sum of two sine waves into windows, each with the values that follow it.

    The series is ``s[t] = sin(2π t / P₁ + φ₁) + ½ sin(2π t / P₂ + φ₂) + ε[t]`` with periods
    ``P₁`` in [16, 32) and ``P₂`` in [4, 8) and phases drawn from the seed, and Gaussian noise
    ``ε[t]`` of standard deviation ``noise``. Window ``i`` holds ``s[i], ..., s[i + window - 1]``
    and its target is the next ``horizon`` values ``s[i + window], ...``: a
    sequence-to-one forecasting task for a recurrent model (notes §7.1) or a small Transformer
    encoder (§7.3). The targets carry the noise too, so the best achievable mean squared error is
    about ``noise²``, a floor a model can be measured against.

    Windows start at consecutive times and are not shuffled, so window ``i + 1`` is window ``i``
    shifted by one step; split them chronologically (e.g. the first 80 % for training) so that
    test windows lie after the training ones.

    Args:
        num_windows: number of windows, at least 1.
        window: length of each input window, at least 1.
        horizon: number of future values to predict, at least 1.
        noise: standard deviation of the Gaussian noise, at least 0.
        seed: seed of the periods, phases and noise.

    Returns:
        ``(x, y)``: x float32 of shape ``(num_windows, window, 1)``; y float32 of shape
        ``(num_windows, horizon)``.

    Raises:
        ValueError: for a size below 1 or a negative ``noise``.

    Example:

    >>> x, y = noisy_sine_windows(num_windows=100, window=16, horizon=2)
    >>> print(x.shape, y.shape, x.dtype)
    (100, 16, 1) (100, 2) float32
    """
    check_int("num_windows", num_windows, 1)
    check_int("window", window, 1)
    check_int("horizon", horizon, 1)
    check_non_negative("noise", noise)

    rng = np.random.default_rng(seed)
    slow_period, fast_period = rng.uniform(16.0, 32.0), rng.uniform(4.0, 8.0)
    slow_phase, fast_phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
    num_steps = num_windows + window + horizon - 1
    times = np.arange(num_steps)
    series = (
        np.sin(2.0 * np.pi * times / slow_period + slow_phase)
        + 0.5 * np.sin(2.0 * np.pi * times / fast_period + fast_phase)
        + noise * rng.standard_normal(num_steps)
    ).astype(np.float32)
    starts = np.arange(num_windows)[:, np.newaxis]
    x = series[starts + np.arange(window)][..., np.newaxis]  # (N, window, 1)
    y = series[starts + window + np.arange(horizon)]  # (N, horizon)
    return x, y


def tokens_to_text(ids) -> str:
    """Reads a 1-D sequence of token ids back as a digit string.

    Reading stops at the first ``END_ID``; ``PAD_ID`` and ``START_ID`` are skipped. Use it to
    print what a sequence model generated.

    Args:
        ids: 1-D sequence (list or array) of integer ids in ``[0, VOCABULARY_SIZE)``.

    Returns:
        The digits as a string, e.g. ``"3141"``.

    Raises:
        ValueError: if ``ids`` is not 1-D or holds an id outside the vocabulary.

    Example:

    >>> print(tokens_to_text([START_ID, 6, 4, 7, END_ID, PAD_ID]))
    314
    """
    array = np.asarray(ids)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(
            f"Expected `ids` to be a 1-D sequence of integer ids. Received: ids={ids!r}"
        )
    if array.size and (array.min() < 0 or array.max() >= VOCABULARY_SIZE):
        raise ValueError(f"Expected `ids` in [0, {VOCABULARY_SIZE}). Received: ids={ids!r}")
    digits = []
    for token in array.tolist():
        if token == END_ID:
            break
        if token >= _FIRST_DIGIT_ID:
            digits.append(VOCABULARY[token])
    return "".join(digits)


def text_to_tokens(text: str, length: int) -> np.ndarray:
    """Writes a digit string as token ids padded with ``PAD_ID`` to ``length``.

    The result has the layout of ``digit_sequences``'s ``"source"``, so a string typed by hand
    can be fed to a trained encoder.

    Args:
        text: a string of the characters ``0`` to ``9``.
        length: length of the result, at least ``len(text)`` and at least 1.

    Returns:
        int32 array of shape ``(length,)``.

    Raises:
        ValueError: if ``text`` holds anything but digits or is longer than ``length``.

    Example:

    >>> print(text_to_tokens("314", 5))
    [6 4 7 0 0]
    """
    if not isinstance(text, str) or not all(character in "0123456789" for character in text):
        raise ValueError(
            f"Expected `text` to be a string of the digits 0-9. Received: text={text!r}"
        )
    check_int("length", length, 1)
    if len(text) > length:
        raise ValueError(f"Expected `length` >= len(text) = {len(text)}. Received: length={length}")
    return _pad([np.array([int(character) for character in text], dtype=np.int64)], length)[0]
