"""Checkpoint and file I/O that never leaves a half-written file behind.

Checkpoints are safetensors files of named arrays. They are written to a temporary file in the same folder and then
renamed over the target (``os.replace`` is atomic on POSIX), so an interrupted run keeps its previous complete
checkpoint. Parameter names are an interface (shared/personal patterns match on them), so wrapper prefixes that
opacus (``_module.``) or ``torch.compile`` (``_orig_mod.``) add are stripped here and nowhere else.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

from fedray.platform.errors import DataError

WRAPPER_PREFIXES = ("_module.", "_orig_mod.", "module.")


def strip_wrapper_prefixes(names_to_values: Mapping[str, Any]) -> dict[str, Any]:
    """Remove wrapper prefixes from every key, repeatedly (opacus around compile gives two)."""
    out: dict[str, Any] = {}
    for key, value in names_to_values.items():
        changed = True
        while changed:
            changed = False
            for prefix in WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    changed = True
        out[key] = value
    return out


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
    """Atomically write named arrays (and string metadata) to a safetensors file."""
    contiguous = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    atomic_write(Path(path), lambda tmp: save_file(contiguous, tmp, metadata=dict(metadata or {})))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read a safetensors file written by :func:`save_arrays`; a missing or corrupt file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"cannot read checkpoint {path}: {exc}") from None


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """One array from a ``.npy`` file, never unpickling; a file that is not one is a one-line error naming ``what``
    (numpy's own message points at ``allow_pickle``, which is not the user's problem to solve)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = "not a .npy array (random bytes, or pickled objects)" if "pickle" in str(exc) else str(exc)
        raise DataError(f"{what}={path} is not a readable .npy array: {reason.splitlines()[0]}") from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata stored with :func:`save_arrays` (empty when there is none)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"cannot read checkpoint {path}: {exc}") from None


def save_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
            f.write("\n")

    atomic_write(Path(path), write)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_line(obj: Any) -> str:
    """One JSON object on one line, with numpy scalars converted."""
    return json.dumps(obj, default=_json_default)
