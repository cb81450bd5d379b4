"""train_overrides (lottery, sweep, distill) is checked against TrainConfig when the config loads,
not when a round starts: a typo or a bad value fails at once, naming the field."""

from __future__ import annotations

import pytest

from soritune.compress.distill import DistillConfig
from soritune.compress.prune_lottery import LotteryConfig
from soritune.compress.sweep import SweepConfig
from soritune.config import validate
from soritune.errors import ConfigError

BASE = {LotteryConfig: {"model": "tiny:", "out": "o", "train": "t.jsonl"},
        SweepConfig: {"model": "tiny:", "out": "o"},
        DistillConfig: {"teacher": "tiny:", "out": "o", "train": "t.jsonl"}}


@pytest.mark.parametrize("cls", list(BASE))
def test_good_overrides_stay_the_dict_given(cls):
    cfg = validate(cls, {**BASE[cls], "train_overrides": {"lora_r": 8, "max_steps": 3, "target": "attn"}})
    assert cfg.train_overrides == {"lora_r": 8, "max_steps": 3, "target": "attn"}


@pytest.mark.parametrize("cls", list(BASE))
@pytest.mark.parametrize(("overrides", "message"), [
    ({"lorar": 8}, "train_overrides: Value error, lorar: not TrainConfig field"),
    ({"lora_r": 0}, "lora_r: Input should be greater than or equal to 1"),
    ({"method": "qlora9"}, "method: invalid value 'qlora9'"),
    ({"lr": "fast"}, "lr: Input should be a valid number"),
])
def test_bad_overrides_fail_at_load_naming_the_field(cls, overrides, message):
    with pytest.raises(ConfigError, match="train_overrides") as e:
        validate(cls, {**BASE[cls], "train_overrides": overrides})
    assert message in str(e.value)
