"""Named training presets: src/soritune/presets/NAME.yaml (published setups; each file's header names its
source and the published figures).

A preset is a partial TrainConfig; `soritune train --preset NAME` uses it as the base that a config
file, flags and --set override. Presets name a hub model; --model replaces it (e.g. offline).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from soritune.config import read_yaml
from soritune.errors import ConfigError


def presets_dir() -> Path:
    return Path(str(resources.files("soritune"))) / "presets"


def list_presets() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def load_preset(name: str) -> dict:
    """The preset's fields as a dict; an unknown name raises ConfigError listing the known ones."""
    path = presets_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"preset: unknown preset {name!r}; known presets: {', '.join(list_presets())}")
    return read_yaml(path)


def describe_preset(name: str) -> str:
    """The comment lines at the top of the preset file (what it reproduces and the published figure)."""
    path = presets_dir() / f"{name}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return " ".join(line.lstrip("# ").strip() for line in lines if line.startswith("#"))
