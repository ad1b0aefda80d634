"""The deployment files parse and have the structure their tools require, at the Ray version fedray pins."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "cluster" / "deploy"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pinned_ray() -> str:
    pin = re.search(r'"ray\[default\]==([^"]+)"', PYPROJECT.read_text())
    assert pin is not None, "pyproject.toml pins no ray[default] version"
    return pin.group(1)


def test_the_cluster_launcher_config_passes_ray_ups_own_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    validate_config(prepare_config(config))  # what `ray up` runs before it launches anything
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"]["GPU"] == 0
    assert any(t.get("resources", {}).get("GPU", 0) >= 1 for t in types.values()), "no GPU worker type"
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])


def test_ray_up_validation_rejects_a_broken_launcher_config():
    """The check above can fail: an unknown node-type field and a head type that is not defined are rejected."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    config["available_node_types"]["gpu_worker"]["gpus"] = 1
    with pytest.raises(Exception, match="Additional properties are not allowed"):
        validate_config(prepare_config(config))
    config = yaml.safe_load((DEPLOY / "ray-cluster.yaml").read_text())
    config["head_node_type"] = "missing"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(prepare_config(config))


def test_the_rayjob_manifest_runs_the_forensics_pipeline_on_a_gpu_worker_group():
    job = yaml.safe_load((DEPLOY / "rayjob-forensics.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", job["metadata"]["name"])  # a DNS-1123 label
    spec = job["spec"]
    assert "fedray pipeline configs/pipelines/forensics.yaml" in spec["entrypoint"]
    assert "cluster.mode=address" in spec["entrypoint"]
    assert (Path(__file__).resolve().parents[2] / "configs" / "pipelines" / "forensics.yaml").is_file()
    assert spec["shutdownAfterJobFinishes"] is True and spec["submissionMode"] in ("K8sJobMode", "HTTPMode")
    cluster = spec["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in head["ports"]} >= {6379, 8265, 10001}
    for group in cluster["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert isinstance(group["rayStartParams"], dict)
        (worker,) = group["template"]["spec"]["containers"]
        assert int(worker["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    pods = [cluster["headGroupSpec"]["template"]["spec"], *(g["template"]["spec"] for g in cluster["workerGroupSpecs"])]
    for pod in pods:  # every pod mounts the volume its containers name
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes
            assert container["image"] == pods[0]["containers"][0]["image"]


def test_every_deployment_file_uses_the_pinned_ray_version():
    version = _pinned_ray()
    job = yaml.safe_load((DEPLOY / "rayjob-forensics.yaml").read_text())
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == version
    base = re.search(r"^FROM rayproject/ray:(\S+)", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert base is not None and base.group(1).startswith(f"{version}-py311")
    assert 'pip install --no-cache-dir "torch==' in (DEPLOY / "Dockerfile").read_text()
