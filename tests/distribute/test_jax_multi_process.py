"""DataParallel across two JAX processes on 127.0.0.1 (jax.distributed, gloo CPU collectives).

The training tests start two worker processes that share a global batch of 32 rows (each
feeding its 16-row share) and one single-process reference, all at once; the workers must log
the reference's losses, reach its weights, and end with identical weights. The failure test
starts processes whose coordinator, or peer, never appears.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="jax.distributed is the JAX backend's engine"
)

SCRIPT = Path(__file__).with_name("multi_process_fit.py")
TIMEOUT = 120  # seconds per group of processes; a run takes about 20 s on two cores


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_together(environments, role):
    """Runs the script once per environment, all at the same time; returns their outputs."""
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DLKIT_") and key != "XLA_FLAGS"
    }
    base.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), role],
            env={**base, **environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for environment in environments
    ]
    outputs = []
    try:
        for process in processes:
            remaining = max(TIMEOUT - (time.monotonic() - started), 1)
            stdout, stderr = process.communicate(timeout=remaining)
            outputs.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return outputs, time.monotonic() - started


def parse_result(returncode, stdout, stderr):
    assert returncode == 0, stderr[-3000:]
    (line,) = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])


def test_local_share_takes_each_process_part_of_every_global_batch():
    from dlkit.distribute._jax import local_share

    data = np.arange(22 * 2).reshape(22, 2)  # 5 global batches of 4 rows and one of 2
    shares = [local_share(data, 4, num_processes=2, process_id=p) for p in range(2)]
    np.testing.assert_array_equal(shares[0][:, 0], [0, 2, 8, 10, 16, 18, 24, 26, 32, 34, 40])
    np.testing.assert_array_equal(shares[1][:, 0], [4, 6, 12, 14, 20, 22, 28, 30, 36, 38, 42])
    # Batch i of every share, concatenated in process order, is global batch i.
    for step in range(6):
        rows = 2 if step < 5 else 1
        batch = np.concatenate([share[step * 2 : step * 2 + rows] for share in shares])
        np.testing.assert_array_equal(batch, data[step * 4 : step * 4 + 2 * rows])


def test_local_share_rejects_batches_that_do_not_split_evenly():
    from dlkit.distribute._jax import local_share

    with pytest.raises(ValueError, match="global_batch_size=5"):
        local_share(np.zeros(10), 5, num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="last global batch"):
        local_share(np.zeros(9), 4, num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="process_id=2"):
        local_share(np.zeros(8), 4, num_processes=2, process_id=2)


def test_initialize_validates_its_arguments(monkeypatch):
    from dlkit.distribute import _jax as distribute_jax

    for name in distribute_jax.ENVIRONMENT_VARIABLES.values():
        monkeypatch.delenv(name, raising=False)
    assert distribute_jax.initialize() is False
    assert distribute_jax.initialize(num_processes=1) is False
    with pytest.raises(ValueError, match="num_processes=0"):
        distribute_jax.initialize(num_processes=0)
    with pytest.raises(ValueError, match="coordinator_address=None"):
        distribute_jax.initialize(num_processes=2, process_id=0)
    with pytest.raises(ValueError, match=re.escape("coordinator_address='127.0.0.1'")):
        distribute_jax.initialize("127.0.0.1", num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="process_id=2"):
        distribute_jax.initialize("127.0.0.1:1234", num_processes=2, process_id=2)
    with pytest.raises(ValueError, match="connect_timeout=0"):
        distribute_jax.initialize(connect_timeout=0)
    monkeypatch.setenv("DLKIT_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="DLKIT_NUM_PROCESSES"):
        distribute_jax.initialize()


@pytest.mark.slow
@pytest.mark.parametrize("devices_per_process, closed_gates", [(1, ""), (2, ""), (2, "keras,jax")])
def test_two_processes_train_like_one(devices_per_process, closed_gates):
    """With ``closed_gates``, the workers take the public paths of the private-API gates of
    those packages (the agreed seed, the early-computation check, the alternating model's)."""
    address = f"127.0.0.1:{free_port()}"
    workers = [
        {
            "DLKIT_COORDINATOR_ADDRESS": address,
            "DLKIT_NUM_PROCESSES": "2",
            "DLKIT_PROCESS_ID": str(process_id),
            "DLKIT_TEST_CLOSED_GATES": closed_gates,
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_process}",
        }
        for process_id in range(2)
    ]
    outputs, _ = run_together([{}, *workers], "worker")
    for _, _, stderr in outputs[1:]:
        for feature in ["JAX multi-process seed", "JAX early-computation check"]:
            assert (f"dlkit's {feature} uses private APIs" in stderr) is bool(closed_gates)
    reference, *results = [parse_result(*output) for output in outputs]
    # Every process drew the same number: they agreed on one global seed.
    assert results[0]["draw_after_initialize"] == results[1]["draw_after_initialize"]
    assert reference["num_processes"] == 1 and reference["num_devices"] == 1
    assert reference["initialized_again"] is False
    assert [result["process_id"] for result in results] == [0, 1]
    for result in results:
        assert result["num_processes"] == 2 and result["initialized_again"] is True
        assert result["num_local_devices"] == devices_per_process
        assert result["num_devices"] == 2 * devices_per_process
    for model in ("gan", "regressor"):
        expected = reference[model]
        for result in results:
            history = result[model]["history"]
            assert sorted(history) == sorted(expected["history"])
            for name, values in expected["history"].items():
                np.testing.assert_allclose(history[name], values, rtol=1e-5, err_msg=name)
            for want, got in zip(expected["weights"], result[model]["weights"]):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        # The replicas of the weights are one array: every process reads the same values.
        for first, second in zip(results[0][model]["weights"], results[1][model]["weights"]):
            np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_missing_coordinator_or_peer_fails_in_bounded_time():
    unreachable, lonely = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    processes = [
        # Process 1 of 2 whose coordinator never starts.
        {"DLKIT_COORDINATOR_ADDRESS": unreachable, "DLKIT_PROCESS_ID": "1"},
        # Process 0 of 2 (the coordinator) whose peer never starts.
        {"DLKIT_COORDINATOR_ADDRESS": lonely, "DLKIT_PROCESS_ID": "0"},
    ]
    for environment in processes:
        environment.update(DLKIT_NUM_PROCESSES="2", DLKIT_CONNECT_TIMEOUT="5")
    outputs, elapsed = run_together(processes, "connect")
    assert elapsed < 20
    for (returncode, _, stderr), address in zip(outputs, (unreachable, lonely)):
        assert returncode == 1, stderr[-3000:]
        last_line = stderr.strip().splitlines()[-1]
        assert last_line.startswith("ConnectionError") and address in last_line, last_line
