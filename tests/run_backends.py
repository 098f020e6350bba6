"""Runs the whole test suite once per Keras backend, one process each, and summarises.

Usage: ``python tests/run_backends.py [--backends tensorflow,jax,torch] [PYTEST ARGS ...]``

Fails (exit status 1) if any backend has a failing test, an error, a crash or no test at all
(pytest's exit status 5), so a suite that silently collects nothing cannot pass.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = Path(__file__).resolve().parent.parent


def run_backend(backend: str, pytest_args: list[str]) -> dict:
    """Runs pytest under ``KERAS_BACKEND=backend`` and returns its counts and exit status."""
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "report.xml"
        environment = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1")
        command = [sys.executable, "-m", "pytest", f"--junitxml={report}", *pytest_args]
        print(f"\n===== {backend}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        status = subprocess.call(command, cwd=ROOT, env=environment)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if report.exists():
            for suite in ElementTree.parse(report).getroot().iter("testsuite"):
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["status"] = status
    counts["seconds"] = time.perf_counter() - start
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    arguments, pytest_args = parser.parse_known_args(argv)
    backends = [name.strip() for name in arguments.backends.split(",") if name.strip()]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    results = {backend: run_backend(backend, pytest_args) for backend in backends}

    print("\n===== summary per backend")
    failed_backends = []
    for backend, counts in results.items():
        problem = ""
        if counts["status"] == 5 or counts["passed"] == 0:
            problem = "  <- no test ran"
        elif counts["status"] != 0:
            problem = f"  <- pytest exit status {counts['status']}"
        if problem:
            failed_backends.append(backend)
        failed = counts["failures"] + counts["errors"]
        print(
            f"{backend:>10}: {counts['passed']} passed, {failed} failed, "
            f"{counts['skipped']} skipped in {counts['seconds']:.0f} s{problem}"
        )
    passed = sum(counts["passed"] for counts in results.values())
    failed = sum(counts["failures"] + counts["errors"] for counts in results.values())
    skipped = sum(counts["skipped"] for counts in results.values())
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    if failed_backends:
        print(f"FAILED backends: {', '.join(failed_backends)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
