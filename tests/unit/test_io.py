import re

import numpy as np
import pytest

from fedray.platform import io as fio
from fedray.platform.errors import DataError
from fedray.platform.rundir import RunDir


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


def test_a_log_line_cut_short_at_the_end_is_left_out_and_one_in_the_middle_is_an_error(tmp_path):
    run_dir = RunDir.create(tmp_path, "w", "r")
    run_dir.start_log()
    run_dir.log({"round": 1})
    run_dir.log({"round": 2})
    with open(run_dir.metrics_log, "a") as f:
        f.write('{"round": 3, "los')  # the process died while appending
    assert run_dir.records() == [{"round": 1}, {"round": 2}] and run_dir.read_log(5) == [{"round": 1}, {"round": 2}]
    run_dir.keep_log(lambda r: r["round"] == 2)
    assert run_dir.metrics_log.read_text() == '{"round": 2}\n'
    text = '{"round": 1}\nnot json\n{"round": 3}\n'
    run_dir.metrics_log.write_text(text)
    with pytest.raises(DataError, match=re.escape(f"{run_dir.metrics_log}, line 2: not a JSON record")):
        run_dir.read_log(5)
    assert run_dir.metrics_log.read_text() == text
