from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fedray.cluster.federation_config import FederatedConfig
from fedray.platform.config import load_config, to_yaml
from fedray.platform.errors import ConfigError
from fedray.platform.registry import WORKLOADS

REPO = Path(__file__).resolve().parents[2]


def test_defaults_file_and_overrides_merge_in_order(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("seed: 5\nserver:\n  rounds: 7\nclients:\n  lr: 0.2\n")
    cfg = load_config(FederatedConfig, f, ["server.rounds=9", "model.widths=[4,8]"])
    assert isinstance(cfg, FederatedConfig)
    assert (cfg.seed, cfg.server.rounds, cfg.clients.lr, cfg.model.widths) == (5, 9, 0.2, [4, 8])
    assert cfg.clients.num_clients == FederatedConfig().clients.num_clients


def test_unknown_key_names_the_valid_keys():
    with pytest.raises(ConfigError) as err:
        load_config(FederatedConfig, None, ["server.roundz=3"])
    msg = str(err.value)
    assert "unknown config key 'server.roundz'" in msg
    assert "rounds" in msg and "round_timeout_s" in msg and "\n" not in msg


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown config key 'bogus'; valid keys: seed, resume, run, cluster"):
        load_config(FederatedConfig, None, ["bogus=1"])


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("server.rounds=many", "bad value for config key 'server.rounds'"),
        ("cluster.mode=remote", "bad value for config key 'cluster.mode'"),
        ("strategy=fedsgd", "bad value for config key 'strategy'"),
        ("clients.lr=fast", "bad value for config key 'clients.lr'"),
    ],
)
def test_wrong_value_type(override, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        load_config(FederatedConfig, None, [override])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("override", ["seed", "=3", "seed:3"])
def test_malformed_override(override):
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(FederatedConfig, None, [override])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(FederatedConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config(FederatedConfig, bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(FederatedConfig, listy)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["server.clients_per_round=9"], "server.clients_per_round must lie in 1..5"),
        (["server.min_clients=4", "server.clients_per_round=3"], "server.min_clients must lie in 1..3"),
        (["clients.epochs=0"], "clients.epochs must be at least 1"),
        (["strategy=krum", "clients.num_clients=4"], "krum needs at least"),
        (["strategy=trimmed_mean", "server.trim_fraction=0.5"], "server.trim_fraction"),
        (["model.shared=[]"], "model.shared is empty"),
        (["strategy=fedprox", "clients.prox_mu=0"], "strategy=fedprox needs clients.prox_mu > 0"),
        (["strategy=fedadam", "server.adam_betas=[0.9]"], "server.adam_betas must be two numbers"),
    ],
)
def test_cross_field_validation(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(FederatedConfig, None, overrides)


def test_every_config_file_loads_against_its_schema():
    files = sorted((REPO / "configs").glob("*.yaml"))
    assert files, "configs/ holds no workload configs"
    for path in files:
        workload = WORKLOADS[path.stem]
        load_config(workload.load_schema(), path)


def test_default_config_files_match_the_schemas():
    """configs/<workload>.yaml documents the defaults; it must not drift from the schema."""
    for name, workload in WORKLOADS.items():
        on_disk = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / f"{name}.yaml"))
        assert on_disk == OmegaConf.to_container(OmegaConf.create(to_yaml(workload.load_schema())))


TASK_WORKLOADS = sorted(n for n, w in WORKLOADS.items() if load_config(w.load_schema()).task_resources() is not None)


def test_every_workload_that_runs_tasks_declares_their_resources():
    expected = {"attack", "compose", "continual", "distill", "fairness", "fer", "ood", "purify", "sr"}
    assert set(TASK_WORKLOADS) == expected
    fairness = WORKLOADS["fairness"].load_schema()
    assert load_config(fairness, None, ["predictions_csv=p.csv"]).task_resources() is None  # computed in the driver


@pytest.mark.parametrize("workload", TASK_WORKLOADS)
@pytest.mark.parametrize("override", ["num_cpus=0", "num_gpus=-0.5"])
def test_a_task_request_ray_cannot_express_is_a_config_error(workload, override):
    with pytest.raises(ConfigError, match=r"^num_cpus must be positive and num_gpus non-negative, got"):
        load_config(WORKLOADS[workload].load_schema(), None, [override])
