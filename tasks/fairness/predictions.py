"""Per-sample predictions read from a CSV, for fairness metrics of any detector without running it here.

Columns (header required, any order, extra columns ignored): ``label`` (0 real, 1 fake), ``method`` (the forgery
method's name; ignored on real rows, which may leave it empty), ``group`` (any name), and ``score`` (P(fake), called
fake at ``score >= threshold``) or ``pred`` (0/1). Methods and groups are numbered in sorted order — numerically
when every name is an integer.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedray.platform.errors import DataError

REQUIRED = ("label", "method", "group")


@dataclass(frozen=True)
class Predictions:
    """Per-sample arrays (methods and groups as indices into the name lists); ``scores`` is None for ``pred`` files."""

    labels: np.ndarray
    methods: np.ndarray
    groups: np.ndarray
    scores: np.ndarray | None
    preds: np.ndarray | None
    method_names: list[str]
    group_names: list[str]


def _order(names: set[str]) -> list[str]:
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


def _binary(value: str, what: str, where: str) -> int:
    if value.strip() not in ("0", "1"):
        raise DataError(f"{where}: {what} must be 0 or 1, got {value!r}")
    return int(value)


def read_predictions(path: str | Path) -> Predictions:
    """The CSV's samples; a missing file, a missing column or a malformed row is a one-line :class:`DataError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"predictions_csv {path} {'is a folder, not a CSV file' if path.is_dir() else 'does not exist'}"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except UnicodeDecodeError as error:
        raise DataError(f"predictions_csv {path} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [c for c in REQUIRED if c not in header]
        if missing or not ({"score", "pred"} & set(header)):
            raise DataError(
                f"{path}: the header must name label, method, group and score (or pred); got {','.join(header)}"
            )
        value_key = "score" if "score" in header else "pred"
        labels, methods, groups, values = [], [], [], []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row or any(row.get(c) is None for c in (*REQUIRED, value_key)):
                raise DataError(f"{where}: expected {len(header)} fields ({','.join(header)}), got a short/long row")
            label = _binary(row["label"], "label", where)
            method, group = row["method"].strip(), row["group"].strip()
            if label == 1 and not method:
                raise DataError(f"{where}: a fake row needs its method")
            if not group:
                raise DataError(f"{where}: empty group")
            raw = row[value_key].strip()
            if value_key == "pred":
                value = float(_binary(raw, "pred", where))
            else:
                try:
                    value = float(raw)
                except ValueError:
                    raise DataError(f"{where}: score must be a number, got {raw!r}") from None
                if not math.isfinite(value):
                    raise DataError(f"{where}: score must be finite, got {raw!r}")
            labels.append(label)
            methods.append(method if label == 1 else "")
            groups.append(group)
            values.append(value)
    if not labels:
        raise DataError(f"{path} holds no rows")
    method_names = _order({m for m in methods if m})
    if not method_names or 0 not in labels:
        raise DataError(f"{path} needs both real (label 0) and fake (label 1) rows")
    group_names = _order(set(groups))
    m_index = {name: i for i, name in enumerate(method_names)}
    g_index = {name: i for i, name in enumerate(group_names)}
    arr = np.asarray(values, dtype=np.float64)
    return Predictions(
        np.asarray(labels, dtype=np.int64),
        np.asarray([m_index.get(m, -1) for m in methods], dtype=np.int64),
        np.asarray([g_index[g] for g in groups], dtype=np.int64),
        arr if value_key == "score" else None,
        arr.astype(np.int64) if value_key == "pred" else None,
        method_names,
        group_names,
    )
