"""Device selection: a fractional GPU grant caps CUDA memory, a worker granted no GPU stays on the CPU, and CPU
arithmetic flushes subnormals."""

from __future__ import annotations

import logging
import sys
import types

import pytest
import torch

from fedray.platform import device


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA that reports itself available and records the memory caps set on it."""
    caps: list[float] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda fraction: caps.append(fraction))
    monkeypatch.setattr(device, "_capped_fraction", None)
    return caps


def _fake_ray(monkeypatch, mode: int, resources: dict[str, float]) -> None:
    context = types.SimpleNamespace(
        worker=types.SimpleNamespace(mode=mode), get_assigned_resources=lambda: dict(resources)
    )
    ray = types.SimpleNamespace(
        is_initialized=lambda: True, get_runtime_context=lambda: context, WORKER_MODE=1, SCRIPT_MODE=0
    )
    monkeypatch.setitem(sys.modules, "ray", ray)


def test_a_fractional_grant_caps_memory_once_per_share_and_says_so(fake_cuda, caplog):
    with caplog.at_level(logging.WARNING, logger=device.__name__):
        assert device.cap_gpu_memory(0.25) == 0.25
        assert device.cap_gpu_memory(0.25) == 0.25  # once per process
    assert fake_cuda == [0.25]
    assert "granted 0.25 GPU: CUDA memory of this process capped to 25% of the device" in caplog.text
    assert device.cap_gpu_memory(0.5) == 0.5  # an actor or reused process granted another share: the cap follows
    assert fake_cuda == [0.25, 0.5]


@pytest.mark.parametrize("fraction", [None, 0.0, 1.0, 2.0])
def test_whole_gpus_or_none_set_no_cap(fake_cuda, fraction):
    assert device.cap_gpu_memory(fraction) is None
    assert fake_cuda == []


def test_no_cap_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_capped_fraction", None)
    assert device.cap_gpu_memory(0.5) is None


def test_the_grant_is_read_from_the_ray_worker_that_runs_this_process(monkeypatch):
    _fake_ray(monkeypatch, mode=1, resources={"CPU": 1.0, "GPU": 0.25})
    assert device.granted_gpu_fraction() == 0.25
    _fake_ray(monkeypatch, mode=0, resources={"GPU": 1.0})  # the driver was granted nothing
    assert device.granted_gpu_fraction() is None
    monkeypatch.delitem(sys.modules, "ray")
    assert device.granted_gpu_fraction() is None


def test_selecting_cuda_in_a_fractional_task_caps_it(monkeypatch, fake_cuda):
    _fake_ray(monkeypatch, mode=1, resources={"GPU": 0.5})
    assert device.select_device() == torch.device("cuda")
    assert fake_cuda == [0.5]
    assert device.select_device(prefer_gpu=False) == torch.device("cpu")


def test_a_worker_granted_no_gpu_stays_on_the_cpu_although_cuda_is_visible(monkeypatch, fake_cuda):
    # Ray leaves CUDA visible to such workers under RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=0 (its future default).
    _fake_ray(monkeypatch, mode=1, resources={"CPU": 1.0})
    assert device.select_device() == torch.device("cpu")
    _fake_ray(monkeypatch, mode=1, resources={"CPU": 1.0, "GPU": 1.0})
    assert device.select_device() == torch.device("cuda")
    _fake_ray(monkeypatch, mode=0, resources={})  # the driver (local simulation on one GPU) may use CUDA
    assert device.select_device() == torch.device("cuda")
    assert fake_cuda == []  # whole GPUs and the driver set no cap


class _DeviceProbe:
    """An actor that reports the device chosen when it was built and when a method runs."""

    def __init__(self) -> None:
        self.built_on = device.select_device()

    def devices(self) -> tuple[torch.device, torch.device]:
        return self.built_on, device.select_device()


def test_inline_tasks_and_actors_pick_the_device_their_request_gets_under_ray(monkeypatch, fake_cuda):
    from fedray.cluster.runtime import InlineRuntime

    monkeypatch.delitem(sys.modules, "ray", raising=False)  # no Ray worker around: only the inline request counts
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    runtime = InlineRuntime()
    assert runtime.get(runtime.submit(device.select_device)) == cpu  # asked for no GPU, as Ray's default task
    assert runtime.get(runtime.submit(device.select_device, num_gpus=0.5)) == cuda
    assert runtime.get(runtime.spawn(_DeviceProbe, num_gpus=0.25).devices.remote()) == (cuda, cuda)
    assert runtime.get(runtime.spawn(_DeviceProbe).devices.remote()) == (cpu, cpu)
    assert device.select_device() == cuda  # the driver's own code, outside any task
    assert fake_cuda == []  # one process runs every inline task: no share of it is capped


def test_selecting_a_device_flushes_float32_subnormals_to_zero():
    try:
        torch.set_flush_denormal(False)  # an earlier select_device in this process turned it on
        tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal: below float32's smallest normal, 1.18e-38
        assert (tiny * 1.0).item() > 0
        assert device.select_device(prefer_gpu=False) == torch.device("cpu")
        if not device.flush_subnormals():
            pytest.skip("this CPU cannot flush subnormals")
        assert (tiny * 1.0).item() == 0.0
        assert (torch.tensor([1e-30]) * 1e-9).item() == 0.0  # a product falling into the range is flushed too
        assert (torch.tensor([1e-30]) * 1e3).item() == pytest.approx(1e-27)  # normal numbers are untouched
    finally:
        torch.set_flush_denormal(False)
