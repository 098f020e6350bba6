"""``fit`` with the data resident on the device and many training steps per compiled call.

Keras's ``fit`` takes one batch from the host per step and calls one compiled step with it: on
a GPU, or for a small model on any device, the time goes to the host (slicing the batch,
copying it, dispatching the step, bookkeeping), not to the arithmetic. For data that is already
in memory, ``fused_fit`` does what no per-step loop can:

1. the arrays are copied to the device once (``keras.ops.convert_to_tensor``), with floats in
   ``keras.config.floatx()`` as Keras's own adapter gives them;
2. each epoch draws one permutation of the rows on the device
   (``keras.random.shuffle`` from a ``SeedGenerator`` seeded by ``keras.utils.set_random_seed``);
3. each call gathers K batches of that permutation on the device and runs K consecutive steps
   of the model's own ``train_step`` in one compiled call (a ``lax.scan`` or unrolled chunks
   inside one ``jax.jit``, a loop inside one ``tf.function``, on PyTorch one traced step graph
   replayed K times; ``backend.BackendModule.fused_fit_function``).

Everything else is Keras's ``fit``: callbacks, the progress bar, ``History``, validation,
``BackupAndRestore`` and the metrics, with logs every K steps as ``steps_per_execution = K``
gives them. Batches are Keras's: ``batch_size`` rows (32 by default) and a smaller last one.
For a fixed seed the batches, their order and the noise of the steps do not depend on K, so
the weights after an epoch agree for every K (``tests/training/test_fused.py``).

The path applies to NumPy arrays and backend tensors (alone or in tuples, lists and dicts)
whose total size is at most ``device_data_limit`` bytes. ``tf.data`` datasets, generators and
``PyDataset``s, sample or class weights, ``steps_per_epoch``, ``shuffle="batch"``, eager runs
and distributed training keep Keras's streaming path; data over the limit, or that the device
has no memory for, does too, with one logged line saying so.
"""

from __future__ import annotations

import logging
import math
import warnings

import keras
import numpy as np

from dlkit.training.backend import backend_module
from dlkit.validation import check_int

__all__ = [
    "DEFAULT_DEVICE_DATA_LIMIT",
    "FUSED_STEPS_AUTO",
    "FusedFit",
    "FusedRunner",
    "fused_fit",
]

logger = logging.getLogger(__name__)

# Data up to this many bytes (all inputs and targets together) is placed on the device.
DEFAULT_DEVICE_DATA_LIMIT = 2**30

# K when ``fused_steps="auto"`` and the model was compiled with ``steps_per_execution=1``: enough
# steps per call for the host's share of a step to vanish beside a small model's arithmetic,
# while the progress bar and the callbacks still hear from the run every K steps.
FUSED_STEPS_AUTO = 32

# The arguments of keras.Model.fit, in order, with their defaults.
_FIT_DEFAULTS = {
    "x": None,
    "y": None,
    "batch_size": None,
    "epochs": 1,
    "verbose": "auto",
    "callbacks": None,
    "validation_split": 0.0,
    "validation_data": None,
    "shuffle": True,
    "class_weight": None,
    "sample_weight": None,
    "initial_epoch": 0,
    "steps_per_epoch": None,
    "validation_steps": None,
    "validation_batch_size": None,
    "validation_freq": 1,
}


def check_fused_steps(value) -> int | str | None:
    """``fused_steps`` checked: ``"auto"``, ``None`` (the streaming path) or an integer >= 1."""
    if value is None or (isinstance(value, str) and value == "auto"):
        return value
    if isinstance(value, str):
        raise ValueError(
            f"Expected `fused_steps` to be 'auto', None or an integer >= 1. "
            f"Received: fused_steps={value!r}"
        )
    return check_int("fused_steps", value, minimum=1)


def check_device_data_limit(value) -> int:
    """``device_data_limit`` checked: ``None`` (the default limit) or a byte count >= 0."""
    if value is None:
        return DEFAULT_DEVICE_DATA_LIMIT
    return check_int("device_data_limit", value, minimum=0)


def _is_array(leaf) -> bool:
    return isinstance(leaf, np.ndarray) or keras.ops.is_tensor(leaf)


def _nbytes(leaf) -> int:
    if isinstance(leaf, np.ndarray):
        return leaf.nbytes
    return math.prod(leaf.shape) * np.dtype(keras.backend.standardize_dtype(leaf.dtype)).itemsize


def _rows(leaf) -> int | None:
    shape = getattr(leaf, "shape", ())
    return int(shape[0]) if len(shape) else None


def _check_batch_dimension(arrays: dict) -> int:
    """The common number of rows of every array in ``arrays`` (name -> structure)."""
    rows = {}
    for name, structure in arrays.items():
        for index, leaf in enumerate(keras.tree.flatten(structure)):
            label = name if len(keras.tree.flatten(structure)) == 1 else f"{name}[{index}]"
            rows[label] = _rows(leaf)
    counts = set(rows.values())
    if None in counts:
        scalar = next(label for label, count in rows.items() if count is None)
        raise ValueError(
            f"Expected every input to have a batch dimension. Received: `{scalar}` is a scalar"
        )
    if len(counts) != 1:
        raise ValueError(
            "Expected the inputs to have the same batch dimension. Received: "
            + ", ".join(f"`{label}` with {count} rows" for label, count in rows.items())
        )
    count = counts.pop()
    if count == 0:
        raise ValueError(f"Expected at least one row of data. Received: x with 0 rows ({rows})")
    return count


def _to_device(leaf):
    dtype = keras.backend.standardize_dtype(leaf.dtype)
    if "float" in dtype and dtype != keras.config.floatx():
        return keras.ops.convert_to_tensor(leaf, dtype=keras.config.floatx())
    return keras.ops.convert_to_tensor(leaf)


def _out_of_memory(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return any(
        marker in text for marker in ("out of memory", "resource_exhausted", "resource exhausted")
    )


class FusedRunner:
    """The schedule of a fused ``fit``: device-resident data, one permutation per epoch and the
    K-step chunks of each compiled call (see the module docstring).

    Attributes:
        steps: K, the training steps per compiled call.
        batch_size: rows per batch (the last batch of an epoch may have fewer).
        rows: rows of training data.
        steps_per_epoch: batches per epoch, the last one partial where ``batch_size`` does not
            divide ``rows``.
        num_traces: how many times the backend traced the K-step function.
    """

    def __init__(self, model, x, y, batch_size: int, steps: int, shuffle: bool):
        self.model = model
        self.rows = _check_batch_dimension({"x": x} if y is None else {"x": x, "y": y})
        self.batch_size = batch_size
        self.steps = steps
        self.shuffle = shuffle
        self.steps_per_epoch = -(-self.rows // batch_size)
        self.full_batches = self.rows // batch_size
        self.num_traces = 0
        self.evaluation_steps = model.steps_per_execution
        self.x = keras.tree.map_structure(_to_device, x)
        self.y = None if y is None else keras.tree.map_structure(_to_device, y)
        self._seed = keras.random.SeedGenerator()
        self._order = None
        self._begin = 0
        self.function = backend_module().fused_fit_function(model, self)

    def new_epoch(self) -> None:
        """Draws the epoch's order of the rows (the identity without shuffling)."""
        order = keras.ops.arange(self.rows, dtype="int32")
        self._order = keras.random.shuffle(order, seed=self._seed) if self.shuffle else order
        self._begin = 0
        self.model.steps_per_execution = self.steps

    def begin_call(self, step: int) -> None:
        """Sets the first step of the next call (Keras's ``begin_step``)."""
        self._begin = step

    def first_batch(self):
        """The first ``batch_size`` rows as Keras's adapter packs a batch (to build the model)."""
        rows = min(self.batch_size, self.rows)
        take = lambda leaf: leaf[:rows]  # noqa: E731
        return self._pack(
            keras.tree.map_structure(take, self.x),
            None if self.y is None else keras.tree.map_structure(take, self.y),
        )

    @staticmethod
    def _pack(x, y):
        return keras.utils.pack_x_y_sample_weight(x, y)

    def _gather(self, start: int, count: int, size: int):
        """Batches ``start .. start + count - 1`` of the epoch's order, stacked: (count, size)."""
        if self._order is None:
            self.new_epoch()
        first = start * self.batch_size
        indices = keras.ops.reshape(self._order[first : first + count * size], (count, size))
        take = lambda leaf: keras.ops.take(leaf, indices, axis=0)  # noqa: E731
        return self._pack(
            keras.tree.map_structure(take, self.x),
            None if self.y is None else keras.tree.map_structure(take, self.y),
        )

    def call_batches(self):
        """The stacked batches of the current call: the full batches among the next K steps in
        one stack, then the epoch's partial last batch alone when the call reaches it."""
        begin = self._begin
        end = min(begin + self.steps, self.steps_per_epoch)
        full_end = min(end, self.full_batches)
        if full_end > begin:
            yield self._gather(begin, full_end - begin, self.batch_size)
        if end > full_end:
            yield self._gather(full_end, 1, self.rows - full_end * self.batch_size)
        self._begin = end
        if end == self.steps_per_epoch:
            # Validation follows: Keras builds its evaluation with the model's own setting
            # (on PyTorch it takes no other than 1).
            self.model.steps_per_execution = self.evaluation_steps


class _Schedule(keras.callbacks.Callback):
    """Tells the runner where each epoch and each call begins."""

    def __init__(self, runner: FusedRunner):
        super().__init__()
        self.runner = runner

    def on_epoch_begin(self, epoch, logs=None):
        self.runner.new_epoch()

    def on_train_batch_begin(self, batch, logs=None):
        self.runner.begin_call(batch)


def _streaming_reason(model, arguments: dict) -> str | None:
    """Why ``fit`` with these arguments keeps Keras's streaming path; None if it need not."""
    if model.run_eagerly:
        return "run_eagerly=True"
    if keras.distribution.distribution() is not None:
        return "a keras.distribution is set"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() or model.distribute_strategy is not (
            tf.distribute.get_strategy()
        ):
            return "a tf.distribute strategy"
    for name in ("sample_weight", "class_weight", "steps_per_epoch"):
        if arguments[name] is not None:
            return f"{name} is given"
    if not isinstance(arguments["shuffle"], bool):
        return f"shuffle={arguments['shuffle']!r}"
    if isinstance(arguments["callbacks"], keras.callbacks.CallbackList):
        return "callbacks is a CallbackList"
    x, y = arguments["x"], arguments["y"]
    if x is None or not all(_is_array(leaf) for leaf in keras.tree.flatten(x)):
        return "x is not in-memory arrays"
    if y is not None and not all(_is_array(leaf) for leaf in keras.tree.flatten(y)):
        return "y is not in-memory arrays"
    return None


def _split_validation(x, y, fraction: float):
    """Keras's ``validation_split``: the last ``fraction`` of the rows, unshuffled."""
    rows = _check_batch_dimension({"x": x} if y is None else {"x": x, "y": y})
    split = math.floor(rows * (1.0 - fraction))
    head = lambda leaf: leaf[:split]  # noqa: E731
    tail = lambda leaf: leaf[split:]  # noqa: E731
    train = (
        keras.tree.map_structure(head, x),
        (None if y is None else keras.tree.map_structure(head, y)),
    )
    validation_x = keras.tree.map_structure(tail, x)
    if y is None:
        return train, (validation_x,)
    return train, (validation_x, keras.tree.map_structure(tail, y))


def fused_fit(
    model: keras.Model,
    x=None,
    y=None,
    fused_steps="auto",
    device_data_limit: int | None = None,
    **fit_arguments,
):
    """Trains any compiled Keras model as ``model.fit(x, y, **fit_arguments)`` does, with
    in-memory data on the device and ``fused_steps`` steps per compiled call (see the module
    docstring); dlkit's own models take the same two arguments in their ``fit``.

    Args:
        model: a compiled Keras model.
        x: inputs: a NumPy array or backend tensor, or a tuple, list or dict of them.
        y: targets, likewise, or None.
        fused_steps: K, training steps per compiled call; ``"auto"`` takes the model's
            ``steps_per_execution`` when it was compiled with more than 1, else
            ``FUSED_STEPS_AUTO`` (32, at most the steps of an epoch); ``None`` keeps Keras's
            streaming path.
        device_data_limit: the most bytes of training data placed on the device; larger data
            streams from the host, with one logged line. Defaults to
            ``DEFAULT_DEVICE_DATA_LIMIT`` (1 GiB).
        **fit_arguments: the other arguments of ``keras.Model.fit``, by name.

    Returns:
        The ``History`` of the run.

    Raises:
        ValueError: if ``fused_steps`` is not ``"auto"``, ``None`` or an integer >= 1, if
            ``device_data_limit`` is negative or not an integer, or if the in-memory inputs
            do not share their batch dimension.
        TypeError: for an argument ``keras.Model.fit`` does not take.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> history = fused_fit(model, np.ones((64, 3), "float32"), np.zeros((64, 1), "float32"),
    ...                     batch_size=8, epochs=2, verbose=0)
    >>> int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    16
    """
    return run_fused_fit(model, {"x": x, "y": y, **fit_arguments}, fused_steps, device_data_limit)


def run_fused_fit(
    model: keras.Model,
    arguments: dict,
    fused_steps="auto",
    device_data_limit: int | None = None,
    streaming_fit=None,
):
    """``fused_fit`` with ``keras.Model.fit``'s arguments in a dict; ``streaming_fit(arguments)``
    runs the streaming path (default ``keras.Model.fit``)."""
    unknown = sorted(set(arguments) - set(_FIT_DEFAULTS))
    if unknown:
        raise TypeError(f"Expected arguments of keras.Model.fit. Received: {unknown}")
    arguments = {**_FIT_DEFAULTS, **arguments}
    fused_steps = check_fused_steps(fused_steps)
    limit = check_device_data_limit(device_data_limit)
    if streaming_fit is None:
        streaming_fit = lambda kwargs: keras.Model.fit(model, **kwargs)  # noqa: E731
    if fused_steps is None or _streaming_reason(model, arguments) is not None:
        return streaming_fit(arguments)

    x, y = arguments["x"], arguments["y"]
    _check_batch_dimension({"x": x} if y is None else {"x": x, "y": y})
    size = sum(_nbytes(leaf) for leaf in keras.tree.flatten((x, y)) if leaf is not None)
    if size > limit:
        logger.warning(
            "fit: %d bytes of training data exceed device_data_limit=%d; the batches stream "
            "from the host.",
            size,
            limit,
        )
        return streaming_fit(arguments)
    validation_data = arguments["validation_data"]
    if arguments["validation_split"] and validation_data is None:
        (x, y), validation_data = _split_validation(x, y, arguments["validation_split"])

    batch_size = check_int("batch_size", arguments["batch_size"] or 32)
    if fused_steps == "auto":
        compiled_steps = int(getattr(model, "steps_per_execution", 1) or 1)
        fused_steps = compiled_steps if compiled_steps > 1 else FUSED_STEPS_AUTO
    try:
        runner = FusedRunner(model, x, y, batch_size, fused_steps, arguments["shuffle"])
    except Exception as error:
        if not _out_of_memory(error):
            raise
        logger.warning(
            "fit: the device has no room for %d bytes of training data (%s); the batches "
            "stream from the host.",
            size,
            type(error).__name__,
        )
        return streaming_fit(arguments)
    runner.steps = min(runner.steps, runner.steps_per_epoch)

    from dlkit.training.steps import build_for_training

    build_for_training(model, *_unpacked(runner.first_batch()))
    callbacks = [*(arguments["callbacks"] or []), _Schedule(runner)]
    keras_arguments = {
        **arguments,
        # Keras counts the steps and drives the callbacks over a stand-in of one row per step;
        # the batches themselves come from the device.
        "x": np.arange(runner.steps_per_epoch, dtype="int32"),
        "y": None,
        "batch_size": 1,
        "shuffle": False,
        "callbacks": callbacks,
        "validation_split": 0.0,
        "validation_data": validation_data,
        "validation_batch_size": arguments["validation_batch_size"] or batch_size,
    }
    saved_steps, saved_function = model.steps_per_execution, model.train_function
    model.steps_per_execution = runner.steps
    model.train_function = runner.function
    model._dlkit_fused_runner = runner
    try:
        with warnings.catch_warnings():
            # Keras's PyTorch trainer takes K stand-in rows per call and warns when the last
            # call of an epoch finds fewer; the epoch has ended as it should.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            return keras.Model.fit(model, **keras_arguments)
    finally:
        model.steps_per_execution = saved_steps
        model.train_function = saved_function
        model._dlkit_fused_runner = None


def _unpacked(data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x, y


class FusedFit:
    """Mixin of dlkit's models (placed before ``keras.Model``): ``fit`` on in-memory data runs
    on the device-resident, K-steps-per-call path of ``dlkit.training.fused``.

    ``fit`` takes every argument of ``keras.Model.fit`` and two more:

    - ``fused_steps``: K, training steps per compiled call; ``"auto"`` takes the compiled
      ``steps_per_execution`` when above 1, else 32 (at most an epoch); ``None`` (default)
      keeps Keras's streaming path. It is not yet the default: on a CPU the fused path is
      slower than the streaming one for networks with convolutions on JAX (see
      ``benchmarks/README.md``, ``host_overhead.py``), and it shuffles with other random
      numbers than Keras's path, so a seeded run learns along another trajectory.
    - ``device_data_limit``: the most bytes of training data placed on the device (default
      1 GiB); larger data streams from the host, with one logged line saying so.

    Example:

    >>> import numpy as np
    >>> from dlkit.models import Autoencoder, build_dense_autoencoder
    >>> model = Autoencoder(*build_dense_autoencoder((8,), latent_dim=2, hidden_units=(16,)))
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(np.ones((100, 8), "float32"), batch_size=10, epochs=2,
    ...                     fused_steps="auto", verbose=0)
    >>> int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    20
    """

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch=0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
        fused_steps=None,
        device_data_limit=None,
    ):
        """Keras's ``fit``; with ``fused_steps``, in-memory data trains that many steps per
        compiled call with the data on the device (``dlkit.training.fused``)."""
        arguments = dict(
            x=x,
            y=y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            class_weight=class_weight,
            sample_weight=sample_weight,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
            validation_batch_size=validation_batch_size,
            validation_freq=validation_freq,
        )
        if isinstance(callbacks, (list, tuple)) or callbacks is None:
            arguments["callbacks"] = [*self._training_callbacks(), *(callbacks or [])]
        return run_fused_fit(
            self,
            arguments,
            fused_steps=fused_steps,
            device_data_limit=device_data_limit,
            streaming_fit=self._streaming_fit,
        )

    def _training_callbacks(self) -> list:
        """Callbacks of the model's own that run before the user's in every ``fit``."""
        return []

    def _streaming_fit(self, arguments: dict):
        """Keras's ``fit`` (subclasses may first adjust its arguments)."""
        return super().fit(**arguments)
