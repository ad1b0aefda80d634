import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fedray.cluster.federation_config import FederatedConfig
from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.config import load_config, to_yaml
from fedray.platform.errors import ConfigError, DataError
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
    with pytest.raises(ConfigError, match=r"cannot parse config file .*bad\.yaml: .* at line 2, column 1 \("):
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
        (["data.test_fraction=1.5"], "data.test_fraction must lie in (0, 1), got 1.5"),
        (["data.alpha=0"], "data.alpha (the Dirichlet concentration) must be positive"),
        (["data.image_size=0", "data.max_samples=0"], "these must be positive: data.image_size=0, data.max_samples=0"),
        (["model.widths=[0]"], "model.widths must be one or more positive channel counts, got [0]"),
        (["model.widths=[]"], "model.widths must be one or more positive channel counts, got []"),
        (["model.pfr_loss_weights=[1,1]"], "model.pfr_loss_weights must be three weights"),
        (["clients.momentum=-3"], "clients.momentum must lie in [0, 1)"),
        (["clients.weight_decay=-1"], "clients.weight_decay and clients.head_epochs be 0 or more"),
        (["server.max_update_norm=-5"], "these must be positive: server.max_update_norm=-5.0"),
        (["clients.pool_size=0", "clients.startup_timeout_s=0"], "clients.pool_size=0, clients.startup_timeout_s"),
        (["strategy=fedadam", "server.adam_tau=0"], "server.adam_tau=0.0"),
        (["strategy=krum", "server.num_byzantine=-1"], "these must be 0 or more: server.num_byzantine=-1"),
        (["run.name=.."], "run.name must be a plain folder name"),
        (["run.name=a/b"], "run.name must be a plain folder name"),
        (["cluster.num_cpus=0"], "cluster.num_cpus must be at least 1"),
    ],
)
def test_cross_field_validation(overrides, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(FederatedConfig, None, overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("server=5", "config key 'server' takes a mapping, got a single value: 5"),
        ("server=[1,2]", "config key 'server' takes a mapping, got a list: [1, 2]"),
        ("model.widths=5", "config key 'model.widths' takes a list, got a single value: 5"),
        ("server.rounds=[1]", "config key 'server.rounds' takes a single value, got a list: [1]"),
        ("server.=3", "override 'server.=3': the key 'server.' has an empty part between dots"),
        ("server..rounds=3", "the key 'server..rounds' has an empty part between dots"),
    ],
)
def test_a_value_of_the_wrong_shape_names_its_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(FederatedConfig, None, [override])


def test_a_file_with_a_list_where_a_section_goes_names_the_section(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("data: [1, 2]\n")
    with pytest.raises(ConfigError, match=re.escape("config key 'data' takes a mapping, got a list: [1, 2]")):
        load_config(FederatedConfig, file)


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


@pytest.mark.parametrize(
    ("workload", "overrides", "message"),
    [
        ("purify", ["train.batch_size=0"], "these must be positive: train.batch_size=0"),
        ("purify", ["train.log_every=0"], "these must be positive: train.log_every=0"),
        ("purify", ["train.ema=1"], "train.ema (the weights' moving-average decay) must lie in [0, 1), got 1.0"),
        ("purify", ["data.axis=3"], "data.axis must be 0, 1 or 2"),
        ("purify", ["data.test_every=0"], "these must be positive: data.test_every=0"),
        ("purify", ["methods=[]"], "methods is empty; choose from"),
        ("purify", ["methods=[pfad,pfad]"], "methods lists an entry twice: ['pfad', 'pfad']"),
        ("sr", ["train.warmup=100", "train.steps=4"], "train.warmup=100 is longer than train.steps=4"),
        ("sr", ["train.min_lr=1"], "train.min_lr=1.0 must not exceed train.lr=0.0002"),
        ("sr", ["model.window=3"], "model.window=3 must tile every level's map"),
        ("sr", ["model.embed_dim=30", "model.num_heads=4"], "model.embed_dim=30 must be divisible by model.num_heads"),
        (
            "sr",
            ["data.jpeg_quality=[0,200]"],
            "data.jpeg_quality must be a range [low, high] with 1 ≤ low ≤ high ≤ 100",
        ),
        ("sr", ["eval_batch_size=0"], "these must be positive: eval_batch_size=0"),
        ("distill", ["variants=[]"], "variants is empty"),
        ("distill", ["train.lr=0"], "these must be positive: train.lr=0.0"),
        ("distill", ["losses.gan_weight=-1"], "these must be 0 or more: losses.gan_weight=-1.0"),
        ("compose", ["diffusion.eta=5"], "diffusion.eta (DDIM's noise: 0 deterministic, 1 DDPM-like) must lie in"),
        ("compose", ["cross_attention_resolutions=[]"], "cross_attention_resolutions is empty"),
        ("compose", ["data.image_size=0"], "these must be positive: data.image_size=0"),
        ("compose", ["tokens.dim=0"], "these must be positive: tokens.dim=0"),
        ("compose", ["train.base_lr=0"], "these must be positive: train.base_lr=0.0"),
        ("ood", ["inference.eta=5"], "inference.eta (DDIM's noise) must lie in [0, 1], got 5.0"),
        ("ood", ["encoder.lr=-1"], "these must be positive: encoder.lr=-1.0"),
        ("ood", ["lfdn.weight_decay=-1"], "these must be 0 or more: lfdn.weight_decay=-1.0"),
        ("fairness", ["detector.weight_decay=-1"], "these must be 0 or more: detector.weight_decay=-1.0"),
        ("fairness", ["pruning.rates_percent=[]"], "pruning.enabled needs pruning.rates_percent and pruning.scores"),
        (
            "federated",
            ["data.forgery.blur_sigma=[3,1]"],
            "data.forgery.blur_sigma must be a range [low, high] with 0 ≤ low ≤ high, got [3.0, 1.0]",
        ),
        (
            "federated",
            ["data.forgery.resample_factor=[0,0.5]"],
            "data.forgery.resample_factor must be a range [low, high] with 0 < low ≤ high ≤ 1, got [0.0, 0.5]",
        ),
        (
            "federated",
            ["data.forgery.jpeg_quality=[0,500]"],
            "data.forgery.jpeg_quality must be a range [low, high] with 1 ≤ low ≤ high ≤ 100",
        ),
        ("federated", ["data.forgery.blend=[5,6]"], "data.forgery.blend must be a range [low, high] with 0 ≤ low"),
        ("federated", ["data.forgery.blur_sigma=[1]"], "data.forgery.blur_sigma must be a range [low, high]"),
        ("federated", ["data.forgery.scale=[0,0]"], "data.forgery.scale must be a range [low, high] with 0 < low"),
        ("federated", ["data.forgery.noise_sigma=-1"], "these must be 0 or more: data.forgery.noise_sigma=-1.0"),
        ("federated", ["data.forgery.label_alpha=0"], "these must be positive: data.forgery.label_alpha=0.0"),
        ("fairness", ["faces.forgery.blur_sigma=[3,1]"], "faces.forgery.blur_sigma must be a range [low, high]"),
        ("attack", ["data.forgery.blur_sigma=[3,1]"], "data.forgery.blur_sigma must be a range [low, high]"),
        (
            "purify",
            ["diffusion.steps=20", "diffusion.sample_steps=10"],
            "diffusion.steps=20 is too few for the linear schedule: its largest β is 1",
        ),
        (
            "compose",
            ["diffusion.steps=10", "diffusion.sample_steps=10"],
            "diffusion.steps=10 is too few for the linear schedule: its largest β is 2",
        ),
        ("sr", ["resshift.power=0"], "these must be positive: resshift.power=0.0"),
        ("sr", ["resshift.min_noise_level=0"], "these must be positive: resshift.min_noise_level=0.0"),
        (
            "sr",
            ["resshift.min_noise_level=3"],
            "the first step's √η = min(min_noise_level/kappa, min_noise_level) = 1.5",
        ),
        (
            "fer",
            ["augment.erase_scale=[0.5,1]"],
            "augment.erase_scale must be a range [low, high] with 0 < low ≤ high < 1",
        ),
    ],
)
def test_training_and_size_values_no_run_can_have(workload, overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config(workload, None, overrides)


def test_inputs_that_do_not_exist_are_named_in_one_line_before_the_run_starts(tmp_path):
    overrides = [f"run.root={tmp_path}", f"checkpoints.dit_sr={tmp_path / 'a.safetensors'}",
                 f"checkpoints.bicubic={tmp_path / 'b.safetensors'}", "cluster.mode=inline"]  # fmt: skip
    both = f"checkpoints.dit_sr {tmp_path / 'a.safetensors'}; checkpoints.bicubic {tmp_path / 'b.safetensors'}"
    with pytest.raises(DataError, match=re.escape(f"{both} do not exist")):
        run_workload("sr", resolve_config("sr", overrides=overrides))
    assert not (tmp_path / "sr").exists()


def test_an_unknown_key_inside_a_list_entry_names_the_list_and_the_entry_keys():
    message = "unknown config key 'shft' in an entry of 'motion'; valid keys: name, shift, rotation, clean_band"
    with pytest.raises(ConfigError, match=re.escape(message)):
        resolve_config("purify", None, ["motion=[{name: mild, shft: 1}]"])
