"""Typed configs <-> YAML, `--set key=value` overrides, run-dir creation.

Every stage defines one pydantic model (fields documented in one line each, choices as Literal).
`load_config(Model, path, overrides)` merges file < overrides, validates, and turns pydantic's
errors into one message that names the field and the accepted values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from soritune.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


class StageConfig(BaseModel):
    """Base for stage configs: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def parse_value(text: str) -> Any:
    """`--set` values are YAML scalars: 3 -> int, 1e-4 -> float, true -> bool, [a,b] -> list."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and value.lower() in {"none", "null"}:
        return None
    # yaml reads 1e-4 as a string; try float
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply `a.b=value` strings to a nested dict (a copy)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
        node[parts[-1]] = parse_value(raw.strip())
    return out


def _section_model(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The (nested) config model that owns the last key of `loc` (e.g. TrainConfig.augment)."""
    for part in loc[:-1]:
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            break
        model = info.annotation
    return model


def format_validation_error(model: type[BaseModel], err: ValidationError) -> str:
    """One line per bad field: `field: message (allowed: ...)`."""
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            known = ", ".join(sorted(_section_model(model, tuple(e["loc"])).model_fields))
            msg = f"unknown field (known fields: {known})"
        elif e["type"] == "literal_error" and "expected" in e.get("ctx", {}):
            msg = f"invalid value {e.get('input')!r}; allowed: {e['ctx']['expected']}"
        lines.append(f"{field}: {msg}")
    return f"invalid {model.__name__}: " + "; ".join(lines)


def validate(model: type[T], data: dict[str, Any]) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(model, e)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level")
    return data


def load_config(
    model: type[T],
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
    **fields: Any,
) -> T:
    """base (e.g. a preset) < YAML file < explicit fields (CLI flags that were given) < --set."""
    data: dict[str, Any] = dict(base or {})
    if path:
        data.update(read_yaml(path))
    data.update({k: v for k, v in fields.items() if v is not None})
    data = apply_overrides(data, overrides)
    return validate(model, data)


def save_config(config: BaseModel, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    from soritune.jsonio import atomic_write_text, to_jsonable

    text = yaml.safe_dump(to_jsonable(config), sort_keys=False, allow_unicode=True)
    return atomic_write_text(path, text)


def make_run_dir(path: str | Path, exist_ok: bool = True) -> Path:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run dir {path} exists and is not a directory")
    if path.exists() and not exist_ok and any(path.iterdir()):
        raise ConfigError(f"run dir {path} is not empty (use a new --out or --resume)")
    path.mkdir(parents=True, exist_ok=True)
    return path
