"""The speed tables of the docs are those generated from the stored benchmark results.

No benchmark runs here: the tables are regenerated from benchmarks/results/*.json by
benchmarks/tables.py and compared with the files that show them.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _load(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import their neighbour `_common`
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _load("tables")


def test_docs_tables_match_the_stored_results():
    assert tables.stale_documents() == []


def test_every_table_is_shown_and_every_region_is_known():
    shown = set()
    for document in tables.DOCUMENTS:
        text = (ROOT / document).read_text()
        names = [match.group(2) for match in tables._REGION.finditer(text)]
        assert names, f"{document} has no generated table"
        shown.update(names)
    assert shown == set(tables.TABLES)


def test_a_figure_typed_into_a_table_is_caught():
    text = (ROOT / "benchmarks/README.md").read_text()
    start = text.index("<!-- table:rl_cartpole_dqn -->")
    end = text.index("<!-- /table:rl_cartpole_dqn -->")
    row = next(line for line in text[start:end].splitlines() if line.startswith("| dlkit JAX"))
    cells = row.split(" | ")
    cells[4] = "0.01 / 0.01"  # the median seconds to solve
    edited = text.replace(row, " | ".join(cells))
    assert tables.render(edited) == text != edited


def test_an_unknown_table_name_is_rejected():
    with pytest.raises(ValueError, match="Received: 'no_such_table'"):
        tables.render("<!-- table:no_such_table -->\n<!-- /table:no_such_table -->")


@pytest.mark.parametrize("algorithm", ["dqn", "ppo"])
def test_rl_cartpole_summary_is_that_of_its_runs(algorithm):
    """The stored medians and ratios are recomputed from the stored runs, every runner ran on
    one core, and the headline compares dlkit and SB3 at the zoo's settings."""
    rl_cartpole = _load("rl_cartpole")
    record = json.loads((BENCHMARKS / "results" / f"rl_cartpole_{algorithm}.json").read_text())
    runs = record["results"]["runs"]
    assert record["results"]["summary"] == json.loads(json.dumps(rl_cartpole.summarise(runs)))
    assert all(run["pinning"]["affinity"] == [run["pinning"]["core"]] for run in runs)
    zoo = json.loads(json.dumps(rl_cartpole.zoo_settings(algorithm)))
    for run in runs:
        if run["runner"].startswith("dlkit-") and not run["runner"].endswith("-tuned"):
            assert run["values"] == zoo
    assert {"sb3", "dlkit-tensorflow", "dlkit-jax", "dlkit-torch"} <= {
        run["runner"] for run in runs
    }


@pytest.mark.parametrize(
    "name",
    [
        "training_overhead",
        "training_overhead_fused",
        "host_overhead",
        "acting_latency",
        "layers",
        "sequences",
        "generative",
    ],
)
def test_per_backend_results_ran_on_one_core(name):
    record = tables.load(name)
    results = record["results"]
    assert [result["backend"] for result in results] == list(tables.BACKEND_NAMES)
    for result in results:
        assert result["pinning"]["affinity"] == [result["pinning"]["core"]]
        assert result["process_cpu_s"] > 0


@pytest.mark.parametrize(
    "name",
    [
        "rl_scale_ppo_breakout",
        "rl_scale_dqn_breakout",
        "rl_scale_ppo_halfcheetah",
        "rl_scale_learning",
    ],
)
def test_rl_scale_summary_is_that_of_its_runs(name):
    """The stored rates, ratios and medians are recomputed from the stored runs, every runner
    ran on one core, and SB3 and every backend of dlkit ran (SB3 and one backend for learning)."""
    rl_scale = _load("rl_scale")
    record = tables.load(name)
    runs = record["results"]["runs"]
    learning = record["settings"]["mode"] == "learning"
    summary = json.loads(json.dumps(rl_scale.summarise(runs, learning)))
    assert record["results"]["summary"] == summary
    assert all(run["pinning"]["affinity"] == [run["pinning"]["core"]] for run in runs)
    runners = {run["runner"] for run in runs if "error" not in run}
    assert "sb3" in runners and len(runners) >= (2 if learning else 4)


@pytest.mark.parametrize(
    "name, cores", [("rl_policy_gradients", 1), ("rl_policy_gradients_a3c", 2)]
)
def test_rl_policy_gradients_summary_is_that_of_its_runs(name, cores):
    """The stored medians, ratios and targets are recomputed from the stored runs; TRPO's
    runners ran on one core, A3C and A2C on the same two; no run failed."""
    script = _load("rl_policy_gradients")
    record = tables.load(name)
    runs = record["results"]["runs"]
    assert not [run for run in runs if "error" in run]
    assert record["results"]["summary"] == json.loads(json.dumps(script.summarise(runs)))
    assert {len(run["pinning"]["affinity"]) for run in runs} == {cores}
    assert len({tuple(run["pinning"]["affinity"]) for run in runs}) == 1
