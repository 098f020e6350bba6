import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from dlkit import cli


def test_recipes_lists_each_recipe_with_its_description(capsys):
    assert cli.main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("classifier_digits") and "CNN" in line for line in lines), lines


def test_info_reports_versions_backend_and_devices(capsys):
    assert cli.main(["info"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == keras.backend.backend()
    assert report["versions"]["keras"] == keras.__version__
    assert any(device.startswith("cpu") for device in report["devices"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "no_such_recipe"], "unknown recipe 'no_such_recipe'"),
        (["run", "classifier_digits", "--epochs", "abc"], "invalid value for --epochs: 'abc'"),
        (["run", "classifier_digits", "--no_such_field", "1"], "unknown option --no_such_field"),
        (["run", "classifier_digits", "--epochs", "0"], "Expected epochs >= 1"),
        (["no_such_command"], "invalid choice"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("dlkit: error:") and message in captured.err
    assert "Traceback" not in captured.err + captured.out


def test_run_help_documents_every_field(capsys):
    assert cli.main(["run", "classifier_digits", "--help"]) == 0
    text = capsys.readouterr().out
    assert "usage: dlkit run classifier_digits" in text
    assert "--epochs INT  (default: 10)" in text
    assert "Passes over the training images." in text


def test_console_script_exits_2_without_traceback():
    executable = shutil.which("dlkit")
    command = [executable] if executable else [sys.executable, "-m", "dlkit.cli"]
    completed = subprocess.run(
        [*command, "run", "no_such_recipe"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("dlkit: error: unknown recipe 'no_such_recipe'")
    assert "Traceback" not in completed.stderr


def test_demo_runs_every_stage_and_writes_artefacts(in_tmp_dir, monkeypatch, capsys):
    # The same code path as `dlkit demo`, with the stage shortened for the test suite.
    monkeypatch.setattr(
        cli, "DEMO_STAGES", [("classifier_digits", {"epochs": 1, "filters": 4, "verbose": 0})]
    )
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "[dlkit demo] stage 1/1: classifier_digits" in out
    assert (in_tmp_dir / "runs" / "classifier_digits" / "model.keras").exists()


@pytest.mark.slow
def test_export_command_writes_a_verified_saved_model(in_tmp_dir, capsys):
    from dlkit.export import verify

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.save(in_tmp_dir / "policy.keras")
    assert cli.main(["export", "policy.keras", "exported"]) == 0
    assert capsys.readouterr().out.strip().endswith("saved_model")
    batch = np.ones((2, 4), "float32")
    verify(in_tmp_dir / "exported" / "saved_model", batch, keras.ops.convert_to_numpy(model(batch)))


def test_export_command_rejects_a_missing_file(capsys):
    assert cli.main(["export", "missing.keras", "out"]) == 2
    assert "expected an existing .keras file, received 'missing.keras'" in capsys.readouterr().err


def test_distribute_flag_trains_data_parallel_or_explains_why_not(in_tmp_dir, capsys):
    argv = [
        "run",
        "classifier_digits",
        "--distribute",
        "--epochs",
        "1",
        "--filters",
        "4",
        "--verbose",
        "0",
    ]
    status = cli.main(argv)
    captured = capsys.readouterr()
    if keras.backend.backend() == "torch":
        assert status == 2
        assert "--distribute: dlkit has no multi-device training engine" in captured.err
    else:
        assert status == 0, captured.err
        engine = "MirroredStrategy" if keras.backend.backend() == "tensorflow" else "DataParallel"
        assert f"distributed with {engine}" in captured.out
        assert (in_tmp_dir / "runs" / "classifier_digits" / "model.keras").exists()


@pytest.mark.parametrize(
    "line",
    [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796638226.494733    7117 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796638229.349696    7117 cuda_platform.cc:52] failed call to cuInit: ...",
        "W1207 10:04:19.123456   42 cpu_feature_guard.cc:9] This TensorFlow binary is optimized",
        "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could",
    ],
)
def test_native_log_lines_are_recognised(line):
    from dlkit._native_logs import is_native_log_line

    assert is_native_log_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        "ValueError: Expected `units` to be an integer >= 1. Received: units=0",
        "WARNING:tensorflow:5 out of the last 5 calls to <function> triggered retracing",
        "F0000 00:00:1796638229.349696    7117 check.cc:52] Check failed: the reason of a crash",
        "/path/module.py:12: UserWarning: something the user should read",
        "I am a line a recipe printed",
    ],
)
def test_other_lines_pass_the_filter(line):
    from dlkit._native_logs import is_native_log_line

    assert not is_native_log_line(line)


def test_verbose_is_requested_by_a_non_zero_environment_value():
    from dlkit._native_logs import verbose_requested

    assert verbose_requested({"DLKIT_VERBOSE": "1"})
    assert not verbose_requested({"DLKIT_VERBOSE": "0"})
    assert not verbose_requested({"DLKIT_VERBOSE": ""})
    assert not verbose_requested({})


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's start-up logs; one backend run"
)
def test_commands_start_without_native_logs_and_verbose_brings_them_back():
    from dlkit._native_logs import is_native_log_line

    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_CPP_MIN_LOG_LEVEL", "DLKIT_VERBOSE")
    }
    environment["KERAS_BACKEND"] = "tensorflow"

    def native_lines(command):
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=180, env=environment
        )
        assert completed.returncode == 0, completed.stderr
        return [line for line in completed.stderr.splitlines() if is_native_log_line(line)]

    plain = native_lines(
        [sys.executable, "-c", "import tensorflow as tf; tf.config.list_physical_devices()"]
    )
    if not plain:
        pytest.skip("this TensorFlow build logs nothing natively at start-up on this machine")
    assert native_lines([sys.executable, "-m", "dlkit.cli", "info"]) == []
    assert native_lines([sys.executable, "-m", "dlkit.cli", "--verbose", "info"])
