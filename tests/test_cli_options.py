"""CLI options generated from the configs (soritune.cli.options): each field declared once, every
existing flag name kept."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer
from pydantic import Field
from typer.testing import CliRunner

from soritune.cli import app
from soritune.cli.options import config_options, option_parameters
from soritune.config import StageConfig


class Toy(StageConfig):
    model: str = Field(description="model spec")
    backend: Literal["torch", "ct2"] = Field("torch", description="backend")
    limit: int | None = Field(None, ge=1, description="first N rows")
    out: Path | None = Field(None, description="output dir")
    speed: bool = Field(True, description="time it")
    tags: list[str] = Field(default_factory=list, description="tags")
    nested: Toy | None = Field(None, description="not a flag")


def _toy_app(seen: list):
    toy = typer.Typer()

    @toy.command()
    @config_options(Toy, short={"model": "-m"}, rename={"speed": "--speed/--no-time"})
    def run(fields: dict, extra: str = typer.Option("x", "--extra")) -> None:
        from soritune.config import validate

        seen.append((fields, extra))
        validate(Toy, fields)

    return toy


def test_flags_come_from_the_fields_and_only_given_ones_reach_the_config():
    seen: list = []
    runner = CliRunner()
    r = runner.invoke(_toy_app(seen), ["-m", "tiny:", "--backend", "ct2", "--no-time", "--tags", "a", "--tags", "b"])
    assert r.exit_code == 0, r.output
    assert seen[-1] == ({"model": "tiny:", "backend": "ct2", "speed": False, "tags": ["a", "b"]}, "x")
    r = runner.invoke(_toy_app(seen), ["-m", "x", "--backend", "onnx"])
    assert "backend: invalid value 'onnx'; allowed: 'torch' or 'ct2'" in str(r.exception)  # the config's check
    names = [p.name for p in option_parameters(Toy)]
    assert names == ["model", "backend", "limit", "out", "speed", "tags"]  # the nested model is --set only


def test_help_shows_description_default_and_choices():
    r = CliRunner().invoke(_toy_app([]), ["--help"], env={"COLUMNS": "200"})
    assert "first N rows" in r.output and "[default: torch]" in r.output and "<torch|ct2>" in r.output
    assert "[required]" in r.output and "--no-time" in r.output


def _flags(verb: str) -> set[str]:
    command = typer.main.get_command(app).commands[verb]
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


OLD_FLAGS = {  # the flags these verbs had before their options were generated: every one still works
    "eval": "--model -m --manifest --out -o --adapter --backend --device --compute-type --encoder-input --batch-size "
            "--limit --language --task --max-new-tokens --slice-by --config --set --suite",
    "export": "--model -m --adapter --to --quantization --float-convs --int8-convs --out -o --parity-manifest "
              "--parity-n --encoder-input --speed --no-speed --threads --gate --config -c --set",
    "serve": "--model -m --adapter --backend --host --port --api-key --max-upload-mb --max-batch --batch-window-ms "
             "--max-new-tokens --language --device --compute-type --encoder-input --model-name --log-level "
             "--max-concurrent-decodes --max-chunks-per-request --request-timeout-s --shutdown-grace-s "
             "--header-timeout-s --read-timeout-s --gate --gate-threshold --vad --long-form",
    "train": "--model -m --train --dev --out -o --config -c --preset --set --method --lora-r --lora-alpha "
             "--lora-dropout --target --target-side --batch-size --grad-accum --lr --epochs --max-steps --language "
             "--seed --eval-every --early-stopping --optimizer --mixed-precision --gradient-checkpointing "
             "--no-gradient-checkpointing --dynamic-length --no-dynamic-length --fit-gpu --auto-batch --resume "
             "--overwrite --merge --tensorboard --threads --augment --list-presets",
}


def test_converted_verbs_keep_every_flag_and_expose_every_plain_field():
    from soritune.compress.export import ExportConfig
    from soritune.eval.evaluate import EvalConfig
    from soritune.serve.config import ServeConfig
    from soritune.train.config import TrainConfig

    configs = {"eval": EvalConfig, "export": ExportConfig, "serve": ServeConfig, "train": TrainConfig}
    for verb, old in OLD_FLAGS.items():
        flags = _flags(verb)
        assert set(old.split()) <= flags, (verb, sorted(set(old.split()) - flags))
        renamed = {"early_stopping_patience": "--early-stopping", "measure_speed": "--speed"}
        for p in option_parameters(configs[verb]):
            assert renamed.get(p.name, "--" + p.name.replace("_", "-")) in flags, (verb, p.name)
