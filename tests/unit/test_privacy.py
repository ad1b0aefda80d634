"""DP-SGD on the shared layers: ε is accounted per client and persists, the budget stops training, and only the
shared parameters are clipped and noised."""

import numpy as np
import pytest
from opacus.accountants import RDPAccountant

from fedray.clients.config import ClientConfig, ClientSpec, PrivacyConfig
from fedray.clients.federated_client import FederatedClient
from fedray.clients.privacy import merged
from fedray.clients.state_store import ClientStateStore
from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError
from fedray.platform.messages import ClientData
from fedray.platform.modules.config import ModelConfig


def _data(n: int = 96) -> ClientData:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    images = (rng.random((n, 1, 8, 8)) * 0.5 + labels[:, None, None, None] * 0.3).astype(np.float32)
    return ClientData(images, labels, images[:32], labels[:32], num_classes=2)


def _client(store: ClientStateStore, method: str = "pfr", **privacy) -> FederatedClient:
    train = ClientConfig(batch_size=16, lr=0.1, momentum=0.0)
    spec = ClientSpec(ModelConfig(widths=[8, 16]), train, seed=0, method=method, privacy=PrivacyConfig(True, **privacy))
    return FederatedClient(0, _data(), spec, store)


def test_epsilon_grows_per_round_and_survives_a_restart(tmp_path):
    store = ClientStateStore(tmp_path)
    client = _client(store)
    shared = {n: v for n, v in client.model.state_dict().items() if n in client.shared_names}
    shared = {n: v.numpy() for n, v in shared.items()}
    first = client.fit(shared, 1).metrics["epsilon"]
    second = client.fit(shared, 2).metrics["epsilon"]
    assert 0 < first < second
    restarted = _client(ClientStateStore(tmp_path))  # a new process: state comes from disk
    assert restarted.evaluate(shared, 2).info["epsilon"] == pytest.approx(second)
    assert restarted.state_round == 2


def test_only_shared_parameters_are_clipped(tmp_path):
    """With a tiny clipping norm (and noise) the shared update nearly vanishes; personal tensors train freely."""
    client = _client(ClientStateStore(None), max_grad_norm=1e-7, noise_multiplier=1e-3)
    before = {n: p.detach().clone() for n, p in client.model.named_parameters()}
    shared = {n: before[n].numpy().copy() for n in client.shared_names}
    client.fit(shared, 1)
    moved = {n: float((p.detach() - before[n]).abs().max()) for n, p in client.model.named_parameters()}
    assert max(moved[n] for n in client.shared_names) < 1e-5
    assert max(moved[n] for n in client.personal_names) > 1e-2


def test_a_spent_budget_declines_training_and_says_so(tmp_path):
    store = ClientStateStore(None)
    probe = _client(store)
    shared = {n: v.numpy() for n, v in probe.model.state_dict().items() if n in probe.shared_names}
    one_round = probe.fit(shared, 1).metrics["epsilon"]
    client = _client(ClientStateStore(None), epsilon_budget=one_round * 1.01)
    assert client.fit(shared, 1).declined is None
    refused = client.fit(shared, 2)
    assert refused.declined.startswith("privacy budget spent") and refused.arrays == {} and refused.num_examples == 0
    assert client.privacy.epsilon() == pytest.approx(one_round)  # no steps were taken


def test_rounds_at_one_sampling_rate_are_one_accountant_entry_with_the_same_epsilon(tmp_path):
    """RDP composes additively over steps: the folded history gives the ε of the round-by-round one, and a history
    saved unfolded loads folded."""
    client = _client(ClientStateStore(tmp_path))
    shared = {n: v.numpy() for n, v in client.model.state_dict().items() if n in client.shared_names}
    for r in range(1, 5):
        client.fit(shared, r)
    (sigma, q, steps), *rest = client.privacy.accountant.history
    assert rest == [] and steps == 4 * int(1 / q)
    round_by_round = RDPAccountant()
    round_by_round.history = [(sigma, q, steps // 4)] * 4
    assert client.privacy.epsilon() == pytest.approx(round_by_round.get_epsilon(1e-5), rel=1e-9)
    client.privacy.load_state([[sigma, q, steps // 4]] * 4 + [[sigma, q / 2, 3]])
    assert client.privacy.accountant.history == [(sigma, q, steps), (sigma, q / 2, 3)]
    assert merged([(1.0, 0.1, 2), (2.0, 0.1, 1), (2.0, 0.1, 5), (1.0, 0.1, 1)]) == [
        (1.0, 0.1, 2), (2.0, 0.1, 6), (1.0, 0.1, 1)
    ]  # fmt: skip


def test_run_reports_epsilon_per_client_and_budget_declines(tiny_overrides):
    base = [*tiny_overrides, "cluster.mode=inline", "method=pfr", "privacy.enabled=true", "server.rounds=2"]
    summary, _ = run_workload("federated", resolve_config("federated", None, base))
    epsilons = [c["epsilon"] for c in summary["per_client"]]
    assert all(e > 0 for e in epsilons) and summary["max_epsilon"] == max(epsilons)
    spent, _ = run_workload("federated", resolve_config("federated", None, [*base, "privacy.epsilon_budget=0.01"]))
    assert all(c["declined_rounds"] == 2 and c["epsilon"] == 0 for c in spent["per_client"])
    assert spent["max_epsilon"] == 0


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["strategy=fedprox"], "fedprox"),
        (["privacy.noise_multiplier=0"], "noise_multiplier"),
        (["privacy.delta=1"], "delta"),
        (["privacy.epsilon_budget=-1"], "epsilon_budget"),
    ],
)
def test_bad_privacy_settings_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("federated", None, ["privacy.enabled=true", *overrides])
