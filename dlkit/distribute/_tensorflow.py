"""TensorFlow engine of ``dlkit.distribute``: ``tf.distribute`` strategies for Keras ``fit``.

One host: ``tf.distribute.MirroredStrategy`` over its GPUs (or its CPU). Several hosts, described
by the ``TF_CONFIG`` environment variable: ``tf.distribute.MultiWorkerMirroredStrategy``, after
checking that every other worker can be reached, so that a missing peer raises an error naming
its address instead of leaving the process waiting.

Keras 3.15's TensorFlow trainer cannot run ``fit`` under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585, tensorflow/tensorflow#72388). ``install_multi_worker_compat`` patches
the two Keras functions at fault, only on the Keras versions that need it and only for
multi-worker strategies (every other strategy runs Keras' original code):

1. ``TensorFlowTrainer._maybe_symbolic_build`` builds the model from the shapes of the first
   batch. Under a strategy it first averages the batch over the replicas with
   ``strategy.reduce("MEAN", batch, axis=None)``; the multi-worker strategy hands that whole
   tuple of ``PerReplica`` values to one cross-device all-reduce, which fails with
   ``ValueError: Attempt to convert a value (PerReplica:{...}) ... to a Tensor``. The patch
   reads the batch of this worker's first replica instead: it has the shapes and dtypes the
   build needs, and reading it needs no communication between workers.
2. ``reduce_per_replica`` (module function of ``keras.src.backend.tensorflow.trainer``) averages
   the logs of every step over the replicas. In multi-worker mode it calls
   ``strategy.reduce("MEAN", value, axis=0)``, which also reduces along the value's first axis
   and fails on the scalar losses and metrics with ``ValueError: Invalid reduction dimension 0
   for input with 0 dimensions``. The patch averages over the replicas only (``axis=None``),
   as Keras' own single-worker branch does (``tf.reduce_mean(local_results, axis=0)`` over the
   stacked replicas).

Both patches keep Keras' original function and call it for everything but a multi-worker
strategy, so ``MirroredStrategy``, ``TPUStrategy`` and training without a strategy are
unchanged. Usage on each worker, before any other TensorFlow operation runs (the multi-worker
strategy configures TensorFlow's runtime at start-up)::

    strategy = make_strategy(connect_timeout=60.0)
    with strategy.scope():
        model = make_model()
        model.compile(...)
    model.fit(dataset)  # batches of the global batch size, split across the workers
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Sequence

import tensorflow as tf
from keras import tree

from dlkit.training._versions import private_api_supported, version_in_range
from dlkit.validation import check_positive

__all__ = ["install_multi_worker_compat", "make_strategy"]

# The Keras releases whose TensorFlow trainer fails under MultiWorkerMirroredStrategy and that
# the compatibility layer patches, as [first, first not patched): the 3.15 line, with 3.15.1
# (dlkit's minimum) verified broken; older releases are below that minimum and were not
# checked. No later release had been verified when this was written; if the two-worker test
# (tests/distribute/test_tensorflow_multi_worker.py) fails on a newer Keras, that release is
# still broken: verify it and raise the upper bound.
_BROKEN_KERAS_VERSIONS = ("3.15.0", "3.16.0")

# Marks the patched functions, so that installing twice patches once.
_PATCH_MARKER = "_dlkit_multi_worker_compat"

# Seconds between two connection attempts to a worker that is not listening yet.
_RETRY_INTERVAL = 0.2


def _needs_multi_worker_compat() -> bool:
    return version_in_range("keras", *_BROKEN_KERAS_VERSIONS)


def _in_multi_worker_mode(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` over more than one worker.

    TensorFlow's private ``extended._in_multi_worker_mode()``; on TensorFlow versions not
    checked (``dlkit.training._versions``), one warning and the same answer from the public
    cluster resolver: its chief and workers, more than one.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    if private_api_supported("TensorFlow multi-worker check", "tensorflow"):
        return strategy.extended._in_multi_worker_mode()
    return _worker_count(strategy.cluster_resolver) > 1


def _worker_count(cluster_resolver) -> int:
    """The chief and workers of a cluster resolver's cluster (1 with no cluster)."""
    jobs = cluster_resolver.cluster_spec().as_dict() if cluster_resolver is not None else {}
    count = sum(len(jobs.get(job, ())) for job in ("chief", "worker"))
    return max(count, 1)


def _patched_maybe_symbolic_build(original):
    """Returns ``TensorFlowTrainer._maybe_symbolic_build`` working under multi-worker strategies."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds the model from the first batch (multi-worker: from one replica's share).

        Keras' version (``original``) averages the first distributed batch over the replicas
        with ``strategy.reduce("MEAN", batch, axis=None)`` only to read its shapes; under
        ``MultiWorkerMirroredStrategy`` that hands a tuple of ``PerReplica`` values to one
        all-reduce, which fails (keras-team/keras#20585). One replica's batch has the same
        shapes and dtypes and needs no communication. Like Keras, this consumes one batch of
        ``iterator``; ``fit`` and ``evaluate`` reset it afterwards. Any other strategy, or a
        ``data_batch`` given directly (``train_on_batch``), runs Keras' version.
        """
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not _in_multi_worker_mode(strategy):
            return original(self, iterator=iterator, data_batch=data_batch)
        for _, _, distributed_iterator in iterator:
            distributed_batch = next(distributed_iterator)
            break
        else:
            return original(self, iterator=iterator, data_batch=data_batch)

        def local_value(value):
            if isinstance(value, tf.distribute.DistributedValues):
                return strategy.experimental_local_results(value)[0]
            return value

        return original(self, data_batch=tree.map_structure(local_value, distributed_batch))

    _maybe_symbolic_build.__wrapped__ = original
    setattr(_maybe_symbolic_build, _PATCH_MARKER, original)
    return _maybe_symbolic_build


def _patched_reduce_per_replica(original):
    """Returns the trainer's ``reduce_per_replica`` working under multi-worker strategies."""

    def reduce_per_replica(values, strategy, reduction):
        """Reduces the per-replica logs of a step (multi-worker: mean over the replicas only).

        Keras' version (``original``) reduces with ``strategy.reduce("MEAN", value, axis=0)``
        in multi-worker mode, which also reduces each value's first axis and fails on the
        scalar losses and metrics (tensorflow/tensorflow#72388, keras-team/keras#20585).
        ``axis=None`` averages over the replicas only, as Keras' single-worker branch does.
        Other strategies and reductions run Keras' version.
        """
        if reduction in ("auto", "mean") and _in_multi_worker_mode(strategy):
            return tree.map_structure(
                lambda value: None if value is None else strategy.reduce("MEAN", value, None),
                values,
            )
        return original(values, strategy, reduction)

    reduce_per_replica.__wrapped__ = original
    setattr(reduce_per_replica, _PATCH_MARKER, original)
    return reduce_per_replica


def install_multi_worker_compat() -> bool:
    """Makes Keras ``fit`` and ``evaluate`` work under ``MultiWorkerMirroredStrategy``.

    Patches ``TensorFlowTrainer._maybe_symbolic_build`` and the trainer module's
    ``reduce_per_replica`` on the Keras versions known to fail (see the module docstring for
    the two failures and ``_BROKEN_KERAS_VERSIONS`` for the bound); on other versions it
    changes nothing. The patched functions behave as Keras' originals except under a
    multi-worker strategy. Installing again is harmless: each function is patched once.

    Returns:
        ``True`` if this Keras version needs the compatibility layer and it is now installed
        (by this call or an earlier one); ``False`` if this version needs none.
    """
    if not _needs_multi_worker_compat():
        return False
    # Imported here, on the Keras versions the patches were checked against only.
    from keras.src.backend.tensorflow import trainer as keras_tensorflow_trainer

    trainer_class = keras_tensorflow_trainer.TensorFlowTrainer
    build = trainer_class._maybe_symbolic_build
    if not hasattr(build, _PATCH_MARKER):
        trainer_class._maybe_symbolic_build = _patched_maybe_symbolic_build(build)
    reduce = keras_tensorflow_trainer.reduce_per_replica
    if not hasattr(reduce, _PATCH_MARKER):
        # `_make_function` looks the name up in the module at call time.
        keras_tensorflow_trainer.reduce_per_replica = _patched_reduce_per_replica(reduce)
    return True


def _parse_address(address, tf_config: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) → ``(host, port)``."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"Expected each address in the TF_CONFIG cluster to be 'host:port'. "
            f"Received: {address!r} in TF_CONFIG={tf_config!r}"
        )
    return host.strip("[]"), int(port)


def _read_tf_config() -> tuple[dict, str, int, str] | None:
    """Parses ``TF_CONFIG``: ``(cluster, task_type, task_index, raw)``, or ``None`` if unset."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"Expected the TF_CONFIG environment variable to hold JSON ({error}). "
            f"Received: TF_CONFIG={raw!r}"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"Expected TF_CONFIG to be a JSON object with 'cluster' and 'task'. "
            f"Received: TF_CONFIG={raw!r}"
        )
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError(
            "Expected TF_CONFIG to have a 'cluster' mapping each job to its list of "
            f"'host:port' addresses. Received: TF_CONFIG={raw!r}"
        )
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(
            "Expected TF_CONFIG to have a 'task' with this worker's 'type' and 'index'. "
            f"Received: TF_CONFIG={raw!r}"
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list):
            raise ValueError(
                f"Expected the TF_CONFIG cluster job {job!r} to be a list of addresses. "
                f"Received: TF_CONFIG={raw!r}"
            )
    task_type, task_index = task["type"], task["index"]
    if (
        task_type not in cluster
        or not isinstance(task_index, int)
        or not 0 <= task_index < len(cluster[task_type])
    ):
        raise ValueError(
            f"Expected the TF_CONFIG task to name a job of the cluster and an index within it. "
            f"Received: task type={task_type!r}, index={task_index!r} in TF_CONFIG={raw!r}"
        )
    return cluster, task_type, task_index, raw


@contextlib.contextmanager
def _listening_on(host: str, port: int):
    """Listens on this worker's own address while it waits for the others.

    Every worker checks that the others accept connections before it starts TensorFlow's
    server on its own port; without this stand-in listener each would wait for the others'
    servers and none would start. It is closed before TensorFlow's server binds the port. If
    the port cannot be bound (TensorFlow's server of an earlier strategy in this process may
    hold it already), the check goes on without the stand-in.
    """
    listener = None
    # The address the peers use may not be one of this machine's (behind NAT, a service name):
    # then listen on every interface, as TensorFlow's server does.
    for bind_host in (host, ""):
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        try:
            listener = socket.create_server((bind_host, port), family=family)
            break
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                break
    try:
        yield
    finally:
        if listener is not None:
            listener.close()


def _wait_until_reachable(addresses: Sequence[tuple[str, int]], connect_timeout: float) -> None:
    """Waits until every address accepts a TCP connection, at most ``connect_timeout`` s."""
    deadline = time.monotonic() + connect_timeout
    for host, port in addresses:
        while True:
            remaining = deadline - time.monotonic()
            try:
                with socket.create_connection((host, port), timeout=max(remaining, 0.01)):
                    break
            except OSError as error:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionError(
                        f"Could not connect to the worker at {host}:{port} within "
                        f"connect_timeout={connect_timeout} s (last error: {error}). Check that "
                        "every worker of TF_CONFIG is started and that the address is reachable."
                    ) from None
                time.sleep(min(_RETRY_INTERVAL, remaining))


def make_strategy(devices: Sequence[str] | None = None, connect_timeout: float = 60.0):
    """Returns the ``tf.distribute`` strategy for this process.

    If ``TF_CONFIG`` describes more than one worker (jobs ``chief`` and ``worker``), waits at
    most ``connect_timeout`` seconds until every other worker's address accepts a TCP
    connection, installs ``install_multi_worker_compat`` and returns a
    ``tf.distribute.MultiWorkerMirroredStrategy`` (every local GPU, or the CPU, of each
    worker). It must then be called before any other TensorFlow operation of the process.
    Otherwise returns a ``tf.distribute.MirroredStrategy`` over ``devices``.

    Args:
        devices: devices of this host for ``MirroredStrategy`` (e.g. ``["gpu:0", "gpu:1"]``);
            ``None`` uses every local GPU, or the CPU if there is none. Must be ``None`` with
            several workers.
        connect_timeout: seconds to wait for the other workers.

    Returns:
        A ``tf.distribute.MultiWorkerMirroredStrategy`` or ``tf.distribute.MirroredStrategy``.

    Raises:
        ValueError: if ``TF_CONFIG`` is not valid JSON, lacks its ``cluster`` or ``task``, or
            names a task that is neither a chief nor a worker of several; if
            ``connect_timeout`` is not positive; or if ``devices`` is empty or given with
            several workers.
        TypeError: if ``devices`` is not a list or tuple of device names.
        ConnectionError: if a worker does not accept connections within ``connect_timeout``
            seconds; the message names its address.
    """
    check_positive("connect_timeout", connect_timeout)
    if devices is not None:
        if not isinstance(devices, (list, tuple)) or not all(isinstance(d, str) for d in devices):
            raise TypeError(
                f"Expected devices to be a list of device names such as ['gpu:0', 'gpu:1']. "
                f"Received: devices={devices!r}"
            )
        if not devices:
            raise ValueError(f"Expected at least one device. Received: devices={devices!r}")
    tf_config = _read_tf_config()
    if tf_config is not None:
        cluster, task_type, task_index, raw = tf_config
        workers = [
            (job, index, _parse_address(address, raw))
            for job in ("chief", "worker")
            for index, address in enumerate(cluster.get(job, []))
        ]
        if len(workers) > 1:
            if devices is not None:
                raise ValueError(
                    "Expected devices=None with several workers: MultiWorkerMirroredStrategy "
                    f"uses every local GPU (or the CPU) of each worker. Received: "
                    f"devices={devices!r} with TF_CONFIG={raw!r}"
                )
            if task_type not in ("chief", "worker"):
                raise ValueError(
                    "Expected the TF_CONFIG task type to be 'chief' or 'worker' for "
                    f"MultiWorkerMirroredStrategy. Received: task type={task_type!r} in "
                    f"TF_CONFIG={raw!r}"
                )
            own_address = _parse_address(cluster[task_type][task_index], raw)
            others = [
                address
                for job, index, address in workers
                if (job, index) != (task_type, task_index)
            ]
            with _listening_on(*own_address):
                _wait_until_reachable(others, connect_timeout)
            install_multi_worker_compat()
            return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy(devices)
