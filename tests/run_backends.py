"""Runs the whole test suite once per Keras backend, one process each, and summarises.

Usage: ``python tests/run_backends.py [--backends tensorflow,jax,torch] [--jobs N] [PYTEST ...]``

With ``--jobs 2`` (the default) two backends run at the same time, the longest (JAX) first:
each process spends much of its time in single-threaded work (tracing, compiling, Python), so
two of them share a 2-core machine well. Each backend's output is printed when it finishes.

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
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = Path(__file__).resolve().parent.parent


def run_backend(backend: str, pytest_args: list[str], capture: bool = False) -> dict:
    """Runs pytest under ``KERAS_BACKEND=backend`` and returns its counts and exit status.

    With `capture`, the output is returned as ``counts["output"]`` instead of streamed.
    """
    with tempfile.TemporaryDirectory() as directory:
        report = Path(directory) / "report.xml"
        environment = dict(os.environ, KERAS_BACKEND=backend, OMP_NUM_THREADS="1")
        command = [
            sys.executable,
            "-m",
            "pytest",
            f"--junitxml={report}",
            f"--basetemp={Path(directory) / 'tmp'}",
            *pytest_args,
        ]
        header = f"\n===== {backend}: {' '.join(command[1:])}"
        start = time.perf_counter()
        if capture:
            completed = subprocess.run(
                command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            status, output = completed.returncode, header + "\n" + completed.stdout.decode()
        else:
            print(header, flush=True)
            status, output = subprocess.call(command, cwd=ROOT, env=environment), ""
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        if report.exists():
            for suite in ElementTree.parse(report).getroot().iter("testsuite"):
                for key in counts:
                    counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["status"] = status
    counts["seconds"] = time.perf_counter() - start
    counts["output"] = output
    return counts


def run_all(backends: list[str], pytest_args: list[str], jobs: int) -> dict:
    """Runs every backend, `jobs` at a time (JAX, the longest, first); returns their counts."""
    if jobs == 1 or len(backends) == 1:
        return {backend: run_backend(backend, pytest_args) for backend in backends}
    order = sorted(backends, key=lambda name: name != "jax")
    results = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_backend, name, pytest_args, True): name for name in order}
        for future in as_completed(futures):
            counts = future.result()
            print(counts["output"], flush=True)
            results[futures[future]] = counts
    return {backend: results[backend] for backend in backends}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--jobs", type=int, default=2, help="backends run at the same time")
    arguments, pytest_args = parser.parse_known_args(argv)
    if arguments.jobs < 1:
        parser.error(f"--jobs must be >= 1; received {arguments.jobs}")
    backends = [name.strip() for name in arguments.backends.split(",") if name.strip()]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    results = run_all(backends, pytest_args, arguments.jobs)

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
