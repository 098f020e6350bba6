"""Training on several devices or hosts with the engine of the active backend.

``scope()`` picks the engine: on TensorFlow a ``tf.distribute`` strategy (``MirroredStrategy``
on one host, ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` lists several workers, with a
compatibility layer for the Keras versions whose ``fit`` fails under it), on JAX a
``keras.distribution.DataParallel`` over every device of every process (after
``jax.distributed.initialize`` when several processes are described). PyTorch has no engine
here: ``scope`` says so and names what is supported.

Build, compile and train the model inside the scope. In one process ``batch_size`` is the
global batch, split across the devices::

    with dlkit.distribute.scope():
        model = make_model()
        model.compile(...)
        model.fit(dataset)

On JAX across several processes each process passes only its share of every global batch:
``fit(local_share(x, B), local_share(y, B), batch_size=B // num_processes, shuffle=False)``
(or a ``tf.data`` pipeline with ``drop_remainder=True``, which Keras shards itself).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import keras

__all__ = ["SUPPORTED", "local_share", "scope"]

SUPPORTED = {
    "tensorflow": "tf.distribute.MirroredStrategy (one host, several devices) and "
    "MultiWorkerMirroredStrategy (several hosts, TF_CONFIG)",
    "jax": "keras.distribution.DataParallel over the devices of one or several processes "
    "(jax.distributed)",
    "torch": "none: train on one device, or switch to the tensorflow or jax backend",
}


def local_share(array, global_batch_size: int, num_processes=None, process_id=None):
    """The rows of ``array`` this process feeds to ``fit`` in multi-process JAX training.

    Keras joins the processes' batches in process order into one global batch, so process ``p``
    of ``P`` passes, from every global batch of ``global_batch_size`` rows, the ``p``-th slice of
    ``global_batch_size // P`` rows. See ``dlkit.distribute._jax.local_share`` for details.
    """
    from dlkit.distribute import _jax

    return _jax.local_share(array, global_batch_size, num_processes, process_id)


@contextlib.contextmanager
def scope(
    devices: Sequence[str] | None = None,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    connect_timeout: float = 60.0,
) -> Iterator[object]:
    """A context in which models are built to train data-parallel on several devices.

    Args:
        devices: devices to use on this host (e.g. ``["gpu:0", "gpu:1"]``); ``None`` uses them
            all.
        coordinator_address: JAX only: ``host:port`` of process 0 when training across
            processes (also read from ``DLKIT_COORDINATOR_ADDRESS``).
        num_processes: JAX only: the number of processes (or ``DLKIT_NUM_PROCESSES``).
        process_id: JAX only: this process's index (or ``DLKIT_PROCESS_ID``).
        connect_timeout: seconds to wait for the other workers or the coordinator before
            raising ``ConnectionError`` with the address tried.

    Yields:
        The engine: a ``tf.distribute.Strategy`` on TensorFlow, a
        ``keras.distribution.DataParallel`` on JAX.

    Raises:
        ValueError: on the torch backend (the message lists what each backend supports), for
            multi-process arguments given on TensorFlow (use ``TF_CONFIG`` there), or for bad
            arguments.
        ConnectionError: if a peer or the coordinator cannot be reached in time.
    """
    if connect_timeout <= 0:
        raise ValueError(
            f"Expected connect_timeout > 0. Received: connect_timeout={connect_timeout}"
        )
    backend = keras.backend.backend()
    if backend == "tensorflow":
        if coordinator_address or num_processes or process_id is not None:
            raise ValueError(
                "On the tensorflow backend several hosts are described by the TF_CONFIG "
                "environment variable. Received: coordinator_address="
                f"{coordinator_address!r}, num_processes={num_processes!r}, "
                f"process_id={process_id!r}"
            )
        from dlkit.distribute import _tensorflow

        strategy = _tensorflow.make_strategy(devices, connect_timeout=connect_timeout)
        with strategy.scope():
            yield strategy
    elif backend == "jax":
        from dlkit.distribute import _jax

        distribution = _jax.make_distribution(
            devices,
            coordinator_address=coordinator_address,
            num_processes=num_processes,
            process_id=process_id,
            connect_timeout=connect_timeout,
        )
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(distribution)
        try:
            yield distribution
        finally:
            keras.distribution.set_distribution(previous)
    else:
        supported = "; ".join(f"{name}: {engine}" for name, engine in SUPPORTED.items())
        raise ValueError(
            f"dlkit has no multi-device training engine for the {backend} backend. "
            f"Received: KERAS_BACKEND={backend!r}. Supported: {supported}"
        )
