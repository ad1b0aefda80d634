"""The federated slice on the shared local Ray cluster: same results as inline, faults do not stall a round."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers import REFERENCE, ScriptedClient

from fedray.cluster.launch import resolve_config, run_workload
from fedray.cluster.runtime import RayRuntime
from fedray.platform.io import load_arrays
from fedray.server.config import ServerConfig
from fedray.server.parameter_server import ParameterServer

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("placement", ["actor", "pool"])
def test_local_ray_run_matches_the_inline_run(ray_session, tiny_overrides, placement):
    results = {}
    for mode in ("inline", "local"):
        overrides = [f"cluster.mode={mode}", f"run.name={mode}", f"clients.placement={placement}"]
        cfg = resolve_config("federated", None, [*tiny_overrides, *overrides])
        summary, run_dir = run_workload("federated", cfg)
        assert summary["runtime"] == mode and summary["clients"]["placement"] == placement
        results[mode] = (summary, load_arrays(run_dir.checkpoint("server")))
    (inline, w_inline), (local, w_local) = results["inline"], results["local"]
    for key in ("test_acc", "test_loss", "worst_acc"):
        np.testing.assert_allclose(local[key], inline[key], rtol=1e-6, err_msg=key)
    assert [c["client"] for c in local["per_client"]] == [c["client"] for c in inline["per_client"]]
    for name in w_inline:
        np.testing.assert_allclose(w_local[name], w_inline[name], rtol=1e-6, atol=1e-7, err_msg=name)


def _server_with(runtime, behaviours, cfg, delay=0.0):
    clients = [runtime.spawn(ScriptedClient, k, 1.0, b, 10, delay, num_cpus=0) for k, b in enumerate(behaviours)]
    server = runtime.spawn(ParameterServer, clients, REFERENCE, cfg, "fedavg", runtime, 0, num_cpus=0)
    return server, clients


def test_a_killed_client_actor_does_not_stop_the_round(ray_session):
    runtime = RayRuntime("local")
    server, clients = _server_with(runtime, ["ok", "ok", "ok"], ServerConfig(min_clients=2))
    assert runtime.get(server.run_round.remote(1, False)).record["updates"] == 3
    runtime.kill(clients[1])
    out = runtime.get(server.run_round.remote(2, True))
    assert out.record["aggregated"] and out.record["updates"] == 2
    assert set(out.record["failed"]) == {1} and "Actor" in out.record["failed"][1]
    assert out.record["evaluated"] == 2
    np.testing.assert_allclose(out.checkpoint.weights["w"], 2.0)  # two rounds of +1 from the clients still alive


def test_a_slow_client_is_dropped_after_the_round_timeout(ray_session):
    runtime = RayRuntime("local")
    server, clients = _server_with(runtime, ["ok", "slow", "ok"], ServerConfig(round_timeout_s=1.0), delay=20.0)
    start = time.perf_counter()
    out = runtime.get(server.run_round.remote(1, False))
    assert time.perf_counter() - start < 10
    assert out.record["aggregated"] and set(out.record["failed"]) == {1}
    assert "no answer within 1.0 s" in out.record["failed"][1]
    for c in clients:
        runtime.kill(c)


def test_clients_that_cannot_be_placed_fail_with_a_clear_error(ray_session, tiny_overrides):
    from fedray.platform.errors import FedrayError

    cfg = resolve_config("federated", None, [*tiny_overrides, "clients.num_cpus=3", "clients.startup_timeout_s=3"])
    expected = (
        r"3 of 3 client actors did not start within 3 s \(3 workers in 'actor' placement, each asking for num_cpus=3,"
    )
    with pytest.raises(FedrayError, match=expected):
        run_workload("federated", cfg)
    from ray._private.state import actors  # reads the GCS directly; the state API needs the dashboard

    def waiting() -> list[str]:
        return [a["State"] for a in actors().values() if a["State"] in ("PENDING_CREATION", "DEPENDENCIES_UNREADY")]

    deadline = time.time() + 10  # the unplaceable actors were removed, not left pending on the shared cluster
    while waiting() and time.time() < deadline:
        time.sleep(0.5)
    assert waiting() == []
