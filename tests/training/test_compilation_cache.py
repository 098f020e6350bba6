"""enable_compilation_cache: on JAX a second process loads the compiled program from disk."""

import os
import subprocess
import sys
import textwrap

import keras
import pytest

from dlkit.training import enable_compilation_cache

# A fresh process (the cache is process-wide state) compiles the fused training steps of a
# small network and reports whether XLA's persistent cache served the program.
_CHILD = textwrap.dedent(
    """
    import logging, sys
    import keras, numpy as np
    from dlkit.training import compile_train_steps, enable_compilation_cache

    hits = []

    class Hits(logging.Handler):
        def emit(self, record):
            if "Persistent compilation cache hit" in record.getMessage():
                hits.append(record.getMessage())

    logging.getLogger("jax._src.compiler").addHandler(Hits())
    logging.getLogger("jax._src.compiler").setLevel(logging.DEBUG)
    print("directory", enable_compilation_cache(sys.argv[1], min_compile_seconds=0))
    keras.utils.set_random_seed(int(sys.argv[2]))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.ones((3, 5, 4), "float32")
    loss = compile_train_steps(model)(x, np.zeros((3, 5, 1), "float32"))
    print("loss", float(loss["loss"]))
    print("hits", len(hits))
    """
)


def _run_child(directory, seed):
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(directory), str(seed)],
        env={**os.environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in completed.stdout.splitlines() if " " in line)
    return lines


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX keeps the persistent cache")
def test_second_process_loads_compiled_steps_from_disk(tmp_path):
    cache = tmp_path / "cache"
    first = _run_child(cache, seed=0)
    assert first["directory"] == str(cache)
    assert first["hits"] == "0"
    assert any(cache.iterdir())  # programs were written

    # Other weights (another seed), same shapes: the same programs, served from disk.
    second = _run_child(cache, seed=1)
    assert int(second["hits"]) >= 1
    assert float(second["loss"]) != float(first["loss"])


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the other backends keep no cache")
def test_other_backends_keep_no_cache(tmp_path):
    assert enable_compilation_cache(tmp_path / "cache") is None
    assert not (tmp_path / "cache").exists()


def test_negative_threshold_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"min_compile_seconds >= 0.*-1"):
        enable_compilation_cache(tmp_path, min_compile_seconds=-1)
