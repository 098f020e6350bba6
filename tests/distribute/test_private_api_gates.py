"""The version gates of ``dlkit.distribute``'s private APIs, closed and open (one process)."""

import importlib.util
import types
import warnings
from pathlib import Path

import keras
import pytest

BACKEND = keras.backend.backend()


def _training_fixtures():
    """The training tests' conftest (its ``version_gates`` fixture), loaded by path: two
    modules named ``conftest`` in these package-less test folders would collide."""
    path = Path(__file__).parents[1] / "training" / "conftest.py"
    spec = importlib.util.spec_from_file_location("dlkit_training_test_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


version_gates = _training_fixtures().version_gates


def gate_warnings(version_gates, run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    return result, version_gates.warnings(caught)


def test_early_computation_check_either_way(version_gates):
    jax = pytest.importorskip("jax")
    from dlkit.distribute import _jax

    jax.numpy.zeros(1).block_until_ready()  # JAX has computed: its backends exist
    assert _jax._backends_initialized() is True  # jax._src.xla_bridge answers
    version_gates.close("jax")
    answers, [warning] = gate_warnings(
        version_gates, lambda: [_jax._backends_initialized() for _ in range(2)]
    )
    # The check is skipped: jax.distributed.initialize refuses later instead.
    assert answers == [False, False]
    assert "JAX early-computation check" in str(warning.message)


def test_multi_process_seed_either_way(version_gates, monkeypatch):
    jax = pytest.importorskip("jax")
    from keras.src.backend.jax import distribution_lib

    from dlkit.distribute import _jax

    calls, seeds = [], []
    monkeypatch.setattr(distribution_lib, "initialize_rng", lambda: calls.append("private"))
    monkeypatch.setattr(keras.utils, "set_random_seed", seeds.append)
    monkeypatch.setattr(_jax, "random", types.SimpleNamespace(randint=lambda low, high: 7))
    _jax._agree_on_random_seed()
    assert calls == ["private"] and seeds == []
    version_gates.close("keras")
    _, [warning] = gate_warnings(version_gates, _jax._agree_on_random_seed)
    assert "JAX multi-process seed" in str(warning.message)
    # One draw per local CPU device of each process (here one process), summed as Keras does.
    assert calls == ["private"] and seeds == [7 * jax.local_device_count("cpu")]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute runs on tensorflow")
@pytest.mark.parametrize("workers", [1, 2])
def test_multi_worker_check_either_way(version_gates, workers):
    import tensorflow as tf

    from dlkit.distribute import _tensorflow

    private_calls = []

    class Strategy(tf.distribute.MultiWorkerMirroredStrategy):
        """A strategy of ``workers`` workers, without starting TensorFlow's collectives."""

        def __init__(self):
            pass

        @property
        def extended(self):
            private_calls.append(workers)
            return types.SimpleNamespace(_in_multi_worker_mode=lambda: workers > 1)

        @property
        def cluster_resolver(self):
            addresses = [f"127.0.0.1:{2222 + i}" for i in range(workers)]
            spec = tf.train.ClusterSpec({"chief": addresses[:1], "worker": addresses[1:]})
            return types.SimpleNamespace(cluster_spec=lambda: spec)

    strategy = Strategy()
    assert _tensorflow._in_multi_worker_mode(strategy) is (workers > 1)
    assert private_calls == [workers]
    version_gates.close("tensorflow")
    answer, [warning] = gate_warnings(
        version_gates, lambda: _tensorflow._in_multi_worker_mode(strategy)
    )
    assert answer is (workers > 1) and private_calls == [workers]  # the cluster resolver's
    assert "TensorFlow multi-worker check" in str(warning.message)
    assert not _tensorflow._in_multi_worker_mode(tf.distribute.get_strategy())
