"""JAX engine of ``dlkit.distribute``: ``keras.distribution.DataParallel`` over processes.

One process drives all the devices of its host; several processes (on one host or many) join
through ``jax.distributed``, and ``DataParallel`` then spans every device of every process.
Every process runs the same program: same model, same seed, same number of ``fit`` steps.

Describing the processes (arguments of ``initialize``, or environment variables read when an
argument is ``None``):

- ``DLKIT_COORDINATOR_ADDRESS``: ``host:port`` of process 0, which serves the coordinator there.
- ``DLKIT_NUM_PROCESSES``: the number of processes; 1 or unset means single-process.
- ``DLKIT_PROCESS_ID``: this process's index, ``0 ... num_processes - 1``.

What each process passes to ``fit`` (measured on keras 3.15.1 / jax 0.10.2): the JAX trainer
turns every batch a process yields into its part of the global batch with
``jax.make_array_from_process_local_data``, which concatenates the processes' batches in
process order along the batch axis. So for a global batch of ``B`` rows and ``P`` processes,
process ``p`` passes ``local_share(array, B)`` (rows ``p·B/P ... (p+1)·B/P - 1`` of every global
batch) with ``batch_size=B // P``; the step then sees exactly the single-process global batch,
and the logged losses and metrics are over the global batch, the same on every process.
``shuffle=True`` would shuffle each process's share separately: pass ``shuffle=False`` for
results equal to single-process training. Each process's batch is split again across its
own devices, so ``B`` (and a shorter last batch) must divide by the number of all devices.

Keras' own multi-process check (arrays refused unless ``auto_shard_dataset=False``) is off by
default here. With ``auto_shard_dataset=True``, a global ``tf.data.Dataset`` batched by ``B``
is sharded by Keras (``rebatch(B // P).shard(P, p)``) into the same shares for full batches;
a shorter last batch then goes unevenly to the processes, so batch it with
``drop_remainder=True``.

CPU processes exchange gradients through gloo, jax's default CPU collectives
(``jax_cpu_collectives_implementation="gloo"``); nothing needs configuring. Gloo listens on
the address the host name resolves to, the coordinator service on ``coordinator_address``.
"""

from __future__ import annotations

import math
import os
import random
import socket
import struct
import time
from collections.abc import Sequence

import jax
import keras
import numpy as np

from dlkit.training._versions import private_api_supported
from dlkit.validation import check_int

ENVIRONMENT_VARIABLES = {
    "coordinator_address": "DLKIT_COORDINATOR_ADDRESS",
    "num_processes": "DLKIT_NUM_PROCESSES",
    "process_id": "DLKIT_PROCESS_ID",
}

# Sent by each process to the coordinator before jax.distributed starts: (process_id,
# num_processes); the coordinator answers one byte when every process has arrived.
_HELLO = struct.Struct("!II")
_GO = b"\x01"


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    connect_timeout: float = 60.0,
) -> bool:
    """Joins this process to the others with ``jax.distributed`` when several are described.

    Call it first in the program, before any JAX computation (JAX fixes its devices then).
    Each argument left ``None`` is read from its environment variable (see the module
    docstring). A second call only reports the mode.

    JAX aborts the whole process (it does not raise) when the coordinator or a peer is missing
    at start-up, so the processes first meet over a plain TCP connection on the coordinator's
    address: process 0 listens there until the others have connected, the others retry until
    it answers. Either way a missing process raises ``ConnectionError`` after
    ``connect_timeout`` seconds; ``jax.distributed`` then gets another ``connect_timeout`` to
    start. The coordinator service listens only on ``coordinator_address``.

    Args:
        coordinator_address: ``host:port`` of process 0 (``[::1]:port`` for IPv6).
        num_processes: the number of processes, at least 1.
        process_id: this process's index, ``0 <= process_id < num_processes``.
        connect_timeout: seconds to wait for the other processes or the coordinator.

    Returns:
        Whether multi-process mode is on.

    Raises:
        ValueError: for a malformed or missing argument or environment variable, or
            arguments that contradict an already initialized run.
        ConnectionError: naming the coordinator address, if it cannot be reached (or, on
            process 0, served) or the other processes do not all arrive in time.
        RuntimeError: if JAX has already computed, so it can no longer add devices.
    """
    if not (isinstance(connect_timeout, (int, float)) and connect_timeout > 0):
        raise ValueError(
            f"Expected connect_timeout > 0 seconds. Received: connect_timeout={connect_timeout!r}"
        )
    coordinator_address = _from_environment("coordinator_address", coordinator_address)
    num_processes = _integer("num_processes", _from_environment("num_processes", num_processes))
    process_id = _integer("process_id", _from_environment("process_id", process_id))
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"Expected num_processes >= 1. Received: num_processes={num_processes}")

    if jax.distributed.is_initialized():
        running = {"num_processes": jax.process_count(), "process_id": jax.process_index()}
        requested = {"num_processes": num_processes, "process_id": process_id}
        for name, value in requested.items():
            if value is not None and value != running[name]:
                raise ValueError(
                    f"Expected {name}={running[name]} (jax.distributed is already initialized). "
                    f"Received: {name}={value}"
                )
        return True
    if num_processes is None or num_processes == 1:
        return False

    if coordinator_address is None:
        raise ValueError(
            f"Expected coordinator_address (or {ENVIRONMENT_VARIABLES['coordinator_address']}) "
            f"for num_processes={num_processes}. Received: coordinator_address=None"
        )
    host, port = _host_and_port(coordinator_address)
    if process_id is None or not 0 <= process_id < num_processes:
        raise ValueError(
            f"Expected 0 <= process_id < num_processes={num_processes}. "
            f"Received: process_id={process_id}"
        )
    # jax.distributed.initialize refuses once a backend exists; checking here, before meeting
    # the others, lets them fail with ConnectionError instead of waiting for this process.
    if _backends_initialized():
        raise RuntimeError(
            "Expected dlkit.distribute to initialize before JAX computes anything (its devices "
            "are fixed then). Call it at the start of the program, before building models."
        )

    if process_id == 0:
        _gather_processes(host, port, coordinator_address, num_processes, connect_timeout)
    else:
        _reach_coordinator(
            host, port, coordinator_address, num_processes, process_id, connect_timeout
        )
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=math.ceil(connect_timeout),
        coordinator_bind_address=coordinator_address,
    )
    _agree_on_random_seed()
    return True


def _backends_initialized() -> bool:
    """Whether JAX has already set up its backends (computed), read from the private
    ``jax._src.xla_bridge``. JAX has no public equivalent; on JAX versions not checked
    (``dlkit.training._versions``) this warns once and answers False: a process that has
    computed then fails later, in ``jax.distributed.initialize`` (JAX's own RuntimeError), once
    the processes have met, instead of before, which costs time but not correctness."""
    if not private_api_supported("JAX early-computation check", "jax"):
        return False
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def _agree_on_random_seed() -> None:
    """Gives every process the same Keras global seed, so that the replicated weights they
    initialize agree, as ``keras.distribution.initialize`` does.

    Keras's private ``initialize_rng`` keeps a seed set with ``keras.utils.set_random_seed``
    and otherwise sets the sum of one random draw per process. Keras has no public way to read
    the global seed, so on Keras versions not checked (``dlkit.training._versions``) this warns
    once and always sets the sum of the processes' draws from Python's ``random``: still the
    same on every process and, after ``keras.utils.set_random_seed`` (which seeds Python's
    ``random`` too), still reproducible, but another seed than the one set, so other initial
    weights than a single-process run with that seed. Not agreeing on a seed at all would give
    each process other "replicated" weights, so there is no path without one.
    """
    if private_api_supported("JAX multi-process seed", "keras"):
        from keras.src.backend.jax.distribution_lib import initialize_rng

        initialize_rng()
        return
    cpu_devices = jax.devices("cpu")
    local_seed = jax.numpy.asarray(
        [random.randint(1, int(1e9))] * jax.local_device_count("cpu"), dtype=jax.numpy.uint32
    )
    summed = jax.pmap(lambda x: jax.lax.psum(x, "all"), axis_name="all", devices=cpu_devices)
    keras.utils.set_random_seed(summed(local_seed).item(0))


def make_distribution(
    devices: Sequence[str] | None = None,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    connect_timeout: float = 60.0,
    auto_shard_dataset: bool = False,
) -> keras.distribution.DataParallel:
    """A ``DataParallel`` distribution over every device of every process.

    Calls ``initialize`` with the process arguments first. Build, compile and ``fit`` the
    model while the distribution is set (``keras.distribution.set_distribution`` or its
    ``scope()``); in multi-process mode each process feeds its share (see ``local_share``).

    Args:
        devices: device names as ``keras.distribution.list_devices()`` gives them (the devices
            of all processes in multi-process mode); ``None`` uses every device.
        coordinator_address: see ``initialize``.
        num_processes: see ``initialize``.
        process_id: see ``initialize``.
        connect_timeout: see ``initialize``.
        auto_shard_dataset: let Keras shard a global ``tf.data.Dataset`` across the processes
            (it then refuses arrays); by default each process passes its own share.

    Returns:
        The ``keras.distribution.DataParallel`` distribution.

    Raises:
        ValueError: for an empty or non-string ``devices``, or from ``initialize``.
        ConnectionError: from ``initialize``.
    """
    initialize(coordinator_address, num_processes, process_id, connect_timeout)
    if devices is None:
        devices = keras.distribution.list_devices()
    devices = list(devices) if not isinstance(devices, str) else [devices]
    if not devices or not all(isinstance(device, str) for device in devices):
        raise ValueError(
            f"Expected a non-empty list of device names such as 'cpu:0'. Received: "
            f"devices={devices!r}"
        )
    return keras.distribution.DataParallel(devices=devices, auto_shard_dataset=auto_shard_dataset)


def local_share(
    array,
    global_batch_size: int,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> np.ndarray:
    """The rows of ``array`` this process passes to ``fit`` with ``global_batch_size``.

    Batch ``i`` of the result (``batch_size=global_batch_size // num_processes``) is part
    ``process_id`` of global batch ``i``; a shorter last global batch is split the same way.

        share = concat over i of array[i·B + p·b : i·B + (p+1)·b],   b = B / P

    Args:
        array: array-like whose first axis indexes samples, the same on every process.
        global_batch_size: ``B``, the rows of one global batch (the single-process batch).
        num_processes: ``P``; ``None`` means ``jax.process_count()``.
        process_id: ``p``; ``None`` means ``jax.process_index()``.

    Returns:
        A NumPy array with this process's rows, in the order ``fit`` must see them.

    Raises:
        ValueError: if ``global_batch_size`` (or the last, shorter global batch) does not split
            evenly across the processes, or for an invalid argument.

    Example:

    >>> local_share(np.arange(10), global_batch_size=4, num_processes=2, process_id=1)
    array([2, 3, 6, 7, 9])
    """
    num_processes = jax.process_count() if num_processes is None else num_processes
    process_id = jax.process_index() if process_id is None else process_id
    check_int("global_batch_size", global_batch_size)
    num_processes = check_int("num_processes", num_processes)
    process_id = check_int("process_id", process_id, minimum=0, maximum=num_processes - 1)
    if global_batch_size % num_processes:
        raise ValueError(
            f"Expected global_batch_size divisible by num_processes={num_processes}. "
            f"Received: global_batch_size={global_batch_size}"
        )
    array = np.asarray(array)
    if array.ndim == 0:
        raise ValueError(f"Expected an array with a sample axis. Received: shape={array.shape}")
    num_full_batches, remainder = divmod(len(array), global_batch_size)
    if remainder % num_processes:
        raise ValueError(
            f"Expected the last global batch ({remainder} of {len(array)} rows) to split evenly "
            f"across num_processes={num_processes}; every process must run the same steps with "
            f"equal batches. Received: array of {len(array)} rows, "
            f"global_batch_size={global_batch_size}"
        )
    rows = global_batch_size // num_processes
    full = array[: num_full_batches * global_batch_size]
    full = full.reshape((num_full_batches, num_processes, rows, *array.shape[1:]))  # (N, P, b, ...)
    last = array[num_full_batches * global_batch_size :]
    last_rows = remainder // num_processes
    return np.concatenate(
        [
            full[:, process_id].reshape((num_full_batches * rows, *array.shape[1:])),
            last[process_id * last_rows : (process_id + 1) * last_rows],
        ]
    )


def _from_environment(name: str, value):
    if value is not None:
        return value
    return os.environ.get(ENVIRONMENT_VARIABLES[name]) or None


def _integer(name: str, value) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise ValueError(
        f"Expected {name} (or {ENVIRONMENT_VARIABLES[name]}) to be an integer. "
        f"Received: {name}={value!r}"
    )


def _host_and_port(address) -> tuple[str, int]:
    host, separator, port = str(address).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if isinstance(address, str) and separator and host and port.isdigit():
        if 0 < int(port) < 65536:
            return host, int(port)
    raise ValueError(
        f"Expected coordinator_address as 'host:port' with a port in 1...65535. "
        f"Received: coordinator_address={address!r}"
    )


def _gather_processes(host, port, address, num_processes, timeout):
    """Process 0: waits until the other processes have connected, then lets them all go."""
    deadline = time.monotonic() + timeout
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = socket.create_server((host, port), family=family)
    except OSError as error:
        raise ConnectionError(
            f"Could not serve the coordinator on coordinator_address={address!r}: {error}"
        ) from error
    peers = {}
    try:
        with server:
            while len(peers) < num_processes - 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = sorted(set(range(1, num_processes)) - set(peers))
                    raise ConnectionError(
                        f"Processes {missing} of {num_processes} did not connect to the "
                        f"coordinator at {address} within connect_timeout={timeout} s"
                    )
                server.settimeout(remaining)
                try:
                    connection, _ = server.accept()
                    connection.settimeout(max(deadline - time.monotonic(), 0.01))
                    hello = connection.recv(_HELLO.size, socket.MSG_WAITALL)
                except OSError:  # a timeout, or a peer gone before saying hello
                    continue
                if len(hello) != _HELLO.size:
                    connection.close()
                    continue
                peer_id, peer_num_processes = _HELLO.unpack(hello)
                if peer_num_processes != num_processes or not 0 < peer_id < num_processes:
                    connection.close()
                    raise ValueError(
                        f"Expected every process to have num_processes={num_processes} and a "
                        f"process_id in 1...{num_processes - 1} besides the coordinator. "
                        f"Received: num_processes={peer_num_processes}, process_id={peer_id}"
                    )
                if peer_id in peers:
                    connection.close()
                    raise ValueError(
                        f"Expected a unique process_id per process. Received: process_id="
                        f"{peer_id} twice"
                    )
                peers[peer_id] = connection
            for connection in peers.values():
                connection.sendall(_GO)
            # The peers hang up first, so this side keeps no TIME_WAIT socket on the port that
            # the coordinator service is about to bind.
            for connection in peers.values():
                connection.settimeout(5.0)
                try:
                    connection.recv(1)
                except OSError:
                    pass
    finally:
        for connection in peers.values():
            connection.close()


def _reach_coordinator(host, port, address, num_processes, process_id, timeout):
    """Processes 1 ... P-1: connect to process 0, retrying, and wait for every process."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConnectionError(
                f"Could not reach the coordinator at {address} (process 0) within "
                f"connect_timeout={timeout} s"
            )
        try:
            connection = socket.create_connection((host, port), timeout=min(remaining, 2.0))
        except OSError:  # not listening yet: process 0 may start later
            time.sleep(min(0.25, max(deadline - time.monotonic(), 0.0)))
            continue
        with connection:
            try:
                connection.sendall(_HELLO.pack(process_id, num_processes))
                connection.settimeout(max(deadline - time.monotonic(), 0.01))
                answer = connection.recv(1)
            except OSError as error:
                raise ConnectionError(
                    f"The coordinator at {address} did not gather all {num_processes} processes "
                    f"within connect_timeout={timeout} s ({error or 'timed out'})"
                ) from error
        if answer == _GO:
            return
        raise ConnectionError(
            f"The coordinator at {address} closed the connection before every process arrived "
            f"(see process 0's error)"
        )
