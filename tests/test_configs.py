"""The user recipes in configs/ are valid training configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from soritune.config import load_config
from soritune.train.config import TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


def test_there_are_recipes():
    assert len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_recipe_is_a_valid_train_config(path):
    cfg = load_config(TrainConfig, path)
    assert cfg.method in ("qlora4", "qlora8") and cfg.lora_r == 32 and cfg.target == "qv"
    assert "soritune prepare" in path.read_text() and "soritune eval" in path.read_text()
