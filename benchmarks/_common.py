"""What every benchmark script shares: the backends, one core per measured process, running a
backend in a fresh process and storing a run's results under ``benchmarks/results/``."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# One thread for every library a benchmark process may load, set before any of them is
# imported: OpenMP, MKL and OpenBLAS (NumPy, PyTorch), TensorFlow's intra- and inter-op pools
# (read again by `pin_library_threads`) and XLA's CPU backend (JAX).
ONE_THREAD_ENVIRONMENT = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
# The environment variable that chooses the core (default: the lowest one this process may run
# on); the parent passes its choice to every child, so that all runners share one core.
CORE_VARIABLE = "DLKIT_BENCHMARK_CORE"
_PINNING: dict = {}


def one_core_environment(environment: dict | None = None) -> dict:
    """``environment`` (default ``os.environ``) with the one-thread settings and the core."""
    environment = dict(os.environ if environment is None else environment)
    environment.update(ONE_THREAD_ENVIRONMENT)
    environment.setdefault(CORE_VARIABLE, str(min(os.sched_getaffinity(0))))
    return environment


def pin_to_one_core() -> dict:
    """Runs this process on one core with one thread per library; returns what was set.

    Call it before TensorFlow, JAX, PyTorch or Keras is imported: the thread settings of the
    environment are read at import. It sets them, binds the process (and every thread it starts
    later) to one core with ``os.sched_setaffinity``, and, for the libraries already importable,
    sets their own thread counts (`pin_library_threads`).
    """
    os.environ.update(one_core_environment())
    core = int(os.environ[CORE_VARIABLE])
    os.sched_setaffinity(0, {core})
    _PINNING.update(
        core=core,
        affinity=sorted(os.sched_getaffinity(0)),
        environment={name: os.environ[name] for name in ONE_THREAD_ENVIRONMENT},
    )
    return pinning()


def pin_library_threads(library: str) -> None:
    """Sets ``library``'s own thread counts to one (tensorflow, torch; jax reads XLA_FLAGS).

    TensorFlow's must be set before its first operation runs, hence before Keras builds
    anything on it.
    """
    if library == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        _PINNING["tensorflow_threads"] = [
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        ]
    elif library == "torch":
        import torch

        torch.set_num_threads(1)
        _PINNING["torch_threads"] = torch.get_num_threads()


def pinning() -> dict:
    """What `pin_to_one_core` and `pin_library_threads` set in this process, for the JSON."""
    return dict(_PINNING)


def pin_backend(backend: str) -> dict:
    """`pin_to_one_core`, then the thread counts of ``backend``'s library (before Keras)."""
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pin_to_one_core()
    pin_library_threads(backend)
    return pinning()


def child_json(command: list[str], environment: dict, identity: dict, tail: int = 10) -> dict:
    """Runs ``command`` and returns the JSON object of its last output line; if it fails,
    ``identity`` with the last ``tail`` lines of its standard error under ``error``."""
    completed = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        return {**identity, "error": completed.stderr.strip().splitlines()[-tail:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_in_subprocess(script: str, backend: str, arguments: list[str]) -> dict:
    """Runs ``script --backend backend ARGUMENTS`` in a fresh process; returns its last JSON line.

    The backend must be chosen before Keras is first imported, hence one process per backend;
    the child pins itself to the parent's core (`pin_backend`).
    """
    environment = {
        **one_core_environment(),
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    command = [sys.executable, script, "--backend", backend, *arguments]
    return child_json(command, environment, {"backend": backend}, tail=20)


def _machine() -> dict:
    processor = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line]
        processor = names[0] if names else processor
    except OSError:
        pass
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    return {
        "processor": processor,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "system": platform.platform(),
        "gpu": None,
    }


VERSIONED = (
    "keras",
    "tensorflow",
    "jax",
    "jaxlib",
    "torch",
    "optax",
    "numpy",
    "gymnasium",
    "stable-baselines3",
    "sb3-contrib",
)


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class ResultRecorder:
    """Collects what a stored result needs besides the figures: command, date, machine,
    versions and the load average before and after the run.

    Example:

        recorder = ResultRecorder("acting_latency", sys.argv, vars(args))
        results = measure()
        recorder.save(results, path)   # benchmarks/results/acting_latency.json by default
    """

    def __init__(self, benchmark: str, argv: list[str], settings: dict):
        self.benchmark = benchmark
        self.command = " ".join(["python", f"benchmarks/{benchmark}.py", *argv[1:]])
        self.settings = settings
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_before = [round(value, 2) for value in os.getloadavg()]

    def record(self, results) -> dict:
        return {
            "benchmark": self.benchmark,
            "command": self.command,
            "date": self.started.strftime("%Y-%m-%d"),
            "started_utc": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "minutes": round(
                (datetime.datetime.now(datetime.timezone.utc) - self.started).total_seconds() / 60,
                1,
            ),
            "machine": _machine(),
            "versions": _versions(),
            "load_average": {
                "before": self.load_before,
                "after": [round(value, 2) for value in os.getloadavg()],
            },
            "pinning": {
                "one_core": True,
                "environment": ONE_THREAD_ENVIRONMENT,
                "library_threads": "tensorflow intra/inter-op 1, torch.set_num_threads(1)",
            },
            "settings": self.settings,
            "results": results,
        }

    def save(self, results, path: str | None = None) -> str:
        """Writes the record of ``results`` to ``path`` (default
        ``benchmarks/results/<benchmark>.json``) and returns the path."""
        path = path or os.path.join(RESULTS_DIRECTORY, f"{self.benchmark}.json")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as file:
            json.dump(self.record(results), file, indent=1)
            file.write("\n")
        return path


def add_save_argument(parser) -> None:
    """``--save [PATH]``: store the run under benchmarks/results/ (or PATH) with its metadata."""
    parser.add_argument(
        "--save",
        nargs="?",
        const="",
        default=None,
        metavar="PATH",
        help="Store the results with the machine, versions, date, command, settings and load "
        "average as JSON (default path: benchmarks/results/<benchmark>.json).",
    )


def add_backend_arguments(parser) -> None:
    """``--backend NAME`` (default ``$KERAS_BACKEND``, else tensorflow) and ``--all``."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND", "tensorflow"),
        help="Keras backend to measure (default: $KERAS_BACKEND or tensorflow).",
    )
    parser.add_argument("--all", action="store_true", help="Measure every backend in turn.")


def run_per_backend(script: str, args, arguments: list[str], settings: dict, measure) -> None:
    """Measures one backend (``args.backend``: ``measure()`` in this process, pinned by
    `run_process`, one JSON line) or, with ``args.all``, every backend in a fresh process of
    ``script`` given ``arguments`` (a JSON list); prints the result and stores it with
    ``settings`` when ``args.save`` asks."""
    name = os.path.splitext(os.path.basename(script))[0]
    recorder = ResultRecorder(name, sys.argv, settings)
    if args.all:
        results = [run_in_subprocess(script, backend, arguments) for backend in BACKENDS]
        print(json.dumps(results, indent=2))
    else:
        results = run_process(args.backend, measure)
        print(json.dumps(results))  # one line: the parent of --all reads the last one
    if args.save is not None:
        recorder.save(results, args.save or None)


def steps_benchmark_main(script: str, description: str, run) -> None:
    """The command line of a benchmark timing ``run(steps, repeats)`` on one or every backend.

    ``--backend NAME`` (or ``KERAS_BACKEND``) measures in this process and prints one JSON
    object; ``--all`` runs ``script`` once per backend in fresh processes and prints the list.
    Every measured process runs on one core (`pin_backend`).
    """
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=BACKENDS)
    parser.add_argument("--all", action="store_true", help="every backend, one process each")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    add_save_argument(parser)
    arguments = parser.parse_args()
    name = os.path.splitext(os.path.basename(script))[0]
    recorder = ResultRecorder(
        name, sys.argv, {"steps": arguments.steps, "repeats": arguments.repeats}
    )
    if arguments.all:
        arguments_list = ["--steps", str(arguments.steps), "--repeats", str(arguments.repeats)]
        outputs = [run_in_subprocess(script, backend, arguments_list) for backend in BACKENDS]
        print(json.dumps(outputs, indent=2))
    else:
        backend = arguments.backend or os.environ.get("KERAS_BACKEND", "tensorflow")
        outputs = run_process(backend, lambda: run(arguments.steps, arguments.repeats))
        print(json.dumps(outputs))  # one line: the parent of --all reads the last one
    if arguments.save is not None:
        recorder.save(outputs, arguments.save or None)


def run_process(backend: str, measure) -> dict:
    """Pins this process (`pin_backend`), runs ``measure()`` and adds the pinning and the
    process CPU seconds of the whole measurement to its result."""
    pin_backend(backend)
    return _timed(measure)


def run_on_one_core(measure) -> dict:
    """`run_process` for measurements without a Keras backend (NumPy only): pins this
    process to one core (`pin_to_one_core`) and times ``measure()`` the same way."""
    pin_to_one_core()
    return _timed(measure)


def _timed(measure) -> dict:
    import time

    wall, cpu = time.perf_counter(), time.process_time()
    result = measure()
    return {
        **result,
        "process_wall_s": round(time.perf_counter() - wall, 2),
        "process_cpu_s": round(time.process_time() - cpu, 2),
        # After the measurement: libraries it imported may have set their thread counts.
        "pinning": pinning(),
    }
