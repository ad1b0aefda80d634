import numpy as np
import pytest

from fedray.platform import io as fio
from fedray.platform.errors import DataError


def test_save_and_load_round_trip(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(2, dtype=np.int64)}
    fio.save_arrays(tmp_path / "c.safetensors", arrays, {"round": "3"})
    back = fio.load_arrays(tmp_path / "c.safetensors")
    assert set(back) == {"a", "b"}
    np.testing.assert_array_equal(back["a"], arrays["a"])
    assert back["b"].dtype == np.int64


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    fio.save_arrays(path, {"a": np.zeros(3, dtype=np.float32)})

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(fio, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        fio.save_arrays(path, {"a": np.ones(3, dtype=np.float32)})
    np.testing.assert_array_equal(fio.load_arrays(path)["a"], np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temporary file left behind


def test_missing_and_corrupt_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="checkpoint not found"):
        fio.load_arrays(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match="cannot read checkpoint"):
        fio.load_arrays(bad)


def test_strip_wrapper_prefixes():
    keys = {"_module.encoder.w": 1, "_module._orig_mod.head.b": 2, "plain": 3}
    assert fio.strip_wrapper_prefixes(keys) == {"encoder.w": 1, "head.b": 2, "plain": 3}


def test_save_json_handles_numpy(tmp_path):
    fio.save_json(tmp_path / "m.json", {"x": np.float32(0.5), "v": np.arange(2)})
    assert (tmp_path / "m.json").read_text().count("0.5") == 1
