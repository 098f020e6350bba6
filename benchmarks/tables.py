"""The benchmark tables of the docs, generated from the stored results in benchmarks/results/.

Every table of speed figures in benchmarks/README.md, README.md and docs/pages lives between
``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; this script rewrites those regions from the
JSON that the benchmark scripts store with ``--save`` (``TABLES`` maps each NAME to its
result file and renderer). Each table ends with the line that says which machine, versions,
date, load and command gave it. ``tests/test_benchmark_tables.py`` fails when a file and the
stored results disagree.

Usage:

    python benchmarks/tables.py            # rewrite the tables in place
    python benchmarks/tables.py --check    # exit 1, naming the files, when a table is stale
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
# The files whose marked regions are generated.
DOCUMENTS = (
    "benchmarks/README.md",
    "docs/pages/training.md",
    "docs/pages/rl/buffers.md",
    "docs/pages/rl/environments.md",
)
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
_REGION = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table:\2 -->)", re.DOTALL)


def load(name: str) -> dict:
    """The stored record ``benchmarks/results/NAME.json``."""
    with open(os.path.join(RESULTS, f"{name}.json")) as file:
        return {**json.load(file), "file": f"benchmarks/results/{name}.json"}


def _number(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _rate(value: float) -> str:
    """Transitions per second as 1.05 M, 132 k."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.0f} k"
    return f"{value:.0f}"


def _table(header: list[str], align: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def provenance(record: dict) -> str:
    """The sentence under a table: when, where, with what, under which load, by which command."""
    machine = record["machine"]
    versions = record["versions"]
    installed = ", ".join(
        f"{name} {version}"
        for name, version in versions.items()
        if version and name not in ("python", "jaxlib")
    )
    load = record["load_average"]
    return (
        f"Measured on {record['date']} on {machine['cores']} CPU cores ({machine['processor']}, "
        f"no GPU), every measured process pinned to one core with one thread per library; "
        f"Python {versions['python']}, {installed}. Load average (1 min) "
        f"{load['before'][0]:.1f} before and {load['after'][0]:.1f} after: other jobs shared the "
        f"machine and slowed the wall clock far more than the CPU time (CPU figures, where "
        f"shown, are the steadier ones). Command: "
        f"`{record['command']}`, stored in `{record['file']}`.\n"
    )


def _per_backend(record: dict) -> list[dict]:
    results = record["results"]
    return results if isinstance(results, list) else [results]


def training_overhead() -> str:
    record = load("training_overhead")
    rows = []
    for result in _per_backend(record):
        rows.append(
            [
                BACKEND_NAMES[result["backend"]],
                _number(result["dlkit_steps_per_s"]),
                _number(result["handwritten_steps_per_s"]),
                f"{result['overhead_ratio']:.2f}",
                f"{result['dlkit_cpu_ms_per_step']:.2f} / "
                f"{result['handwritten_cpu_ms_per_step']:.2f}",
                f"{result['cpu_overhead_ratio']:.2f}",
                f"{result['target_ratio']:.2f}",
                "yes" if result["meets_target"] else "no",
            ]
        )
    table = _table(
        [
            "backend",
            "dlkit steps/s",
            "hand-written steps/s",
            "wall ratio",
            "CPU ms/step dlkit / hand-written",
            "CPU ratio",
            "target (wall)",
            "met",
        ],
        ["---", "---:", "---:", "---:", "---:", "---:", "---:", ":---:"],
        rows,
    )
    return table + "\n" + provenance(record)


def host_overhead() -> str:
    record = load("host_overhead")
    rows = []
    for result in _per_backend(record):
        rows.append(
            [
                BACKEND_NAMES[result["backend"]],
                _number(result["fused_wall_us_per_step"]),
                _number(result["streaming_wall_us_per_step"]),
                _number(result["handwritten_wall_us_per_step"]),
                _number(result["handwritten_xla_wall_us_per_step"])
                if "handwritten_xla_wall_us_per_step" in result
                else "—",
                f"{result['fused_ratio']:.2f}",
                f"{result['fused_cpu_ratio']:.2f}",
                f"{result['streaming_ratio']:.2f}",
                f"{result['target_ratio']:.2f}",
                "yes" if result["meets_target"] else "no",
            ]
        )
    table = _table(
        [
            "backend",
            "fused µs/step",
            "streaming µs/step",
            "hand-written µs/step",
            "hand-written + XLA µs/step",
            "fused / hand-written",
            "CPU ratio",
            "streaming / hand-written",
            "target (fused)",
            "met",
        ],
        ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", ":---:"],
        rows,
    )
    return table + "\n" + provenance(record)


def training_overhead_fused() -> str:
    fused, streaming = load("training_overhead_fused"), load("training_overhead")
    by_backend = {result["backend"]: result for result in _per_backend(streaming)}
    rows = []
    for result in _per_backend(fused):
        default = by_backend[result["backend"]]
        rows.append(
            [
                BACKEND_NAMES[result["backend"]],
                _number(result["dlkit_steps_per_s"]),
                f"{result['overhead_ratio']:.2f}",
                _number(default["dlkit_steps_per_s"]),
                f"{default['overhead_ratio']:.2f}",
            ]
        )
    table = _table(
        [
            "backend",
            "fused steps/s",
            "fused wall ratio",
            "streaming steps/s (table above)",
            "streaming wall ratio",
        ],
        ["---", "---:", "---:", "---:", "---:"],
        rows,
    )
    return table + "\n" + provenance(fused)


def checkpoints() -> str:
    record = load("checkpoints")
    result = record["results"]
    rows = [
        [
            "save",
            f"{1e3 * result['plain_save_s']:.1f}",
            f"{1e3 * result['verified_save_s']:.1f}",
            f"{result['save_overhead_ratio']:.2f}",
        ],
        [
            "load",
            f"{1e3 * result['plain_load_s']:.1f}",
            f"{1e3 * result['verified_load_s']:.1f}",
            f"{result['load_overhead_ratio']:.2f}",
        ],
    ]
    table = _table(
        ["", "plain ms", "verified ms", "verified / plain"],
        ["---", "---:", "---:", "---:"],
        rows,
    )
    size = result["checkpoint_bytes"] / 2**20
    return (
        table
        + f"\nA checkpoint of {size:.1f} MiB ({result['buffer_transitions']:,} transitions), "
        + f"median of {result['repeats']} runs. "
        + provenance(record)
    )


def acting_latency() -> str:
    record = load("acting_latency")
    rows = [
        [
            BACKEND_NAMES[result["backend"]],
            _number(result["compiled_us"]),
            _number(result["compiled_cpu_us"]),
            _number(result["eager_call_us"]),
            _number(result["predict_us"], 0),
            _number(result["target_us"], 0),
            "yes" if result["meets_target"] else "no",
        ]
        for result in _per_backend(record)
    ]
    table = _table(
        [
            "backend",
            "`compile_inference` µs",
            "its CPU µs",
            "eager `model(x)` µs",
            "`model.predict` µs",
            "target µs",
            "met",
        ],
        ["---", "---:", "---:", "---:", "---:", "---:", ":---:"],
        rows,
    )
    return table + "\n" + provenance(record)


def _backend_table(name: str, leading: list[str], align: list[str], make_rows) -> str:
    """A table with one column per backend: ``leading`` columns, then ``make_rows(by_backend,
    backends)``'s cells, from the stored result ``name``."""
    record = load(name)
    by_backend = {result["backend"]: result for result in _per_backend(record)}
    backends = [backend for backend in BACKEND_NAMES if backend in by_backend]
    header = leading + [BACKEND_NAMES[backend] for backend in backends]
    table = _table(header, align + ["---:"] * len(backends), make_rows(by_backend, backends))
    return table + "\n" + provenance(record)


def layers() -> str:
    def rows(by_backend, backends):
        cases = zip(*(by_backend[backend]["cases"] for backend in backends))
        return [
            [same[0]["case"]]
            + [
                f"{case['dlkit_ms']:.2f} / {case['keras_ms']:.2f} = **{case['ratio']:.2f}** "
                f"(CPU {case['cpu_ratio']:.2f})"
                for case in same
            ]
            for same in cases
        ]

    return _backend_table(
        "layers", ["layer (wall ms per step, dlkit / Keras = ratio; CPU-time ratio)"], ["---"], rows
    )


def sequences() -> str:
    def rows(by_backend, backends):
        cases = zip(*(by_backend[backend]["cases"] for backend in backends))
        table = []
        for same in cases:
            key = "train_steps_per_s" if "train_steps_per_s" in same[0] else "sequences_per_s"
            unit = "steps/s" if key == "train_steps_per_s" else "sequences/s"
            table.append([f"{same[0]['model']} ({unit})"] + [_number(case[key]) for case in same])
        return table

    return _backend_table("sequences", ["model"], ["---"], rows)


def generative() -> str:
    def rows(by_backend, backends):
        first = by_backend[backends[0]]["models"]
        return [
            [name, str(entry["updates_per_step"])]
            + [_number(by_backend[backend]["models"][name]["steps_per_s"]) for backend in backends]
            for name, entry in first.items()
        ]

    return _backend_table("generative", ["model", "updates per step"], ["---", "---:"], rows)


def buffers() -> str:
    record = load("buffers")
    results = record["results"]
    plain, prioritized, deque = (
        results["ReplayBuffer"],
        results["PrioritizedReplayBuffer"],
        results["deque_reference"],
    )

    def cell(entry: dict, key: str) -> str:
        return _rate(entry[key]) if key in entry else "—"

    operations = [
        ("`add`, one environment per call", "add_one_env_per_s"),
        ("`add`, 8 environments per call", "add_8_envs_per_s"),
        ("`sample(64)`", "sample_64_per_s"),
        ("`update_priorities`, 64 indices", "update_priorities_64_per_s"),
    ]
    rows = [
        [label, cell(plain, key), cell(prioritized, key), cell(deque, key)]
        for label, key in operations
    ]
    table = _table(
        ["operation (transitions/s)", "`ReplayBuffer`", "`PrioritizedReplayBuffer`", "deque"],
        ["---", "---:", "---:", "---:"],
        rows,
    )
    return table + "\n" + provenance(record)


def replay_memory() -> str:
    record = load("replay_memory")
    results = record["results"]
    rows = []
    for name, label in (
        ("FrameReplayBuffer", "`FrameReplayBuffer` (each frame once)"),
        ("ReplayBuffer", "`ReplayBuffer`, full uint8 stacks"),
    ):
        entry = results[name]
        rows.append(
            [
                label,
                f"{entry['transitions']:,}",
                f"{_number(entry['nbytes_per_transition'], 0)} / "
                f"{_number(entry['rss_per_transition'], 0)}",
                f"{_number(entry['extrapolated_1m_gib'], 2)} / "
                f"{_number(entry['extrapolated_1m_rss_gib'], 2)}",
                f"{_number(entry['sample_median_us'])} / {_number(entry['sample_median_cpu_us'])}",
                _number(entry["sample_p90_us"]),
                _rate(entry["add_per_s"]),
            ]
        )
    table = _table(
        [
            "buffer",
            "transitions held",
            "bytes per transition: arrays / RSS growth",
            "GiB at 1,000,000 (linear): arrays / RSS",
            "`sample(32)` median µs: wall / CPU",
            "p90 µs",
            "`add`/s",
        ],
        ["---", "---:", "---:", "---:", "---:", "---:", "---:"],
        rows,
    )
    targets, met = results["targets"], results["targets_met"]
    summary = (
        f"{results['memory_ratio']:.2f}× less memory per transition. Targets: ≤ "
        f"{targets['memory_1m_gib']:g} GiB at 1,000,000 transitions: "
        f"{'met' if met['memory'] else 'not met'}; `sample(32)` ≤ {targets['sample_us']:g} µs: "
        f"{'met' if met['sample'] else 'not met'}. Stacks of "
        f"{'×'.join(str(size) for size in results['observation_shape'])} uint8, "
        f"episodes of {results['episode_lengths'][0]:,} to {results['episode_lengths'][1]:,} "
        "steps. "
    )
    return table + "\n" + summary + provenance(record)


# The columns of the vector_envs table: (engine, cores) of each measured configuration.
_VECTOR_ENV_COLUMNS = [
    (("gymnasium-sync", 1), "gymnasium sync"),
    (("gymnasium-async", 1), "gymnasium async"),
    (("envpool", 1), "envpool, 1 thread"),
    (("envpool-raw", 1), "envpool raw, 1 thread"),
    (("gymnasium-async", 2), "gymnasium async, 2 cores"),
    (("envpool", 2), "envpool, 2 threads, 2 cores"),
]


def vector_envs() -> str:
    """Env steps per second (CPU µs per step) of each engine, one row per workload."""
    record = load("vector_envs")
    results = record["results"]
    measured = {
        (r["env_id"], r["num_envs"], r["engine"], r["cores"]): r
        for r in results["configurations"]
        if "error" not in r
    }
    speedups = {
        (r["env_id"], r["num_envs"], r["cores"]): r["speedup"] for r in results["envpool_speedup"]
    }
    workloads = list(dict.fromkeys((r[0], r[1]) for r in measured))
    rows = []
    for env_id, num_envs in workloads:
        row = [f"{env_id}, {num_envs} {'copy' if num_envs == 1 else 'copies'}"]
        for (engine, cores), _ in _VECTOR_ENV_COLUMNS:
            entry = measured.get((env_id, num_envs, engine, cores))
            row.append(
                "—"
                if entry is None
                else f"{entry['steps_per_s']:,.0f} ({entry['cpu_us_per_step']:.1f})"
            )
        row.append(
            " / ".join(_number(speedups.get((env_id, num_envs, cores)), 2) for cores in (1, 2))
        )
        sync = measured[(env_id, num_envs, "gymnasium-sync", 1)]["cpu_us_per_step"]
        envpool = measured[(env_id, num_envs, "envpool", 1)]["cpu_us_per_step"]
        row.append(f"{sync / envpool:.2f}")
        rows.append(row)
    table = _table(
        [
            "workload",
            *(title for _, title in _VECTOR_ENV_COLUMNS),
            "speed-up, 1 / 2 cores",
            "CPU-time ratio, 1 core",
        ],
        ["---", *["---:"] * (len(_VECTOR_ENV_COLUMNS) + 2)],
        rows,
    )
    note = (
        "Env steps per second, every copy's step counted (CPU µs per step in brackets: the "
        "process's, and for async its workers'); the fastest of each configuration's timed "
        "runs. Speed-up: envpool's steps per second over the fastest gymnasium engine's, with 1 "
        "thread on 1 core / with 2 threads on 2 cores. CPU-time ratio: gymnasium sync's CPU "
        "time per step over envpool's on one core (above 1: envpool spends less), the steadier "
        "figure on a shared machine. The two-core columns ran on two cores, every other "
        "configuration on one."
    )
    simulators = record["settings"].get("simulator_versions")
    if simulators:
        note += " " + ", ".join(f"{name} {v}" for name, v in simulators.items() if v) + "."
    note += "\n\n"
    return table + "\n" + note + provenance(record)


# The order of the rows of an rl_cartpole table: the peer and dlkit at the zoo's settings (the
# equal-settings headline), then SB3 and dlkit with dlkit's tuned values.
_RUNNER_ORDER = [
    ("sb3", "SB3, zoo settings (the peer)"),
    *(
        (f"dlkit-{backend}", f"dlkit {name}, zoo settings")
        for backend, name in BACKEND_NAMES.items()
    ),
    ("sb3-dlkit-settings", "SB3 with dlkit's tuned values"),
    *(
        (f"dlkit-{backend}-tuned", f"dlkit {name}, tuned settings")
        for backend, name in BACKEND_NAMES.items()
    ),
    ("tf-agents", "TF-Agents, its tutorial's settings"),
]


def _thousands(value) -> str:
    return "—" if value is None else f"{value / 1000:g}"


def _ratios(wall, cpu) -> str:
    if wall is None and cpu is None:
        return ""
    return f"{_number(wall, 2)} / {_number(cpu, 2)}"


def rl_cartpole(algorithm: str) -> str:
    record = load(f"rl_cartpole_{algorithm}")
    summary = record["results"]["summary"][algorithm]
    runs = record["results"]["runs"]
    rows = []
    for runner, label in _RUNNER_ORDER:
        row = summary["runners"].get(runner)
        if row is None:
            continue
        ratios = summary["ratios_to_sb3"].get(runner, {})
        q1, median, q3 = row["steps_to_solve_quartiles"]
        per_seed = [
            _thousands(run["solved_at"])
            for run in sorted(runs, key=lambda run: run["seed"])
            if run.get("runner") == runner and run.get("algorithm") == algorithm
        ]
        rows.append(
            [
                label,
                f"{row['solved']}/{row['seeds']}",
                f"{_thousands(q1)} / {_thousands(median)} / {_thousands(q3)}",
                ", ".join(per_seed),
                f"{_number(row['median_seconds_to_solve'], 2)} / "
                f"{_number(row['median_cpu_seconds_to_solve'], 2)}",
                _ratios(
                    ratios.get("same_settings_wall_ratio"), ratios.get("same_settings_cpu_ratio")
                ),
                _ratios(ratios.get("wall_ratio"), ratios.get("cpu_ratio")),
                f"{_number(row['median_steps_per_second'], 0)} / "
                f"{_number(row['median_steps_per_cpu_second'], 0)}",
            ]
        )
    table = _table(
        [
            "runner",
            "solved",
            "steps to solve, thousands: Q1 / median / Q3",
            "per seed",
            "median s to solve: wall / CPU",
            "ratio to SB3 at equal settings: wall / CPU",
            "ratio to SB3 at zoo settings: wall / CPU",
            "median steps per s: wall / CPU",
        ],
        ["---", "---:", "---:", "---", "---:", "---:", "---:", "---:"],
        rows,
    )
    seeds = ", ".join(str(seed) for seed in record["settings"]["seeds"])
    return (
        table
        + "\n"
        + _targets(summary["targets_met"])
        + f"\n\nSeeds {seeds}. "
        + provenance(record)
    )


_TARGET_NAMES = {
    "steps": "no more env steps than SB3's median",
    "fastest_backend_wall_ratio_le_0.5": "≤ 0.5× SB3's wall-clock on the fastest backend",
    "every_backend_wall_ratio_le_1.0": "≤ 1.0× on every backend",
}


def _targets(targets: dict) -> str:
    """The targets against SB3 at the zoo's settings, met or not, per group of rows."""
    groups = {"equal_settings": "At equal settings", "tuned": "With dlkit's tuned settings"}
    sentences = []
    for group, label in groups.items():
        if group in targets:
            parts = [
                f"{_TARGET_NAMES[name]}: {'met' if met else 'not met'}"
                for name, met in targets[group].items()
            ]
            sentences.append(f"{label}: " + "; ".join(parts) + ".")
    return " ".join(sentences)


_POLICY_GRADIENT_RUNNERS = {
    "sb3-contrib": "sb3-contrib TRPO, zoo settings (the peer)",
    "sb3-contrib-sde": "sb3-contrib TRPO, zoo settings with gSDE",
    **{f"dlkit-{backend}": f"dlkit TRPO {name}" for backend, name in BACKEND_NAMES.items()},
    **{
        f"dlkit-{backend}-{algorithm}": f"dlkit {algorithm.upper()} {name}"
        for backend, name in BACKEND_NAMES.items()
        for algorithm in ("a2c", "a3c")
    },
}


def rl_policy_gradients(name: str, group: str) -> str:
    """One task of `rl_policy_gradients.py`: steps and seconds to solve per runner, with the
    ratios the targets read (to sb3-contrib for TRPO, A3C to A2C per backend)."""
    record = load(name)
    summary = record["results"]["summary"][group]
    runs = [run for run in record["results"]["runs"] if "error" not in run]
    algorithm, env_id = group.split("/")
    ratios = summary.get("ratios_to_sb3_contrib", {})
    rows = []
    for runner, label in _POLICY_GRADIENT_RUNNERS.items():
        row = summary["runners"].get(runner)
        if row is None:
            continue
        q1, median, q3 = row["steps_to_solve_quartiles"]
        per_seed = [
            _thousands(run["solved_at"])
            for run in sorted(runs, key=lambda run: run["seed"])
            if run["runner"] == runner and run["env_id"] == env_id
        ]
        ratio = ratios.get(runner, {})
        if algorithm == "a3c" and runner.endswith("-a3c"):
            backend = runner.split("-")[1]
            a2c = summary["runners"][f"dlkit-{backend}-a2c"]
            cpu = row["median_cpu_seconds_to_solve"]
            reference = a2c["median_cpu_seconds_to_solve"]
            ratio = {
                "wall_ratio": summary["a3c_against_a2c"][backend]["a3c_to_a2c_wall_ratio"],
                "cpu_ratio": None if cpu is None or not reference else round(cpu / reference, 3),
            }
        rows.append(
            [
                label,
                f"{row['solved']}/{row['seeds']}",
                f"{_thousands(q1)} / {_thousands(median)} / {_thousands(q3)}",
                ", ".join(per_seed),
                f"{_number(row['median_seconds_to_solve'], 2)} / "
                f"{_number(row['median_cpu_seconds_to_solve'], 2)}",
                _ratios(ratio.get("wall_ratio"), ratio.get("cpu_ratio")),
            ]
        )
    peer = "sb3-contrib: wall / CPU" if algorithm == "trpo" else "A2C, same backend: wall / CPU"
    table = _table(
        [
            "runner",
            "solved",
            "steps to solve, thousands: Q1 / median / Q3",
            "per seed",
            "median s to solve: wall / CPU",
            f"ratio to {peer}",
        ],
        ["---", "---:", "---:", "---", "---:", "---:"],
        rows,
    )
    targets = summary.get("targets_met", {})
    if algorithm == "trpo":
        met = "; ".join(
            f"{_TARGET_NAMES[key].replace('SB3', 'sb3-contrib')}: {'met' if value else 'not met'}"
            for key, value in targets.items()
        )
    else:
        met = "; ".join(
            f"A3C faster than A2C on {BACKEND_NAMES[backend]}: {'met' if value else 'not met'}"
            for backend, value in targets.items()
        )
    seeds = ", ".join(str(seed) for seed in record["settings"]["seeds"])
    threshold = record["settings"]["tasks"][env_id]["threshold"]
    where = provenance(record)
    if all(len(run["pinning"]["affinity"]) == 2 for run in runs):
        where = where.replace("pinned to one core", "pinned to the same two cores")
    return (
        table
        + f"\n{env_id}, solved at an evaluation mean ≥ {threshold:g}. Targets: {met}.\n\n"
        + f"Seeds {seeds}. "
        + where
    )


# The workloads of `rl_scale.py`, each stored in benchmarks/results/rl_scale_<workload>.json.
RL_SCALE_WORKLOADS = {
    "ppo_breakout": "PPO, Breakout-v5, 8 copies",
    "dqn_breakout": "DQN, Breakout-v5, 1 copy",
    "ppo_halfcheetah": "PPO, HalfCheetah-v5, normalised",
}
_RL_SCALE_RUNNERS = ("dlkit-tensorflow", "dlkit-jax", "dlkit-torch")


def _met(targets: dict) -> str:
    return " / ".join("met" if met else "not met" for met in targets.values())


def rl_scale() -> str:
    """Env steps per second of `learn` (updates included) per workload and runner, with the
    ratios of dlkit's to SB3's and the targets, one row per workload."""
    rows, sources = [], []
    for workload, label in RL_SCALE_WORKLOADS.items():
        if not os.path.exists(os.path.join(RESULTS, f"rl_scale_{workload}.json")):
            continue
        record = load(f"rl_scale_{workload}")
        summary = record["results"]["summary"][workload]
        runners, ratios = summary["runners"], summary.get("ratios_to_sb3", {})
        peer = runners["sb3"]
        cells = [
            label,
            _number(peer["timed_steps"], 0),
            f"{_number(peer['steps_per_second'], 0)} / {_number(peer['steps_per_cpu_second'], 0)}",
        ]
        for runner in _RL_SCALE_RUNNERS:
            row, ratio = runners.get(runner), ratios.get(runner)
            cells.append(
                "—"
                if row is None
                else f"{_number(row['steps_per_second'], 0)} / "
                f"{_number(row['steps_per_cpu_second'], 0)} "
                f"({_number(ratio['wall'], 2)}× / {_number(ratio['cpu'], 2)}×)"
            )
        targets = summary["targets_met"]
        cells += [_met(targets["wall"]), _met(targets["cpu"])]
        rows.append(cells)
        average = record["load_average"]
        sources.append(
            provenance(record)
            if not sources
            else f"{label}: load average (1 min) {average['before'][0]:.1f} before and "
            f"{average['after'][0]:.1f} after; command `{record['command']}`, stored in "
            f"`{record['file']}`.\n"
        )
    table = _table(
        [
            "workload",
            "timed steps",
            "SB3: wall / CPU",
            *(
                f"dlkit {BACKEND_NAMES[runner.split('-')[1]]}: wall / CPU (× SB3)"
                for runner in _RL_SCALE_RUNNERS
            ),
            "≥ 2× on the fastest / ≥ 1× on every backend (wall)",
            "the same, CPU time",
        ],
        ["---", "---:", "---:", "---:", "---:", "---:", "---", "---"],
        rows,
    )
    return (
        table
        + "\nEnv steps per second of `learn`, updates included, from the end of the first update "
        "(DQN: 1,000 steps past its learning starts) to the end of the run, per second of wall "
        "time / of the process's CPU time; in brackets dlkit's over SB3's (wall / CPU).\n\n"
        + "\n".join(sources)
    )


def rl_scale_learning() -> str:
    """Evaluation returns after a fixed budget, per workload and runner, over seeds."""
    record = load("rl_scale_learning")
    settings = record["settings"]
    rows = []
    for workload, entry in record["results"]["summary"].items():
        for runner, row in entry["runners"].items():
            name = "SB3" if runner == "sb3" else f"dlkit {BACKEND_NAMES[runner.split('-')[1]]}"
            rows.append(
                [
                    RL_SCALE_WORKLOADS[workload],
                    name,
                    _number(settings["steps"][workload], 0),
                    ", ".join(_number(value, 1) for value in row["eval_means"]),
                    _number(row["median_eval_return"], 1),
                    f"{_number(row['median_steps_per_second'], 0)} / "
                    f"{_number(row['median_steps_per_cpu_second'], 0)}",
                ]
            )
    seeds = ", ".join(str(seed) for seed in settings["seeds"])
    return (
        _table(
            [
                "workload",
                "runner",
                "env steps",
                "mean return of 10 episodes, per seed",
                "median",
                "steps per s: wall / CPU",
            ],
            ["---", "---", "---:", "---", "---:", "---:"],
            rows,
        )
        + f"\nSeeds {seeds}. "
        + provenance(record)
    )


TABLES = {
    "training_overhead": training_overhead,
    "host_overhead": host_overhead,
    "training_overhead_fused": training_overhead_fused,
    "checkpoints": checkpoints,
    "acting_latency": acting_latency,
    "layers": layers,
    "sequences": sequences,
    "generative": generative,
    "buffers": buffers,
    "replay_memory": replay_memory,
    "rl_cartpole_dqn": lambda: rl_cartpole("dqn"),
    "rl_cartpole_ppo": lambda: rl_cartpole("ppo"),
    "vector_envs": vector_envs,
    "rl_scale": rl_scale,
    "rl_trpo_cartpole": lambda: rl_policy_gradients("rl_policy_gradients", "trpo/CartPole-v1"),
    "rl_trpo_pendulum": lambda: rl_policy_gradients("rl_policy_gradients", "trpo/Pendulum-v1"),
    "rl_a3c_cartpole": lambda: rl_policy_gradients("rl_policy_gradients_a3c", "a3c/CartPole-v1"),
    "rl_scale_learning": rl_scale_learning,
}


def render(text: str) -> str:
    """``text`` with every marked region replaced by its table, generated now."""

    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise ValueError(f"Expected a table name from {sorted(TABLES)}. Received: {name!r}")
        return match.group(1) + "\n" + TABLES[name]() + "\n" + match.group(4)

    return _REGION.sub(replace, text)


def stale_documents() -> list[str]:
    """The documents whose tables differ from those generated from the stored results."""
    stale = []
    for document in DOCUMENTS:
        with open(os.path.join(ROOT, document)) as file:
            text = file.read()
        if render(text) != text:
            stale.append(document)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="Only report stale files.")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_documents()
        for document in stale:
            print(f"{document}: tables differ from benchmarks/results; run benchmarks/tables.py")
        return 1 if stale else 0
    for document in DOCUMENTS:
        path = os.path.join(ROOT, document)
        with open(path) as file:
            text = file.read()
        rendered = render(text)
        if rendered != text:
            with open(path, "w") as file:
                file.write(rendered)
            print(f"rewrote {document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
