"""What every benchmark script shares: the backends and running one of them in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def run_in_subprocess(script: str, backend: str, arguments: list[str]) -> dict:
    """Runs ``script --backend backend ARGUMENTS`` in a fresh process; returns its last JSON line.

    The backend must be chosen before Keras is first imported, hence one process per backend;
    torch is pinned to one thread as in the tests.
    """
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if backend == "torch":
        environment["OMP_NUM_THREADS"] = "1"
    completed = subprocess.run(
        [sys.executable, script, "--backend", backend, *arguments],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        return {"backend": backend, "error": completed.stderr.strip().splitlines()[-20:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])
