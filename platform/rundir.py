"""The run directory every workload writes: ``<root>/<workload>/<name>/``.

Layout: ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one line per round/epoch, appended and flushed as
it happens), ``metrics.json`` (the summary, written atomically at the end), ``checkpoints/*.safetensors`` (and
``checkpoints/clients/``, where federated clients keep their personal state) and ``plots/*.png``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import atomic_write, json_line, save_arrays, save_json


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, root: str | Path, workload: str, name: str) -> RunDir:
        path = Path(root) / workload / name
        try:
            (path / "checkpoints").mkdir(parents=True, exist_ok=True)
            (path / "plots").mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError, PermissionError) as error:
            raise ConfigError(f"run.root={root}: cannot make the run folder {path} ({error.strerror})") from None
        return cls(path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_log(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_file(self) -> Path:
        return self.path / "metrics.json"

    def checkpoint(self, name: str) -> Path:
        return self.path / "checkpoints" / f"{name}.safetensors"

    @property
    def client_states(self) -> Path:
        return self.path / "checkpoints" / "clients"

    def plot(self, name: str) -> Path:
        return self.path / "plots" / f"{name}.png"

    def write_config(self, yaml_text: str) -> None:
        self.config_file.write_text(yaml_text)

    def start_log(self) -> None:
        """Begin a fresh metrics log (a new run with the same name replaces the old log)."""
        self.metrics_log.write_text("")

    def read_log(self, upto: int, key: str = "round") -> list[dict[str, Any]]:
        """The logged records whose ``key`` (round, task, …) is at most ``upto`` (a resume drops what came after the
        checkpoint)."""
        return [r for r in self.records() if r.get(key, 0) <= upto]

    def keep_log(self, keep: Callable[[dict[str, Any]], bool]) -> None:
        """Keep only the logged records ``keep`` accepts (a resume keeps those of the work it reuses and logs what it
        recomputes again)."""
        self.restart_log([r for r in self.records() if keep(r)])

    def records(self) -> list[dict[str, Any]]:
        """The log's records. A last line cut short (being appended now, or the process died appending it) is left
        out; any other line that is not JSON is a one-line error naming the file and line, and the file is left as
        it is."""
        if not self.metrics_log.is_file():
            return []
        lines = [(i, line) for i, line in enumerate(self.metrics_log.read_text().splitlines(), 1) if line.strip()]
        records = []
        for position, (number, line) in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                if position == len(lines) - 1:
                    break  # an append the process did not finish: that record never happened
                raise DataError(f"{self.metrics_log}, line {number}: not a JSON record ({error.msg})") from None
        return records

    def restart_log(self, records: list[dict[str, Any]]) -> None:
        """Replace the log with ``records`` (atomically), then append as usual."""
        atomic_write(self.metrics_log, lambda tmp: Path(tmp).write_text("".join(json_line(r) + "\n" for r in records)))

    def log(self, record: Mapping[str, Any]) -> None:
        with open(self.metrics_log, "a") as f:
            f.write(json_line(dict(record)) + "\n")
            f.flush()

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        save_json(self.summary_file, dict(summary))

    def save_checkpoint(self, name: str, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> Path:
        path = self.checkpoint(name)
        save_arrays(path, arrays, {k: str(v) for k, v in metadata.items()})
        return path

    def save_trained(self, name: str, state: Mapping[str, np.ndarray], info: dict[str, Any], label: str) -> None:
        """Checkpoint a model a task just trained (``checkpoints/<name>.safetensors``), log its loss curve as
        ``{"phase": "train", label: name, **point}`` records, and mark ``info`` as trained in this run."""
        self.save_checkpoint(name, state, {"steps": info.get("steps", "")})
        for point in info.get("loss_curve", []):
            self.log({"phase": "train", label: name, **point})
        info["source"] = "trained in this run"
