"""adapter and quantization are separate axes; `method` stays as a preset alias; builders come by name."""

from __future__ import annotations

import pytest

from soritune.errors import ConfigError
from soritune.train.config import TrainConfig
from soritune.train.methods import ADAPTERS, METHOD_PRESETS

BASE = dict(model="tiny:", train="t.jsonl", out="o")


def _cfg(**kw) -> TrainConfig:
    from soritune.config import validate

    return validate(TrainConfig, {**BASE, **kw})


@pytest.mark.parametrize("method", list(METHOD_PRESETS))
def test_every_preset_alias_sets_both_axes(method):
    cfg = _cfg(method=method)
    assert (cfg.adapter, cfg.quantization) == METHOD_PRESETS[method] and cfg.method == method
    assert cfg.uses_adapter == (cfg.adapter != "full")


def test_axes_combine_beyond_the_presets():
    cfg = _cfg(adapter="dora", quantization="4bit")  # DoRA on an NF4 base: no preset names it
    assert cfg.method is None and cfg.adapter == "dora" and cfg.quantization == "4bit"
    assert _cfg(adapter="lora", quantization="8bit").method == "qlora8"  # the pair a preset names
    assert _cfg().method == "lora"


@pytest.mark.parametrize("fields,message", [
    ({"method": "qlora4", "adapter": "dora"}, "method=qlora4 means adapter='lora'"),
    ({"method": "lora", "quantization": "8bit"}, "method=lora means quantization=None"),
    ({"method": "qlora2"}, "method: invalid value 'qlora2'; allowed: 'full', 'lora', 'qlora8', 'qlora4' or 'dora'"),
    ({"adapter": "ia3"}, "adapter: invalid value 'ia3'; allowed: 'full', 'lora', 'dora'"),
    ({"adapter": "full", "quantization": "4bit"}, "quantization applies to adapter training"),
])
def test_contradictions_are_refused_by_name(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _cfg(**fields)


def test_a_saved_config_round_trips(tmp_path):
    """config.yaml holds method, adapter and quantization together; reading it back must not conflict."""
    from soritune.config import read_yaml, save_config

    cfg = _cfg(method="qlora8")
    save_config(cfg, tmp_path / "c.yaml")
    again = _cfg(**read_yaml(tmp_path / "c.yaml"))
    assert (again.adapter, again.quantization, again.method) == ("lora", "8bit", "qlora8")


def test_dora_on_an_8bit_base_builds(tiny):
    from soritune.train.adapters import build_model

    built = build_model(_cfg(adapter="dora", quantization="8bit", target="qv"))
    names = [n for n, _ in built.model.named_parameters()]
    assert any("lora_magnitude_vector" in n for n in names)  # DoRA's magnitude
    assert getattr(built.model.get_base_model(), "is_loaded_in_8bit", False)
    assert built.info["adapter"] == "dora" and built.info["quantization"] == "8bit"
    assert 0 < built.trainable_params < built.total_params


def test_builders_are_the_registry():
    assert {"full", "lora", "dora"} <= set(ADAPTERS)
    assert all(callable(b) for b in ADAPTERS.values())
    assert {a for a, _ in METHOD_PRESETS.values()} <= set(ADAPTERS)
