"""Structured configuration: a dataclass schema per workload, YAML files and ``key=value`` overrides on top.

A workload's schema is a nested dataclass that extends :class:`WorkloadConfig` (so every workload accepts ``seed``,
``run.*`` and ``cluster.*``). :func:`load_config` merges, in order, the schema's defaults, an optional YAML file and
omegaconf dotlist overrides, then returns the dataclass instance. omegaconf checks keys and types; its exceptions are
turned into one-line :class:`ConfigError` messages that name the offending key and the valid alternatives.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)
from yaml import MarkedYAMLError, YAMLError

from fedray.platform.errors import ConfigError, DataError, require

RuntimeMode = Literal["inline", "local", "address"]


@dataclass
class RunSection:
    """Where results go: ``<root>/<workload>/<name>/``."""

    name: str = "default"
    root: str = "runs"


@dataclass
class ClusterSection:
    """Where the workload runs.

    ``inline`` runs actors as plain objects in this process (no Ray; breakpoints work), ``local`` starts Ray on this
    machine bound to 127.0.0.1, ``address`` joins a running cluster (``auto`` or ``ray://host:10001``).
    """

    mode: RuntimeMode = "local"
    address: str = "auto"
    num_cpus: int | None = None  # local mode: CPUs Ray may use (default: all of this machine's)
    num_gpus: int | None = None  # local mode: GPUs Ray may use (default: all visible)
    dashboard: bool = False  # the dashboard costs seconds of start-up; off unless asked


@dataclass
class WorkloadConfig:
    """Keys every workload accepts.

    ``resume``: continue the run in ``run.root/<workload>/run.name`` from its last complete checkpoint. Only the
    keys in ``RESUME_MAY_CHANGE`` (prefixes) may differ from the run's saved ``config.yaml``; anything else would
    make the continued run a different experiment.
    """

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("resume", "run.", "cluster.")  # where a run lives or runs

    seed: int = 0
    resume: bool = False
    run: RunSection = field(default_factory=RunSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)

    def validate(self) -> None:
        """Cross-field checks that types alone cannot express; raise :class:`ConfigError`."""

    def input_paths(self) -> dict[str, str | None]:
        """Files and folders the run reads by config key (checkpoints, an earlier run, a predictions CSV); unset
        ones are None. :func:`check_input_paths` makes sure they exist before the run writes anything, so a typo
        in the last input fails in one line instead of after the stages before it have trained."""
        return {}

    def task_resources(self) -> tuple[float, float] | None:
        """``(num_cpus, num_gpus)`` that each of the workload's tasks or actors asks the runtime for — the top-level
        ``num_cpus``/``num_gpus`` keys of a workload that declares them — or None when it runs no such tasks. Checked
        once for every workload (positive CPUs, non-negative GPUs; against the cluster before the run starts), so a
        request no node can grant fails with one line instead of waiting forever."""
        cpus, gpus = getattr(self, "num_cpus", None), getattr(self, "num_gpus", None)
        if cpus is None or gpus is None:
            return None
        return float(cpus), float(gpus)


def check_input_paths(cfg: WorkloadConfig) -> None:
    """One :class:`DataError` naming every input of :meth:`WorkloadConfig.input_paths` that does not exist."""
    missing = [
        f"{key} {path}" for key, path in cfg.input_paths().items() if path and not Path(path).expanduser().exists()
    ]
    if missing:
        raise DataError(f"{'; '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist")


def check_task_resources(cfg: WorkloadConfig) -> None:
    """The declared per-task resources must be a request Ray can express."""
    resources = cfg.task_resources()
    if resources is not None and (resources[0] <= 0 or resources[1] < 0):
        cpus, gpus = resources
        raise ConfigError(f"num_cpus must be positive and num_gpus non-negative, got {cpus:g}, {gpus:g}")


def check_placement(cfg: WorkloadConfig) -> None:
    """``run.name`` must name one folder under ``run.root/<workload>/`` (an empty name, ``..`` or a path would write
    over the workload's other runs or outside it), and a local cluster needs at least one CPU."""
    name = cfg.run.name
    if not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(f"run.name must be a plain folder name (no '/', not '.' or '..'), got {name!r}")
    c = cfg.cluster
    if (c.num_cpus is not None and c.num_cpus < 1) or (c.num_gpus is not None and c.num_gpus < 0):
        raise ConfigError(
            f"cluster.num_cpus must be at least 1 and cluster.num_gpus 0 or more, got {c.num_cpus} and {c.num_gpus}"
        )


def check_known(key: str, chosen: Iterable[str], known: Iterable[str], empty_ok: bool = False) -> None:
    """A ConfigError naming the entries of list ``key`` that are not in ``known`` (and the valid ones), or saying
    that it lists one twice or (unless ``empty_ok``) nothing: a run over no methods would report nothing."""
    known, chosen = list(known), list(chosen)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ConfigError(f"{key} has unknown entries {unknown}; choose from {', '.join(known)}")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"{key} lists an entry twice: {chosen}")
    if not chosen and not empty_ok:
        raise ConfigError(f"{key} is empty; choose from {', '.join(known)}")


_COUNTS = ("steps", "base_steps", "epochs", "batch_size", "log_every", "threads")
_RATES = ("lr", "base_lr")


def check_training(prefix: str, section: Any) -> None:
    """The usual training keys of a config section, those it has: counts and learning rates positive, ``min_lr``
    and ``weight_decay`` 0 or more with ``min_lr`` ≤ ``lr``, ``warmup`` at most ``steps``, ``ema`` in [0, 1)
    (a decay of 1 never leaves the initial weights)."""
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    require("positive", {f"{prefix}.{n}": values[n] for n in (*_COUNTS, *_RATES) if n in values})
    require("0 or more", {f"{prefix}.{n}": values[n] for n in ("min_lr", "weight_decay", "warmup") if n in values})
    if "min_lr" in values and values["min_lr"] > values["lr"]:
        raise ConfigError(f"{prefix}.min_lr={values['min_lr']} must not exceed {prefix}.lr={values['lr']}")
    if "warmup" in values and "steps" in values and values["warmup"] > values["steps"]:
        raise ConfigError(f"{prefix}.warmup={values['warmup']} is longer than {prefix}.steps={values['steps']}")
    if values.get("ema") is not None and not 0 <= values["ema"] < 1:
        raise ConfigError(f"{prefix}.ema (the weights' moving-average decay) must lie in [0, 1), got {values['ema']}")


C = TypeVar("C", bound=WorkloadConfig)


def _valid_keys(base: DictConfig, full_key: str) -> str:
    parent = full_key.rpartition(".")[0]
    node = OmegaConf.select(base, parent) if parent else base
    if isinstance(node, DictConfig):
        return ", ".join(str(k) for k in node)
    return ""


def _entries_of(base: DictConfig, type_name: str, prefix: str = "") -> tuple[str, list[str]] | None:
    """The key of the schema's list or mapping whose entries are the dataclass ``type_name`` (``motion``, ``steps``),
    and that dataclass's field names: OmegaConf names the entry's type but not where it sits."""
    for key in base:
        child = base._get_node(key)
        if not isinstance(child, (DictConfig, ListConfig)):
            continue
        entry = child._metadata.element_type
        if dataclasses.is_dataclass(entry) and entry.__name__ == type_name:
            return f"{prefix}{key}", [f.name for f in dataclasses.fields(entry)]
        if isinstance(child, DictConfig) and (found := _entries_of(child, type_name, f"{prefix}{key}.")):
            return found
    return None


def _unknown_key(exc: OmegaConfBaseException, base: DictConfig, full_key: str) -> str:
    """``unknown config key …; valid keys …``, also for a key inside an entry of a list or mapping of sections."""
    match = re.search(r"not in '(\w+)'", str(exc))
    entries = _entries_of(base, match.group(1)) if match else None
    if entries is not None:
        container, fields = entries
        if not full_key.startswith(f"{container}."):  # inside a list: OmegaConf gives the bare key
            return f"unknown config key '{full_key}' in an entry of '{container}'; valid keys: {', '.join(fields)}"
        return f"unknown config key '{full_key}'; valid keys under '{full_key.rpartition('.')[0]}': {', '.join(fields)}"
    where = full_key.rpartition(".")[0]
    scope = f" under '{where}'" if where else ""
    return f"unknown config key '{full_key}'; valid keys{scope}: {_valid_keys(base, full_key)}"


def _kind(value: Any) -> str:
    return "a mapping" if OmegaConf.is_dict(value) else "a list" if OmegaConf.is_list(value) else "a single value"


def _shape_mismatch(base: Any, layer: Any, prefix: str = "") -> str | None:
    """Where ``layer`` puts a mapping, a list or a single value in place of another kind, said in a sentence."""
    if not (OmegaConf.is_dict(base) and OmegaConf.is_dict(layer)):
        return None
    for key in layer:
        if key not in base or base.get(key) is None:
            continue  # unknown keys and unset optional values are judged by the merge itself
        expected, given = base.get(key), layer.get(key)
        if _kind(expected) != _kind(given):
            return f"config key '{prefix}{key}' takes {_kind(expected)}, got {_kind(given)}: {given}"
        found = _shape_mismatch(expected, given, f"{prefix}{key}.")
        if found:
            return found
    return None


def _one_line(exc: Exception, base: DictConfig, layers: list[DictConfig]) -> str:
    mismatch = next((m for layer in layers if (m := _shape_mismatch(base, layer))), None)
    if mismatch:  # OmegaConf names no key (or fails outright) when a list meets a mapping
        return mismatch
    if not isinstance(exc, OmegaConfBaseException):
        return f"invalid config: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    full_key = str(getattr(exc, "full_key", "") or "")
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, (ConfigKeyError, ConfigAttributeError)) and not isinstance(exc, MissingMandatoryValue):
        return _unknown_key(exc, base, full_key)
    if isinstance(exc, MissingMandatoryValue):
        return f"missing value for config key '{full_key}'"
    if isinstance(exc, ValidationError) and "is not Optional" in first_line:
        return f"config key '{full_key}' needs a value, got none (an empty entry or null)"
    if isinstance(exc, ValidationError) and "is not a ListConfig" in first_line:
        given = next((v for layer in reversed(layers) if (v := OmegaConf.select(layer, full_key)) is not None), None)
        return f"config key '{full_key}' takes a list, got a single value" + (
            f": {given!r}" if given is not None else ""
        )
    if isinstance(exc, ValidationError):
        return f"bad value for config key '{full_key}': {first_line}"
    return f"invalid config{f' at {full_key!r}' if full_key else ''}: {first_line}"


def _parse_overrides(overrides: list[str]) -> DictConfig:
    for item in overrides:
        key = item.partition("=")[0]
        if "=" not in item or not key.strip():
            raise ConfigError(f"override {item!r} must look like key=value (e.g. seed=1)")
        if not all(part.strip() for part in key.split(".")):
            raise ConfigError(f"override {item!r}: the key {key!r} has an empty part between dots")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except (OmegaConfBaseException, YAMLError) as exc:
        raise ConfigError(f"cannot parse overrides {overrides}: {str(exc).splitlines()[0]}") from None


def _parse_problem(exc: Exception) -> str:
    """What YAML could not parse, and where (line and column, 1-based), in one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if isinstance(exc, MarkedYAMLError) and mark is not None and problem:
        context = f" ({exc.context})" if exc.context else ""
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}{context}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _read_yaml(path: str | Path) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = OmegaConf.load(path)
    except (YAMLError, OmegaConfBaseException, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {_parse_problem(exc)}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not a list")
    return loaded


def load_config(
    schema: type[C],
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    text: str | None = None,
) -> C:
    """Defaults of ``schema`` ← YAML file (or YAML ``text``) ← dotlist overrides, validated; a ``schema`` instance."""
    base = OmegaConf.structured(schema)
    layers = []
    if config_file is not None:
        layers.append(_read_yaml(config_file))
    if text is not None:
        try:
            layers.append(OmegaConf.create(text))
        except (YAMLError, OmegaConfBaseException) as exc:
            raise ConfigError(f"cannot parse config text: {_parse_problem(exc)}") from None
    if overrides:
        layers.append(_parse_overrides(list(overrides)))
    try:
        merged = OmegaConf.merge(base, *layers)
        cfg = OmegaConf.to_object(merged)
    except (OmegaConfBaseException, TypeError) as exc:  # TypeError: a list merged into a mapping, or back
        raise ConfigError(_one_line(exc, base, layers)) from None
    assert isinstance(cfg, schema)
    check_task_resources(cfg)
    check_placement(cfg)
    cfg.validate()
    return cfg


def to_yaml(cfg: WorkloadConfig | type[WorkloadConfig]) -> str:
    """The config (or a schema's defaults) as YAML, the same text ``config.yaml`` in a run directory holds."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: WorkloadConfig) -> dict[str, Any]:
    """A plain nested dict (for Ray arguments, metrics and job submission)."""
    return dataclasses.asdict(cfg)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict as ``{"a.b.c": leaf}``: dotted keys, as overrides name them."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resume_differences(saved: WorkloadConfig, current: WorkloadConfig) -> list[str]:
    """``key: saved -> current`` for every key that differs and that a resumed run must keep."""
    before, after = flatten(to_dict(saved)), flatten(to_dict(current))
    return [
        f"{key}: {before.get(key)!r} -> {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key) and not key.startswith(current.RESUME_MAY_CHANGE)
    ]
