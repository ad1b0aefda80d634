import numpy as np
from helpers import REFERENCE, ScriptedClient

from fedray.cluster.runtime import InlineRuntime
from fedray.server.config import ServerConfig
from fedray.server.parameter_server import ParameterServer


def _server(behaviours, cfg=None, strategy="fedavg", deltas=None):
    rt = InlineRuntime()
    deltas = deltas or [1.0] * len(behaviours)
    clients = [rt.spawn(ScriptedClient, k, d, b) for k, (b, d) in enumerate(zip(behaviours, deltas, strict=True))]
    return ParameterServer(clients, REFERENCE, cfg or ServerConfig(), strategy, rt, seed=0), clients


def test_clean_round_aggregates_and_evaluates():
    server, _ = _server(["ok", "ok", "ok"], deltas=[1.0, 2.0, 3.0])
    out = server.run_round(1, evaluate=True)
    np.testing.assert_allclose(out.checkpoint.weights["w"], 2.0)
    assert out.record["aggregated"] and out.record["updates"] == 3
    assert out.record["test_acc"] == 2.0 and out.record["evaluated"] == 3


def test_failing_and_garbage_clients_are_counted_and_skipped():
    behaviours = ["ok", "raise", "nan", "wrong_shape", "wrong_dtype", "missing_key", "not_a_result", "ok"]
    server, _ = _server(behaviours, ServerConfig(min_clients=2))
    out = server.run_round(1, evaluate=False)
    assert out.record["updates"] == 2 and out.record["aggregated"]
    assert set(out.record["failed"]) == {1} and "crashed" in out.record["failed"][1]
    assert set(out.record["rejected"]) == {2, 3, 4, 5, 6}
    assert "non-finite" in out.record["rejected"][2] and "not a FitResult" in out.record["rejected"][6]
    np.testing.assert_allclose(out.checkpoint.weights["w"], 1.0)  # only the two honest updates
    assert server.counters() == {"failures": {1: 1}, "rejections": {2: 1, 3: 1, 4: 1, 5: 1, 6: 1}, "declines": {}}


def test_norm_bound_rejects_scaled_updates():
    server, _ = _server(["ok", "scaled", "ok"], ServerConfig(max_update_norm=5.0))
    out = server.run_round(1, evaluate=False)
    assert set(out.record["rejected"]) == {1}
    np.testing.assert_allclose(out.checkpoint.weights["b"], 1.0)


def test_median_neutralises_a_scaled_update_without_a_bound():
    server, _ = _server(["ok", "scaled", "ok"], strategy="median")
    np.testing.assert_allclose(server.run_round(1, evaluate=False).checkpoint.weights["w"], 1.0)


def test_short_of_quorum_keeps_the_global_weights():
    server, _ = _server(["raise", "raise", "ok"], ServerConfig(min_clients=2))
    out = server.run_round(1, evaluate=False)
    assert not out.record["aggregated"]
    np.testing.assert_array_equal(out.checkpoint.weights["w"], REFERENCE["w"])


def test_sampling_is_seeded_and_calls_only_the_sampled():
    server, clients = _server(["ok"] * 6, ServerConfig(clients_per_round=2))
    assert server.sample(4) == server.sample(4) and len(server.sample(4)) == 2
    server.run_round(4, evaluate=False)
    called = [k for k, c in enumerate(clients) if c.instance.fit_calls]
    assert called == server.sample(4)


class DeferredRuntime(InlineRuntime):
    """Calls run only when ``wait`` picks them up, so the number of calls in flight can be observed."""

    def __init__(self):
        self.in_flight, self.most_in_flight = [], 0

    def spawn(self, cls, *args, **kwargs):
        actor = super().spawn(cls, *args, **kwargs)
        runtime = self

        class Deferred:
            def __getattr__(self, name):
                class Method:
                    def remote(self, *a):
                        ref = ("pending", name, a)
                        call = {"ref": ref, "run": lambda: getattr(actor, name).remote(*a)}
                        runtime.in_flight.append(call)
                        runtime.most_in_flight = max(runtime.most_in_flight, len(runtime.in_flight))
                        return call["run"]  # a unique, hashable stand-in for the reference

                return Method()

        return Deferred()

    def wait(self, refs, num_returns, timeout):
        done = refs[:num_returns]
        self.in_flight = [c for c in self.in_flight if c["run"] not in done]
        return done, refs[num_returns:]

    def get(self, ref, timeout=None):
        return super().get(ref())


def test_back_pressure_keeps_at_most_max_concurrent_calls_in_flight():
    rt = DeferredRuntime()
    clients = [rt.spawn(ScriptedClient, k, 1.0) for k in range(7)]
    server = ParameterServer(clients, REFERENCE, ServerConfig(max_concurrent=2), "fedavg", rt, seed=0)
    out = server.run_round(1, evaluate=True)
    assert rt.most_in_flight == 2
    assert out.record["updates"] == 7 and out.record["evaluated"] == 7
