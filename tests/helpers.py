"""Test doubles: clients that fail, stall or send garbage, for exercising the parameter server."""

from __future__ import annotations

import time

import numpy as np

from fedray.platform.messages import EvalResult, FitResult

REFERENCE = {"w": np.zeros((2, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}


class ScriptedClient:
    """A client whose update is ``global + delta`` (``delta`` a constant), or a scripted misbehaviour.

    ``behaviour``: ``"ok"``, ``"nan"``, ``"scaled"`` (100× delta), ``"raise"``, ``"slow"`` (sleeps ``delay`` s),
    ``"wrong_shape"``, ``"wrong_dtype"``, ``"missing_key"``, ``"not_a_result"``.
    """

    def __init__(self, client_id: int, delta: float, behaviour: str = "ok", n: int = 10, delay: float = 0.0):
        self.client_id, self.delta, self.behaviour, self.n, self.delay = client_id, delta, behaviour, n, delay
        self.fit_calls = 0

    def fit(self, shared, round_idx):
        self.fit_calls += 1
        arrays = {k: (v + self.delta).astype(v.dtype) for k, v in shared.items()}
        b = self.behaviour
        if b == "raise":
            raise RuntimeError(f"client {self.client_id} crashed")
        if b == "slow":
            time.sleep(self.delay)
        if b == "nan":
            arrays["w"][0, 0] = np.nan
        if b == "scaled":
            arrays = {k: shared[k] + 100 * self.delta * np.ones_like(v) for k, v in arrays.items()}
        if b == "wrong_shape":
            arrays["w"] = np.zeros((3, 3), dtype=np.float32)
        if b == "wrong_dtype":
            arrays["w"] = arrays["w"].astype(np.float64)
        if b == "missing_key":
            del arrays["b"]
        if b == "not_a_result":
            return {"arrays": arrays}
        return FitResult(self.client_id, arrays, self.n, {"train_loss": 1.0})

    def evaluate(self, shared, round_idx):
        return EvalResult(self.client_id, self.n, {"acc": float(shared["b"][0]), "loss": 0.0})

    def calls(self) -> int:
        return self.fit_calls


def corrupted_client(mode: str):
    """A real :class:`FederatedClient` that trains honestly but sends NaN (``"nan"``) or its update scaled by 100
    (``"scaled"``) to the server."""
    from fedray.clients.federated_client import FederatedClient

    class CorruptedClient(FederatedClient):
        def fit(self, shared, round_idx):
            result = super().fit(shared, round_idx)
            if mode == "nan":
                result.arrays = {k: np.full_like(v, np.nan) for k, v in result.arrays.items()}
            else:
                result.arrays = {k: shared[k] + 100 * (v - shared[k]) for k, v in result.arrays.items()}
            return result

    return CorruptedClient


def inline_and_ray(workload: str, overrides: list[str], root) -> tuple[dict, dict]:
    """The workload's metrics run inline, then on the shared local Ray cluster, with the same overrides (each in its
    own run folder under ``root``): the two summaries, checked to name the runtime they ran on."""
    from fedray.cluster.launch import resolve_config, run_workload

    results = {}
    for mode in ("inline", "local"):
        cfg = resolve_config(workload, overrides=[*overrides, f"cluster.mode={mode}", f"run.name={mode}",
                                                  f"run.root={root}"])  # fmt: skip
        results[mode], _ = run_workload(workload, cfg)
        assert results[mode]["runtime"] == mode
    return results["inline"], results["local"]


COMPOSE_TINY = [  # a compose run of a few seconds: every stage, every method
    "data.image_size=16",
    "data.train_triplets=24",
    "data.test_triplets=4",
    "model.model_channels=8",
    "model.num_heads=1",
    "model.attention_resolutions=[8]",
    "cross_attention_resolutions=[8,4]",
    "tokens.widths=[8,16]",
    "tokens.stages=[stage1,stage2]",
    "tokens.dim=16",
    "tokens.heads=2",
    "tokens.encoder_steps=2",
    "train.base_steps=2",
    "train.steps=3",
    "train.batch_size=4",
    "train.log_every=1",
    "diffusion.sample_steps=2",
]

ATTACK_TINY = [  # an attack run of a few seconds: both victims, every attack family
    "data.image_size=16",
    "data.test_images=8",
    "data.test_faces=10",
    "data.forgery.train_per_class=16",
    "victims.cnn.model.widths=[4,8]",
    "victims.resnet.model.widths=[4,8]",
    "victims.cnn.epochs=1",
    "victims.resnet.epochs=1",
    "asma.steps=2",
    "asma.batch_size=4",
    "baselines.steps=2",
]

FAIRNESS_TINY = [  # a fairness run of a few seconds: two seeds of a small detector
    "seeds=[0,1]",
    "detector.epochs=1",
    "detector.model.widths=[8,16]",
    "faces.forgery.train_per_class=32",
    "evaluation.per_cell=8",
    "evaluation.calibration_per_cell=6",
]

CONTINUAL_TINY = [  # a continual run of seconds: five tasks of tiny digits on a random one-block backbone
    "data.image_size=16",
    "data.class_order=[0,1,2,3,4,5,6,7,8,9]",
    "data.tasks=5",
    "data.train_per_class=40",
    "model.d_model=16",
    "model.d_state=4",
    "model.dt_rank=2",
    "model.depth=1",
    "model.group_norm=8",
    "pretrain.enabled=false",  # the pre-training tests turn it on; the rest start from the same random backbone
    "train.epochs=6",
    "train.lr=5e-3",
    "train.batch_size=32",
]

OOD_TINY = [  # an ood run of seconds: digits in-distribution, a small encoder and feature network
    "data.id=digits",
    "encoder.widths=[8,16,32,64]",
    "encoder.epochs=2",
    "lfdn.epochs=2",
    "lfdn.depth=2",
    "lfdn.width=64",
    "ood.texture_crops=100",
    "ood.noise_samples=60",
    "ood.max_per_set=100",
    "inference.batch_size=256",
    "inference.throughput_samples=100",
    "baselines.knn_k=10",
]

PURIFY_TINY = [  # a purify run of seconds: 16-pixel slices, a one-block UNet
    "data.image_size=16",
    "data.test_slices=4",
    "data.test_volume=none",  # the same held-out split with or without mricron-data installed
    "model.model_channels=8",
    "model.channel_mult=[1,2]",
    "model.attention_resolutions=[8]",
    "model.num_res_blocks=1",
    "train.steps=6",
    "train.log_every=3",
    "diffusion.sample_steps=5",
]

FER_TINY = [  # a fer run of seconds: 16-pixel digits standing in for expressions
    "data.source=digits",
    "data.image_size=16",
    "data.train_samples=420",
    "data.test_samples=140",
    "model.widths=[8,16,32,64]",
    "model.blocks=1",
    "train.epochs=2",
]
