"""AlternatingModel under tf.distribute.MirroredStrategy and keras.distribution.DataParallel.

Each run is a fresh process (the number of devices is fixed when the backend starts): it
trains the same GAN on one device and on two, and the logged losses and weights must agree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

SCRIPT = Path(__file__).with_name("distributed_fit.py")
ENGINES = {"tensorflow": "mirrored", "jax": "data_parallel"}


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() not in ENGINES, reason="no multi-device engine on this backend"
)
def test_two_devices_log_the_same_losses_and_reach_the_same_weights():
    backend = keras.backend.backend()
    environment = dict(
        os.environ,
        KERAS_BACKEND=backend,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), ENGINES[backend]],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(line[len("RESULT ") :])
    assert result["num_devices"] == 2
    single, distributed = result["single"], result["distributed"]
    for name in ("discriminator_loss", "generator_loss"):
        np.testing.assert_allclose(distributed["history"][name], single["history"][name], rtol=1e-5)
    for expected, received in zip(single["weights"], distributed["weights"]):
        np.testing.assert_allclose(received, expected, rtol=1e-4, atol=1e-5)
