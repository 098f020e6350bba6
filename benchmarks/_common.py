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


def steps_benchmark_main(script: str, description: str, run) -> None:
    """The command line of a benchmark timing ``run(steps, repeats)`` on one or every backend.

    ``--backend NAME`` (or ``KERAS_BACKEND``) measures in this process and prints one JSON
    object; ``--all`` runs ``script`` once per backend in fresh processes and prints the list.
    """
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=BACKENDS)
    parser.add_argument("--all", action="store_true", help="every backend, one process each")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    if arguments.all:
        arguments_list = ["--steps", str(arguments.steps), "--repeats", str(arguments.repeats)]
        outputs = [run_in_subprocess(script, backend, arguments_list) for backend in BACKENDS]
        print(json.dumps(outputs, indent=2))
        return
    backend = arguments.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "torch":
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
    print(json.dumps(run(arguments.steps, arguments.repeats)))
