"""`soritune speechllm ...`: bench, train (stage 1 / 2), ask, convert, cider. Thin wrappers over
soritune.speechllm and soritune.eval.captions."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import ConfigOpt, SetOpt, config_options, merge_config
from soritune.cli.progress import progress_bar
from soritune.speechllm.bench import SpeechLLMBenchConfig, run_bench
from soritune.speechllm.compare import CompareConfig, run_compare
from soritune.speechllm.config import SpeechLLMConfig, StageTrainConfig
from soritune.speechllm.demo import SpeechLLMDemoConfig, run_demo
from soritune.speechllm.recipe import RecipeConfig

sllm_app = typer.Typer(help="Speech LLM: Whisper encoder + projector (SALMONN/Granite window Q-Former, SLAM, "
                            "Ultravox) + a small causal LLM with LoRA. Train in two stages, ask, benchmark.",
                       no_args_is_help=True)
app.add_typer(sllm_app, name="speechllm")

# the model-composition fields `speechllm train` takes as flags (the rest through --config / --set model.X=...)
MODEL_FLAGS = ("encoder", "llm", "projector", "event_encoder", "encoder_input", "freeze_encoder", "lora_r", "lora_alpha",
               "lora_dropout", "lora_targets", "encoder_lora_r", "encoder_lora_targets", "llm_quantization",
               "attn_implementation", "draft")


@sllm_app.command("bench")
@config_options(SpeechLLMBenchConfig, short={"out": "-o"}, rename={"run_dir": "--run"}, csv=("attn", "protocols"))
def bench(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
    """TTFT, TPOT, total time and peak memory per protocol and attention kernel; writes DIR/bench.json
    (rows with ttft_ms, tpot_ms, peak_mem_gb) and DIR/bench.md.

    Example: soritune speechllm bench --encoder random:large-v3-turbo --llm random:qwen2.5-0.5b --threads 2 --out /tmp/sllm_bench
    """
    cfg = merge_config(SpeechLLMBenchConfig, config, set_, fields)
    out_dir = Path(cfg.out)
    doc = run_bench(cfg, progress=lambda label: console.print(f"measuring {label}", highlight=False))
    for r in doc["rows"]:
        out.print(f"{r['protocol']:<9} {r['attn']:<6} TTFT {r['ttft_ms']:9.1f} ms  TPOT {r['tpot_ms']:8.2f} ms  "
                  f"peak {r['peak_mem_gb']:.2f} GB", highlight=False)
    console.print(f"wrote {out_dir / 'bench.json'} and bench.md", highlight=False)


@sllm_app.command("train")
@config_options(StageTrainConfig, short={"out": "-o"}, rename={"self_distill_weight": ["--self-distill-weight", "--self-distill"]},
                nested={"model": (SpeechLLMConfig, {"include": MODEL_FLAGS, "csv": ("lora_targets", "encoder_lora_targets")})})
def train(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
    """Train one stage and save the model under OUT/model (config.yaml, projector, LoRA adapter).

    Example: soritune speechllm train --data asr.jsonl --out runs/s1 --stage 1 --steps 200 && soritune speechllm train --data asr.jsonl --out runs/s2 --stage 2 --init runs/s1
    """
    from soritune.speechllm.train import run_stage

    cfg = merge_config(StageTrainConfig, config, set_, fields)
    stage, steps = cfg.stage, cfg.steps
    with progress_bar(f"stage {stage}", remaining=True) as bar:
        result = run_stage(cfg, progress=lambda ev: bar.update(completed=ev["step"], total=steps,
                                                                 info=f"loss {ev['loss']:.3f}"))
    out.print(f"stage {stage}: loss {result.first_loss:.3f} -> {result.last_loss:.3f} in {result.steps} steps "
              f"({result.train_s:.0f} s, {result.samples_per_s:.2f} samples/s); truncated audio "
              f"{result.truncated_audio_s} s; model: {result.model_dir}", highlight=False)


@sllm_app.command("ask")
def ask(
    audio: Path = typer.Argument(..., help="Audio file (any length: long audio is chunked, never cut)."),
    run_dir: Path = typer.Option(..., "--run", help="Trained run directory (or its model/ folder)."),
    task: str = typer.Option("transcribe", help="transcribe | caption | question."),
    prompt: str | None = typer.Option(None, help="Instruction (default: the task's)."),
    max_new_tokens: int = typer.Option(128, min=1, help="Token cap."),
) -> None:
    """Ask a trained speech LLM about one audio file; prints its answer.

    Example: soritune speechllm ask lecture.wav --run runs/s2 --task transcribe
    """
    from soritune.audio import load_audio
    from soritune.speechllm.model import SpeechLLM

    model_dir = run_dir / "model" if (run_dir / "model").is_dir() else run_dir
    model = SpeechLLM.load(model_dir)
    out.print(model.generate(load_audio(audio), prompt, task=task, max_new_tokens=max_new_tokens), highlight=False)


@sllm_app.command("eval")
def evaluate(
    data: Path = typer.Argument(..., help="Speech-LLM JSONL (transcribe rows scored by CER/WER, caption rows by CIDEr-D)."),
    run_dir: Path = typer.Option(..., "--run", help="Trained run directory (or its model/ folder)."),
    out_dir: Path = typer.Option(Path("eval_speechllm"), "--out", "-o", help="Output directory (report.json, hyps.jsonl)."),
    limit: int | None = typer.Option(None, min=1, help="First N rows only."),
    max_new_tokens: int = typer.Option(128, min=1, help="Token cap per answer."),
) -> None:
    """Generate an answer for every row; report ASR CER/WER (95% CI), CIDEr-D, and failures (refusals,
    loops, empty outputs, token-cap hits, truncated audio).

    Example: soritune speechllm eval data/test_sllm.jsonl --run runs/s2 --out evals/s2
    """
    from soritune.speechllm.evaluate import evaluate as run_eval
    from soritune.speechllm.model import SpeechLLM

    model = SpeechLLM.load(run_dir / "model" if (run_dir / "model").is_dir() else run_dir)
    report = run_eval(model, data, out_dir=out_dir, max_new_tokens=max_new_tokens, limit=limit)
    if "asr" in report:
        out.print(f"ASR: CER {report['asr']['cer']:.4f}  WER {report['asr']['wer']:.4f} on {report['asr']['n']} clips",
                  highlight=False)
    if "captions" in report:
        out.print(f"captions: CIDEr-D {report['captions']['cider_d']:.4f} on {report['captions']['n']} clips",
                  highlight=False)
    out.print(f"failures: {report['failures']}; truncated audio {report['truncated_audio_s']} s", highlight=False)
    console.print(f"wrote {out_dir / 'report.json'}", highlight=False)


@sllm_app.command("convert")
def convert(
    manifest: Path = typer.Argument(..., help="soritune ASR manifest (JSONL), or an ms-swift file with --from swift."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Speech-LLM JSONL to write."),
    source: str = typer.Option("asr", "--from", help="asr (soritune manifest) | swift (messages + audios)."),
    prompt: str | None = typer.Option(None, help="asr: instruction for every row (default: the transcribe prompt)."),
    task: str = typer.Option("question", help="swift: the task of every row (transcribe | caption | question)."),
) -> None:
    """Turn an ASR manifest into transcription examples (task, prompt, response = text), or ms-swift
    records (`messages` with <audio> in the user turn, `audios`) into speech-LLM rows.

    Example: soritune speechllm convert data/lecture/train.jsonl --out data/lecture/train_sllm.jsonl
    """
    from soritune.cli.app import fail
    from soritune.speechllm.data import convert_asr_manifest, convert_swift_jsonl

    if source not in ("asr", "swift"):
        fail(f"--from must be asr or swift, got {source!r}")
    counts = (convert_asr_manifest(manifest, out_path, prompt) if source == "asr"
              else convert_swift_jsonl(manifest, out_path, task))
    out.print(f"wrote {counts['written']} of {counts['rows']} rows to {out_path} "
              f"({counts['skipped_empty_text']} with an empty transcript skipped)", highlight=False)


@sllm_app.command("cider")
def cider(
    candidates: Path = typer.Argument(..., help="JSONL rows with id and hypothesis (or response)."),
    references: Path = typer.Argument(..., help="Speech-LLM JSONL with references (or response)."),
    korean: bool = typer.Option(False, help="soritune's Korean character CIDEr-D instead of COCO's word CIDEr-D."),
) -> None:
    """Corpus CIDEr-D (COCO scale) of captions against several references each.

    Example: soritune speechllm cider hyps.jsonl data/captions_test.jsonl
    """
    import json

    from soritune.eval.captions import cider_d, cider_d_ko
    from soritune.speechllm.data import read_examples, references_of

    hyps = {}
    for line in candidates.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            hyps[row["id"]] = row.get("hypothesis", row.get("response", ""))
    refs = {r["id"]: references_of(r) for r in read_examples(references)}
    score = (cider_d_ko if korean else cider_d)(hyps, refs)
    out.print(f"{'CIDEr-D (characters, soritune)' if korean else 'CIDEr-D'} {score:.4f} on {len(refs)} clips",
              highlight=False)


RECIPE_FLAGS = ("stage1_steps", "stage2_steps", "batch_size", "max_new_tokens", "threads")
_DEMO_RECIPE = SpeechLLMDemoConfig().recipe  # the demo's defaults differ from a plain recipe's (DEMO_BUDGET)


@sllm_app.command("demo")
@config_options(SpeechLLMDemoConfig, short={"out": "-o"}, exclude=("test_set",),
                nested={"recipe": (RecipeConfig, {"include": RECIPE_FLAGS, "defaults": _DEMO_RECIPE.model_dump()}),
                        "recipe.model": (SpeechLLMConfig, {"include": ("encoder", "llm", "projector", "draft"),
                                                           "defaults": _DEMO_RECIPE.model.model_dump()})})
def demo(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
    """The offline speech-LLM demo: bundled whisper-base + Gemma-3-270M, stage 1 + 2 on the synthetic Korean
    lecture speech and a synthesised captioning set; reports ASR CER, CIDEr-D, TTFT, TPOT and peak memory.

    Example: soritune speechllm demo --data demo/data --out demo/speechllm
    """
    # the demo's own recipe (DEMO_BUDGET) is the base the flags and a --config file change, field by field
    cfg = merge_config(SpeechLLMDemoConfig, config, set_, fields, base=SpeechLLMDemoConfig().model_dump(mode="json"))
    out_dir = Path(cfg.out)
    with progress_bar("data") as bar:
        report = run_demo(cfg, on_event=lambda phase, done, total: bar.update(description=phase, completed=done,
                                                                               total=total))
    out.print((out_dir / "report.md").read_text(encoding="utf-8"), highlight=False)
    console.print(f"wrote {out_dir / 'report.md'} and report.json ({report['wall_s']:.0f} s)", highlight=False)


@sllm_app.command("compare")
@config_options(CompareConfig, short={"out": "-o"}, exclude=("values",),
                nested={"base": (RecipeConfig, {"include": RECIPE_FLAGS}),
                        "base.model": (SpeechLLMConfig, {"include": ("encoder", "llm", "projector", "lora_targets", "draft"),
                                                         "csv": ("lora_targets",)})})
def compare(
    fields: dict,
    values: str = typer.Option(..., help="Its values separated by |, each a YAML scalar or list: "
                                         "'salmonn|slam' or '[q_proj,v_proj]|[q_proj,v_proj,gate_proj]'."),
    config: Path | None = ConfigOpt,
    set_: list[str] | None = SetOpt,
) -> None:
    """Train, score and measure recipes that differ in one component; writes the A/B table and its plot.

    Example: soritune speechllm compare --train demo/speechllm/sllm/train.jsonl --test demo/speechllm/sllm/test.jsonl --vary projector --values 'salmonn|slam' --out ab
    """
    from soritune.config import parse_value

    fields["values"] = [parse_value(v.strip()) for v in values.split("|")]
    # every variant starts from trimmed encoder input (the recipes' CPU budget)
    cfg = merge_config(CompareConfig, config, set_, fields, base={"base": {"model": {"encoder_input": "trimmed"}}})
    out_dir = Path(cfg.out)
    doc = run_compare(cfg, progress=lambda label, phase, done, total: console.print(
        f"{label}: {phase} {done}/{total}", highlight=False) if done in (0, total) or done % 10 == 0 else None)
    out.print((out_dir / "compare.md").read_text(encoding="utf-8"), highlight=False)
    console.print(f"wrote {out_dir / 'compare.md'}, compare.json and {doc['plot']}", highlight=False)


@sllm_app.command("drop-layers")
def drop_layers(
    run_dir: Path = typer.Option(..., "--run", help="Trained run directory (or its model/ folder)."),
    data: Path = typer.Option(..., help="Speech-LLM JSONL whose responses measure each layer's sensitivity."),
    n_drop: int = typer.Option(..., "--drop", min=0, help="How many LLM decoder layers to remove."),
    out_dir: Path = typer.Option(Path("sllm_drop"), "--out", "-o", help="Output directory (model/, drop.json, drop.md)."),
    test: Path | None = typer.Option(None, help="Speech-LLM JSONL scored before and after (ASR CER, CIDEr-D, "
                                                "TTFT, TPOT, peak memory); none: sensitivity and the model only."),
    limit: int = typer.Option(32, min=1, help="Rows of --data used to measure sensitivity."),
) -> None:
    """Measure how much each LLM layer matters (response loss with it skipped), remove the --drop least
    sensitive, save the smaller model, and report it beside the whole model.

    Example: soritune speechllm drop-layers --run runs/s2 --data data/dev_sllm.jsonl --drop 4 --test data/test_sllm.jsonl --out runs/s2-drop4
    """
    from soritune.speechllm.compress import run_drop_layers

    doc = run_drop_layers(run_dir, data=data, test=test, out=out_dir, n_drop=n_drop, limit=limit,
                          progress=lambda phase, done, total: console.print(f"{phase} {done}/{total}", highlight=False))
    out.print((out_dir / "drop.md").read_text(encoding="utf-8"), highlight=False)
    console.print(f"dropped layers {doc['dropped']}; wrote {out_dir / 'model'} and drop.json", highlight=False)
