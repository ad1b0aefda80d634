from fedray.cluster.federation_config import FederatedConfig
from fedray.cluster.placement import PooledClient, pool_size, worker_resources
from fedray.cluster.runtime import InlineRuntime
from fedray.platform.config import load_config


class FakeRuntime(InlineRuntime):
    def __init__(self, cpus, gpus=0.0):
        self.cpus, self.gpus = cpus, gpus

    def total_cpus(self):
        return self.cpus

    def total_gpus(self):
        return self.gpus


def _cfg(*overrides):
    return load_config(FederatedConfig, None, list(overrides))


def test_default_shares_always_fit_on_the_cluster():
    for cpus, clients in ((2, 3), (2, 7), (16, 5), (3, 9)):
        per_actor, _ = worker_resources(_cfg(f"clients.num_clients={clients}"), FakeRuntime(cpus), clients)
        assert per_actor * clients <= cpus and per_actor <= 1.0


def test_gpus_are_divided_fractionally_and_configured_values_win():
    cfg = _cfg("clients.num_clients=4")
    assert worker_resources(cfg, FakeRuntime(8, gpus=1.0), 4) == (1.0, 0.25)
    assert worker_resources(_cfg("clients.num_cpus=0.5", "clients.num_gpus=0"), FakeRuntime(8, 1.0), 4) == (0.5, 0.0)


def test_pool_size_defaults_to_whole_cpus_and_never_exceeds_clients():
    assert pool_size(_cfg("clients.placement=pool", "clients.num_clients=100"), FakeRuntime(2)) == 2
    assert pool_size(_cfg("clients.placement=pool", "clients.num_clients=3"), FakeRuntime(16)) == 3
    configured = _cfg("clients.placement=pool", "clients.pool_size=4", "clients.num_clients=10")
    assert pool_size(configured, FakeRuntime(2)) == 4


def test_pooled_handle_forwards_the_client_id():
    class Pool:
        def fit(self, client_id, shared, round_idx):
            return (client_id, shared, round_idx)

    rt = InlineRuntime()
    handle = PooledClient(rt.spawn(Pool), 7)
    assert rt.get(handle.fit.remote("w", 3)) == (7, "w", 3)


def test_actors_of_lists_each_pool_worker_once():
    from fedray.cluster.placement import actors_of

    rt = InlineRuntime()
    a, b = rt.spawn(dict), rt.spawn(dict)
    handles = [PooledClient(a, 0), PooledClient(b, 1), PooledClient(a, 2)]
    assert actors_of(handles) == [a, b]
    plain = [rt.spawn(dict), rt.spawn(dict)]
    assert actors_of(plain) == plain
