"""MultiWorkerMirroredStrategy with Keras fit: two worker processes on 127.0.0.1.

The two-worker test runs tests/distribute/multi_worker_fit.py three times at once: as worker 0
and worker 1 of a cluster on free loopback ports, and alone without a strategy. Every run
trains a compiled Keras regressor and ToyGAN (an AlternatingModel) from the same initial
weights on the same global batches (see the script's docstring for how the data is split), so
the workers must end with identical weights and log the losses of the single-process run.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.distribute runs on the tensorflow backend"
)

SCRIPT = Path(__file__).with_name("multi_worker_fit.py")
PROCESS_TIMEOUT = 240  # seconds for the three processes together; they take ~15 s


def reserved_ports(count):
    """Binds `count` free loopback ports (port 0), kept bound, not listening, until closed."""
    sockets = []
    for _ in range(count):
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.bind(("127.0.0.1", 0))
        sockets.append(reserved)
    return sockets


def run_together(arguments, directory):
    """Runs the script once per argument list, all at once; returns their (code, out, err).

    Processes still running when one fails or the time is up are killed (code -9).
    """
    environment = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    environment.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    runs = []
    try:
        for index, argument_list in enumerate(arguments):
            stdout = open(directory / f"{index}.out", "w+")
            stderr = open(directory / f"{index}.err", "w+")
            process = subprocess.Popen(
                [sys.executable, str(SCRIPT), *argument_list],
                stdout=stdout,
                stderr=stderr,
                env=environment,
            )
            runs.append((process, stdout, stderr))
        # Until all are done, the time is up, or one fails (its peer would then wait for it).
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while time.monotonic() < deadline:
            codes = [process.poll() for process, _, _ in runs]
            if all(code is not None for code in codes) or any(codes):
                break
            time.sleep(0.2)
    finally:
        for process, _, _ in runs:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    results = []
    for process, stdout, stderr in runs:
        stdout.seek(0)
        stderr.seek(0)
        results.append((process.returncode, stdout.read(), stderr.read()))
        stdout.close()
        stderr.close()
    return results


def parse_result(code, out, err, name):
    assert code == 0, f"{name} exited with {code}:\n{err[-3000:]}"
    (line,) = [line for line in out.splitlines() if line.startswith("RESULT ")]
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow
def test_two_workers_train_like_one_process(tmp_path):
    sockets = reserved_ports(2)
    addresses = [f"127.0.0.1:{reserved.getsockname()[1]}" for reserved in sockets]
    for reserved in sockets:  # freed just before the workers bind them
        reserved.close()
    outputs = run_together(
        [["worker", "0", *addresses], ["worker", "1", *addresses], ["single"]], tmp_path
    )
    worker_0, worker_1, single = (
        parse_result(*output, name)
        for output, name in zip(outputs, ("worker 0", "worker 1", "single process"))
    )
    assert worker_0["num_replicas"] == worker_1["num_replicas"] == 2
    assert single["num_replicas"] == 1
    for model in ("plain", "gan"):
        expected = single[model]
        assert set(worker_0[model]["history"]) == set(expected["history"])
        for name, losses in expected["history"].items():
            assert worker_0[model]["history"][name] == worker_1[model]["history"][name]
            np.testing.assert_allclose(worker_0[model]["history"][name], losses, rtol=1e-5)
        for weight_0, weight_1, weight in zip(
            worker_0[model]["weights"], worker_1[model]["weights"], expected["weights"]
        ):
            np.testing.assert_array_equal(weight_0, weight_1)
            np.testing.assert_allclose(weight_0, weight, rtol=1e-4, atol=1e-5)
    # The regressor learnt: training is compared, not two copies of an idle model.
    assert worker_0["plain"]["history"]["loss"][-1] < worker_0["plain"]["history"]["loss"][0]


def test_worker_whose_peer_never_starts_fails_in_bounded_time(monkeypatch):
    from dlkit.distribute import _tensorflow

    # The peer's port stays bound but never listens: connections to it are refused.
    sockets = reserved_ports(2)
    peer, own = (f"127.0.0.1:{reserved.getsockname()[1]}" for reserved in sockets)
    sockets[1].close()  # this worker's own port, where it listens while waiting
    config = {"cluster": {"worker": [peer, own]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    start = time.monotonic()
    try:
        with pytest.raises(ConnectionError, match=f"{peer}.*connect_timeout=3"):
            _tensorflow.make_strategy(connect_timeout=3)
    finally:
        sockets[0].close()
    assert 3 <= time.monotonic() - start < 10


def test_waiting_ends_when_a_late_peer_starts_listening():
    import threading

    from dlkit.distribute import _tensorflow

    (reserved,) = reserved_ports(1)
    port = reserved.getsockname()[1]
    timer = threading.Timer(0.5, reserved.listen)
    timer.start()
    start = time.monotonic()
    try:
        _tensorflow._wait_until_reachable([("127.0.0.1", port)], connect_timeout=10)
    finally:
        timer.join()
        reserved.close()
    assert 0.4 < time.monotonic() - start < 5


@pytest.mark.parametrize(
    "tf_config, message",
    [
        ("{not json", "hold JSON"),
        ('["worker"]', "JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "'cluster'"),
        ('{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}}', "'task'"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
            "index within it",
        ),
        (
            '{"cluster": {"worker": ["127.0.0.1", "127.0.0.1:2"]}, '
            '"task": {"type": "worker", "index": 0}}',
            "'host:port'",
        ),
    ],
)
def test_malformed_tf_config_is_rejected_with_its_value(monkeypatch, tf_config, message):
    from dlkit.distribute import _tensorflow

    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message) as error:
        _tensorflow.make_strategy()
    assert "TF_CONFIG=" in str(error.value) and tf_config in str(error.value)


def test_bad_arguments_are_rejected(monkeypatch):
    from dlkit.distribute import _tensorflow

    with pytest.raises(ValueError, match="connect_timeout=0"):
        _tensorflow.make_strategy(connect_timeout=0)
    with pytest.raises(TypeError, match="devices='cpu:0'"):
        _tensorflow.make_strategy("cpu:0")
    with pytest.raises(ValueError, match=r"devices=\[\]"):
        _tensorflow.make_strategy([])
    config = {
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 0},
    }
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    with pytest.raises(ValueError, match="devices=None with several workers"):
        _tensorflow.make_strategy(["cpu:0"])


def test_single_worker_gets_a_mirrored_strategy(monkeypatch):
    import tensorflow as tf

    from dlkit.distribute import _tensorflow

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert isinstance(_tensorflow.make_strategy(), tf.distribute.MirroredStrategy)
    config = {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    strategy = _tensorflow.make_strategy(["cpu:0"])
    assert type(strategy) is tf.distribute.MirroredStrategy
    assert strategy.num_replicas_in_sync == 1


def test_compat_layer_installs_once_and_only_on_broken_versions(monkeypatch):
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    from dlkit.distribute import _tensorflow

    # Restored after the test, so the rest of the session runs Keras' own functions.
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    original_reduce = trainer.reduce_per_replica
    monkeypatch.setattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build", original_build)
    monkeypatch.setattr(trainer, "reduce_per_replica", original_reduce)

    monkeypatch.setattr(keras, "version", lambda: "3.16.0")
    assert _tensorflow.install_multi_worker_compat() is False
    assert trainer.reduce_per_replica is original_reduce

    monkeypatch.setattr(keras, "version", lambda: "3.15.1")
    assert _tensorflow.install_multi_worker_compat() is True
    patched_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    patched_reduce = trainer.reduce_per_replica
    assert patched_build is not original_build and patched_reduce is not original_reduce
    assert _tensorflow.install_multi_worker_compat() is True
    assert trainer.TensorFlowTrainer._maybe_symbolic_build is patched_build
    assert trainer.reduce_per_replica is patched_reduce

    # Outside a multi-worker strategy the patched reduction is Keras' own.
    logs = {"loss": tf.constant(2.0)}
    reduced = patched_reduce(logs, tf.distribute.get_strategy(), "auto")
    assert float(reduced["loss"]) == 2.0
