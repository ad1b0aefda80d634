"""The ``fedray`` command as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from skimage.io import imsave

from fedray.platform.io import load_arrays

ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONUNBUFFERED": "1"}


def fedray(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fedray.cluster.cli", *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fedray: error: ") and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_imports_no_torch():
    code = "import sys; from fedray.cluster.cli import main; main(['list']); assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("federated") and "cpus=" in proc.stdout and "gpus=" in proc.stdout


def test_config_prints_the_resolved_yaml():
    proc = fedray("config", "federated", "server.rounds=4", "seed=9")
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["server"]["rounds"] == 4 and cfg["seed"] == 9 and cfg["cluster"]["mode"] == "local"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ("run", "fedsim"),
            "unknown workload 'fedsim'; known workloads: attack, compose, continual, distill, fairness, federated, "
            "fer, ood, purify",
        ),
        (("run", "federated", "server.roundz=2"), "valid keys under 'server': rounds,"),
        (("run", "federated", "server.rounds=two"), "bad value for config key 'server.rounds'"),
        (("run", "federated", "--config", "/nonexistent.yaml"), "config file not found: /nonexistent.yaml"),
        (("config", "federated", "seed"), "must look like key=value"),
        (
            ("run", "federated", "data.name=fashion_mnist", "data.path=/nonexistent", "cluster.mode=inline"),
            "no IDX files for split 'train' in /nonexistent",
        ),
        (("submit", "federated", "--address", "http://127.0.0.1:9"), "cannot reach the Ray Jobs API"),
    ],
)
def test_user_mistakes_are_one_line_errors(args, fragment):
    assert_one_line_error(fedray(*args), fragment)


def test_bad_input_leaves_an_earlier_run_untouched(tmp_path, tiny_overrides):
    ok = fedray("run", "federated", *tiny_overrides, "cluster.mode=inline")
    assert ok.returncode == 0, ok.stderr
    summary = tmp_path / "runs" / "federated" / "default" / "metrics.json"
    before = summary.read_text()
    assert_one_line_error(fedray("run", "federated", *tiny_overrides, "clients.lr=-1"), "clients.lr must be positive")
    assert summary.read_text() == before


def test_run_inline_prints_where_results_are(tiny_overrides):
    proc = fedray("run", "federated", *tiny_overrides, "cluster.mode=inline", "run.name=cli")
    assert proc.returncode == 0, proc.stderr
    assert "results: " in proc.stdout and "federated/cli" in proc.stdout and "skipped" not in proc.stdout
    assert "round 3/3" in proc.stderr  # plain progress lines when not on a terminal


def test_a_run_that_skipped_unreadable_images_says_so(tmp_path, tiny_overrides):
    rng = np.random.default_rng(0)
    for label in ("real", "fake"):
        (tmp_path / "frames" / label).mkdir(parents=True)
        for i in range(20):
            imsave(tmp_path / "frames" / label / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "frames" / "fake" / "broken.png").write_bytes(b"\x89PNG truncated")
    folder = ["data.name=folder", f"data.path={tmp_path / 'frames'}", "data.partition=iid", "data.max_samples=null"]
    proc = fedray("run", "federated", *tiny_overrides, *folder, "cluster.mode=inline")
    assert proc.returncode == 0, proc.stderr
    assert (
        "note: unreadable inputs were skipped (data_skipped_images=1); metrics.json names the first few" in proc.stdout
    )


def test_ctrl_c_keeps_the_last_complete_checkpoint(tmp_path):
    """SIGINT mid-run: exit 130, the checkpoint holds a complete round, metrics.json says 'interrupted'."""
    run_dir = tmp_path / "federated" / "default"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedray.cluster.cli", "run", "federated", "cluster.mode=inline",
         "server.rounds=500", "data.forgery.train_per_class=32", "model.widths=[8,16]", f"run.root={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        # as from a terminal: a shell that starts jobs in the background (CI, `cmd &`) hands them SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    log = run_dir / "metrics.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    meta_round = _checkpoint_round(run_dir / "checkpoints" / "server.safetensors")
    rounds_logged = [json.loads(x)["round"] for x in log.read_text().splitlines()]
    assert meta_round == rounds_logged[-1] >= 2
    assert "head_s.weight" in load_arrays(run_dir / "checkpoints" / "server.safetensors")  # the default: PFR
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "interrupted" and summary["rounds_completed"] == len(rounds_logged)


def _checkpoint_round(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return int(f.metadata()["round"])


def test_overrides_may_stand_before_or_after_options(tmp_path):
    from fedray.cluster.cli import parse

    args = parse(["submit", "federated", "seed=1", "--address", "http://x:8265", "server.rounds=2", "--no-wait"])
    assert args.overrides == ["seed=1", "server.rounds=2"] and args.address == "http://x:8265" and args.no_wait
    proc = fedray("config", "federated", "--config", str(tmp_path / "missing.yaml"), "seed=3")
    assert_one_line_error(proc, "config file not found")
    stray = fedray("config", "federated", "--bogus")
    assert stray.returncode == 2 and "unrecognized arguments: --bogus" in stray.stderr


JOIN = ("join", "--client-id", "0")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("serve", "federated"), "serve needs --credentials DIR (TLS), or --insecure"),
        (("serve", "federated", "--insecure", "resume=true", "run.root=/nonexistent"), "holds no run to resume"),
        ((*JOIN, "--superlink", "127.0.0.1:9"), "join needs --ca FILE"),
        ((*JOIN, "--superlink", "nowhere", "--insecure"), "--superlink must look like HOST:PORT"),
        (("serve", "mamba", "--insecure"), "only the federated workload runs across silos"),
        (
            (*JOIN, "--superlink", "127.0.0.1:9", "--insecure", "data.scope=all", "data.name=folder", "data.path=/no"),
            "data.path=/no is not a folder on this silo",
        ),
    ],
)
def test_cross_silo_commands_refuse_unsafe_or_wrong_use_in_one_line(args, fragment):
    assert_one_line_error(fedray(*args), fragment)


def test_credentials_are_a_ca_a_server_certificate_and_silo_key_pairs(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    proc = fedray("credentials", str(tmp_path), "--silos", "2", "--host", "fl.example.org", "--host", "10.0.0.5")
    assert proc.returncode == 0, proc.stderr
    server = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["fl.example.org"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    key = load_ssh_private_key((tmp_path / "silo1.key").read_bytes(), password=None)
    assert key.curve.name == "secp384r1"  # the curve Flower's SuperNode authentication expects
    assert (tmp_path / "silo1.pub").read_text().startswith("ecdsa-sha2-nistp384 ")
    assert oct((tmp_path / "silo1.key").stat().st_mode & 0o777) == "0o600"


def test_skipped_counts_finds_positive_counts_at_any_depth():
    from fedray.cluster.launch import skipped_counts

    summary = {"data_skipped_files": 0, "data": {"skipped": 3, "test": {"skipped_files": 2}}, "skipped_flag": True,
               "steps": {"a": {"status": "skipped"}}, "images": 5}  # fmt: skip
    assert skipped_counts(summary) == {"data.skipped": 3, "data.test.skipped_files": 2}
