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


def _group_flags(path: str) -> set[str]:
    command = typer.main.get_command(app)
    for part in path.split():
        command = command.commands[part]
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


# Verbs converted later: every flag they had before (one exception: `prune --batch-size` is now the
# decoding batch size of every method, the lottery rounds' training batch is --train-batch-size).
OLD_FLAGS_MORE = {
    "prune": "--adapter --batch-size --calib-manifest --config --control --dev --eval-limit --eval-manifest --fraction "
             "--lora-r --lora-target --lr --max-steps --method --model --modules --no-control --out --protect-adapted "
             "--rate --rewind-step --rounds --scope --score --set --side --sparsity --target --train -c -m -o",
    "prune sweep": "--adapter --config --dev --encoder-input --eval-limit --eval-manifest --max-steps --method --model "
                   "--out --set --sparsity --tolerance --train -c -m -o",
    "distill": "--alpha --batch-size --config --decoder-layers --dev --encoder-input --epochs --eval-limit "
               "--eval-manifest --filter-metric --filter-threshold --freeze-encoder --lr --max-steps --mse-weight "
               "--out --set --teacher --teacher-adapter --temperature --train --train-encoder -c -o",
    "score": "--n-boot --out --seed --slice-by -o",
    "compare": "--n-boot --out --seed --top -o",
    "bench infer": "--adapter --attn --backend --batch-sizes --device --dtype --encoder-input --language --limit --manifest --max-new-tokens --model --out --peers --repeats --synthetic --threads --warmup -m -o",
    "bench train": "--batch-size --device --gradient-checkpointing --manifest --methods --mixed-precision --model --no-gradient-checkpointing --no-recipe --out --recipe --seconds --steps --synthetic --threads --warmup-steps -b -m -o",
    "plan": "--allocator-overhead --audio-s --batch-size --batch-sizes --chunked-ce --cuda-context-gb --freeze-encoder --gpu --grad-accum --gradient-checkpointing --json --label-tokens --lora-r --max-batch --method --methods --model --optimizer --out --precision --sweep --target --target-side --threads -b -m -o",
    "curate": "--config --dedupe --dedupe-content --dropped --exclude --max-duration --max-duration-s --min-duration --min-duration-s --out --replay --replay-fraction --require --sample --seed --set --speaker-split --stratify --trim-percentile --where -c -o",
    "export-data": "--audio-format --batch-rows --config --out --overwrite --set --shard-size --to --with-audio -c -o",
    "transcribe": "--adapter --backend --batch-size --beam-size --condition-on-previous-text --diarize --encoder-input --format --hotwords --language --long-form --max-new-tokens --model --output-dir --prompt --set --task --temperatures --timestamps --vad --word-timestamps -f -m",
    "prepare kspon": "--config --convert --engine --keep-shards --max-duration-s --max-label-tokens --min-duration-s --mode --out --ratios --ray-address --seed --set --shard-size --split --workers -c -o -w",
    "prepare aihub-lecture": "--config --convert --engine --keep-shards --max-duration-s --max-label-tokens --min-duration-s --mode --out --pron-first --ratios --ray-address --seed --set --shard-size --split --workers -c -o -w",
    "prepare manifest": "--config --convert --engine --keep-shards --max-duration-s --max-label-tokens --min-duration-s --mode --norm --out --ratios --ray-address --seed --set --shard-size --split --workers -c -o -w",
    "prepare nemo": "--config --convert --engine --keep-shards --max-duration-s --max-label-tokens --min-duration-s --mode --norm --out --ratios --ray-address --seed --set --shard-size --split --workers -c -o -w",
    "prepare synth": "--backend --config --n --n-dev --n-everyday --n-test --out --seed --set --workers -c -o -w",
    "synth-corpus": "--backend --config --n --n-dev --n-everyday --n-test --out --seed --set --workers -c -o -w",
    "demo": "--out -o --quick --full --threads --fresh",
    "speechllm bench": "--encoder --llm --projector --run --audio-s --attn --protocols --repeats --warmup --decode-steps "
                       "--max-new-tokens --threads --device --dtype --out -o",
    "speechllm train": "--data --out -o --stage --init --encoder --llm --projector --lora-targets --steps --batch-size --lr "
                       "--replay --replay-fraction --self-distill --teacher --distill-weight --encoder-teacher "
                       "--hidden-mse-weight --save-every --resume --threads",
    "speechllm demo": "--out -o --data --llm --encoder --projector --stage1-steps --stage2-steps --batch-size "
                      "--asr-test-limit --trim-percentile --sample --max-new-tokens --threads",
    "speechllm compare": "--train --test --vary --values --out -o --encoder --llm --projector --lora-targets "
                         "--stage1-steps --stage2-steps --batch-size --max-new-tokens --threads",
}


def test_speechllm_demo_flags_change_the_demo_recipe_field_by_field(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import soritune.cli.speechllm as sllm_cli
    from soritune.speechllm.demo import SpeechLLMDemoConfig

    seen = {}

    def fake(cfg, on_event=None):
        seen["cfg"] = cfg
        raise SystemExit(0)

    monkeypatch.setattr(sllm_cli, "run_demo", fake)
    CliRunner().invoke(app, ["speechllm", "demo", "--out", str(tmp_path), "--llm", "offline:smollm2-135m",
                             "--stage1-steps", "3", "--n-captions-test", "5"])
    cfg, default = seen["cfg"], SpeechLLMDemoConfig()
    assert cfg.recipe.model.llm == "offline:smollm2-135m" and cfg.recipe.stage1_steps == 3 and cfg.n_captions_test == 5
    # everything not given keeps the demo's own recipe (DEMO_BUDGET), not RecipeConfig's defaults
    assert cfg.recipe.stage2_steps == default.recipe.stage2_steps and cfg.recipe.model.lora_targets == default.recipe.model.lora_targets
    assert cfg.recipe.model.encoder_input == "trimmed" and cfg.recipe.threads == default.recipe.threads


def test_speechllm_train_flags_fill_the_model_section_and_int_choices_parse(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import soritune.speechllm.train as train_mod

    seen = {}
    monkeypatch.setattr(train_mod, "run_stage", lambda cfg, progress=None: seen.setdefault("cfg", cfg) and None)
    CliRunner().invoke(app, ["speechllm", "train", "--data", "d.jsonl", "--out", str(tmp_path / "r"), "--stage", "2",
                             "--llm", "random:tiny", "--lora-targets", "q_proj,v_proj,gate_proj", "--self-distill", "0.5"])
    cfg = seen["cfg"]
    assert cfg.stage == 2 and cfg.model.llm == "random:tiny" and cfg.self_distill_weight == 0.5
    assert cfg.model.lora_targets == ["q_proj", "v_proj", "gate_proj"] and cfg.model.encoder == "bundled:whisper-base"


def test_demo_flags_are_the_demo_config_and_quick_full_name_profiles(tmp_path):
    from typer.testing import CliRunner

    from soritune.demo import DemoConfig

    flags = _group_flags("demo")
    assert {"--" + p.name.replace("_", "-") for p in option_parameters(DemoConfig)} <= flags
    res = CliRunner().invoke(app, ["demo", "--quick", "--profile", "full", "--out", str(tmp_path / "d")])
    assert res.exit_code != 0 and "--quick contradicts --profile full" in res.output
    res = CliRunner().invoke(app, ["demo", "--quick", "--lora-r", "0", "--out", str(tmp_path / "d")])
    assert res.exit_code != 0 and "lora_r" in res.output + str(res.exception) and not (tmp_path / "d").exists()


def test_later_converted_verbs_keep_every_flag():
    for verb, old in OLD_FLAGS_MORE.items():
        missing = set(old.split()) - _group_flags(verb)
        assert not missing, (verb, sorted(missing))


def test_prune_flags_come_from_each_method_config_and_are_checked_against_the_chosen_one(tmp_path):
    from soritune.cli.options import _fields
    from soritune.compress.registry import PRUNE_METHODS, prune_method

    configs = {name: prune_method(name)[0] for name in PRUNE_METHODS}
    flags = _group_flags("prune")
    for cls in configs.values():  # every plain field of every method is a flag
        for p in option_parameters(cls):
            assert "--" + p.name.replace("_", "-") in flags, p.name
    help_of = {name: owner for name, _, owner, _ in _fields(configs)}
    assert help_of["rounds"] == "lottery: " and help_of["fraction"] == "structured: " and help_of["model"] == ""
    r = CliRunner().invoke(app, ["prune", "-m", "tiny:", "--method", "magnitude", "--rounds", "2", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "--method magnitude has no option --rounds" in r.output
    r = CliRunner().invoke(app, ["prune", "sweep", "-m", "tiny:", "--sparsity", "0.1,x", "--out", str(tmp_path)])
    assert "--sparsity expects comma-separated numbers" in str(r.exception)


def test_nested_section_flags_fill_the_section_and_merge_with_the_file(tmp_path):
    from soritune.cli.options import merge_config
    from soritune.compress.sweep import SweepConfig

    seen: list = []
    toy = typer.Typer()

    @toy.command()
    @config_options(SweepConfig, include=("model",), nested={"train_overrides": (Toy, {"include": ("limit",)})})
    def run(fields: dict) -> None:
        seen.append(fields)

    assert CliRunner().invoke(toy, ["--model", "tiny:", "--limit", "3"]).exit_code == 0
    assert seen == [{"model": "tiny:", "train_overrides": {"limit": 3}}]
    (tmp_path / "c.yaml").write_text("out: o\ntrain_overrides: {lora_r: 4}\n")
    cfg = merge_config(SweepConfig, tmp_path / "c.yaml", None, {"model": "tiny:", "train_overrides": {"max_steps": 2}})
    assert cfg.train_overrides == {"lora_r": 4, "max_steps": 2}


def test_one_progress_bar_counts_and_shows_the_rate():
    from soritune.cli.progress import progress_bar

    with progress_bar("prepare x", unit="utt") as bar:
        bar.count(5, 10)
        task = bar._progress.tasks[0]
        assert (task.completed, task.total) == (5, 10) and task.fields["info"].endswith(" utt/s")
        bar.update("training", info="loss 1.000", completed=7)
        bar.advance(2)
        assert task.description == "training" and task.fields["info"] == "loss 1.000" and task.completed == 9
