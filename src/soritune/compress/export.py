"""Export a model (+ merged adapter, + pruning masks) for deployment, with a parity check.

    from soritune.compress.export import ExportConfig, run
    result = run(ExportConfig(model="bundled:whisper-base", adapter="runs/a/adapter", to="ct2",
                              quantization="int8", out="export/ct2-int8"))

Targets (each one small function registered in TARGETS):
- hf: the adapter merged into a plain Hugging Face Whisper directory (no peft needed to load it);
  masks stored with a pruned source are re-applied after the merge.
- ct2: CTranslate2 via ctranslate2's own converter (`soritune.infer.ct2_backend.convert_to_ct2`),
  tokenizer.json and preprocessor_config.json copied, so `faster_whisper.WhisperModel(OUT)` and
  `load_backend("ct2:OUT", "ct2")` load it directly. int8 keeps the encoder's two input
  convolutions float32 (`float_convs`; ctranslate2 would quantize them, at a CER cost).
- torch-int8: PyTorch dynamic int8 quantisation of every nn.Linear (torch.ao `quantize_dynamic`,
  CPU): OUT holds the HF config/processor files and `int8_model.pt` (the quantised state dict);
  `soritune.models.load(OUT)` rebuilds it (`models.formats.load_int8`).

Parity: the exported model and the PyTorch model it came from transcribe the same few utterances
(a manifest's, or synthetic Korean sentences); equal transcripts are counted and the CER between
them (and against the references) recorded in OUT/summary.json (+ config.yaml; export_report.json
links to it), with decoding time of both.

Gate (`gate=warn|refuse`): the hallucination suite (soritune.eval.hallucination) runs on the export
(OUT/hallucination_suite/); above its thresholds `warn` records a warning, `refuse` raises
HallucinationGateError after export_report.json has recorded why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, model_validator

from soritune.compress.modelio import dir_bytes, mb, save_model
from soritune.config import StageConfig, validate
from soritune.errors import CompressError
from soritune.eval.hallucination_gate import GATE_HELP, GateMode, GateResult, GateThresholds, enforce
from soritune.models import Loaded, ggml, load
from soritune.models.encoder import ENCODER_INPUT_HELP, EncoderInput
from soritune.models.formats import INT8_FILE, load_int8, quantize_int8  # noqa: F401 - load_int8 re-exported
from soritune.rundir import write_run

REPORT_FILE = "export_report.json"
CT2_QUANT = ("float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16")


# ---- targets ----------------------------------------------------------------------------------

def export_hf(source: Loaded, out: Path, cfg: ExportConfig) -> Callable | None:
    from soritune.compress.masks import save_masks

    save_model(source.model, source.processor, out)
    if source.masks:
        save_masks(out, source.masks, {"method": "carried by export"})
    return None  # read back through soritune.models.load, as eval and serve will


def export_ct2(source: Loaded, out: Path, cfg: ExportConfig) -> Callable:
    from soritune.infer.ct2_backend import CT2Backend, convert_to_ct2, is_int8

    model, processor = source
    if source.info.get("format") == "head-pruned":
        raise CompressError(f"{cfg.model}: a head-pruned model (structure.json) has unequal head counts, which "
                            f"CTranslate2 cannot express; export it --to hf or --to torch-int8")
    convert_to_ct2(model, processor, out, quantization=cfg.quantization, float_convs=cfg.float_convs)
    # int8: the compute type convert_to_ct2 recorded (under "default" float convolutions run all in float32)
    compute = None if is_int8(cfg.quantization) else "default"
    return lambda: CT2Backend(out, processor, spec=f"ct2:{out}", compute_type=compute, threads=cfg.threads,
                              encoder_input=cfg.encoder_input)


def export_torch_int8(source: Loaded, out: Path, cfg: ExportConfig) -> Callable | None:
    import copy

    import torch

    model, processor = source
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(out))
    model.generation_config.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    q = quantize_int8(copy.deepcopy(model))
    torch.save(q.state_dict(), out / INT8_FILE)
    return None


# name -> target(source, out, cfg): writes OUT and returns a factory of the backend that decodes it,
# or None: OUT then loads back through soritune.models.load (its format row), as eval and serve load it.
TARGETS: dict[str, Callable] = {"hf": export_hf, "ct2": export_ct2, "torch-int8": export_torch_int8,
                                "ggml": ggml.export_target}


class ExportConfig(StageConfig):
    """Settings of `soritune export`."""

    model: str = Field(description="model spec (bundled:whisper-base, hf:DIR, a pruned or distilled OUT, tiny:)")
    adapter: str | None = Field(None, description="PEFT adapter merged in before export")
    to: Literal[tuple(TARGETS)] = Field("ct2", description="export target (soritune.compress.export.TARGETS)")
    quantization: str | None = Field(None, description="ct2 weight type: float16 | int8 | int8_float16 | ... (default: float32)")
    float_convs: bool = Field(True, description="int8 ct2: keep the encoder's two input convolutions float32 (ctranslate2 "
                                                "quantizes them too, which costs CER on log-mel input; +2.6 MB on base)")
    out: Path = Field(description="output directory")
    parity_manifest: str | None = Field(None, description="utterances for the parity check (default: synthetic Korean)")
    parity_n: int = Field(3, ge=1, description="utterances in the parity check")
    encoder_input: EncoderInput = Field("padded", description="parity and timing input, both sides: " + ENCODER_INPUT_HELP)
    measure_speed: bool = Field(True, description="time the source and the export on the parity clips")
    repeats: int = Field(3, ge=1, description="timed passes (median reported)")
    threads: int | None = Field(None, ge=1, description="CPU threads for both sides of the timing (default: torch's)")
    batch_size: int = Field(8, ge=1, description="decoding batch size")
    max_new_tokens: int = Field(128, ge=1, le=224, description="decoding token limit")
    seed: int = Field(0, description="initialisation seed for tiny:/random: specs")
    gate: GateMode = Field("off", description=GATE_HELP + "; run on the export, results in export_report.json")
    gate_thresholds: GateThresholds = Field(default_factory=GateThresholds, description="the gate's thresholds")

    @model_validator(mode="after")
    def _check_quant(self):
        if self.quantization and self.to != "ct2":
            raise ValueError(f"quantization applies to --to ct2 only (torch-int8 is int8 by definition; hf is float), "
                             f"got to={self.to!r}")
        if self.quantization and self.quantization not in CT2_QUANT:
            raise ValueError(f"quantization: {self.quantization!r}; allowed: {', '.join(CT2_QUANT)}")
        return self


@dataclass
class ExportResult:
    """What an export wrote; saved as OUT/export_report.json."""

    out: str
    target: str
    quantization: str | None
    model: str
    adapter: str | None
    files_mb: float
    parity: dict
    timing_source: dict | None = None
    timing_export: dict | None = None
    speedup: float | None = None  # source median time / export median time, same clips and threads
    details: dict = field(default_factory=dict)


def _torch_backend_of(directory: str, encoder_input: str):
    from soritune.compress import measure

    b = load(directory)
    return measure.torch_backend(b.model, b.processor, spec=directory, encoder_input=encoder_input)


# ---- run --------------------------------------------------------------------------------------

def merge_logits_diff(cfg: ExportConfig, merged, clips) -> float | None:
    """Max |logit difference| between the unmerged PEFT model and the merged one (first clip)."""
    if not cfg.adapter:
        return None
    import torch

    from soritune.models.adapters import apply_adapter

    base = load(cfg.model, seed=cfg.seed)
    if base.masks:  # masks re-applied after a merge change the function on purpose; no like-for-like
        return None
    peft = apply_adapter(base.model, cfg.adapter, merge=False)
    feats = base.processor.feature_extractor(clips.audios[:1], sampling_rate=16000, return_tensors="pt").input_features
    dec = torch.tensor([[merged.generation_config.decoder_start_token_id]])
    with torch.inference_mode():
        a = peft(input_features=feats, decoder_input_ids=dec).logits
        b = merged(input_features=feats, decoder_input_ids=dec).logits
    return float((a - b).abs().max())


def run(config: ExportConfig | dict) -> ExportResult:
    """Load (+ merge), export to the target, check parity and timing, write export_report.json."""
    import torch

    from soritune.compress import measure
    from soritune.infer.ct2_backend import is_int8

    cfg = config if isinstance(config, ExportConfig) else validate(ExportConfig, dict(config))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    bundle = load(cfg.model, cfg.adapter, seed=cfg.seed)
    clips = measure.load_clips(cfg.parity_manifest, cfg.parity_n)
    source = measure.torch_backend(bundle.model, bundle.processor, spec=cfg.model, encoder_input=cfg.encoder_input)
    kw = dict(batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
    src_hyps = measure.transcribe(source, clips, **kw)
    make_backend = TARGETS[cfg.to](bundle, out, cfg) or (lambda: _torch_backend_of(str(out), cfg.encoder_input))
    exported = make_backend()
    new_hyps = measure.transcribe(exported, clips, **kw)
    parity = measure.parity(src_hyps, new_hyps, clips)
    t_src = t_exp = None
    if cfg.measure_speed:
        # both sides were warmed up by the parity pass just above
        t_src = measure.time_decoding(source, clips, repeats=cfg.repeats, warmup=0, **kw)
        t_exp = measure.time_decoding(exported, clips, repeats=cfg.repeats, warmup=0, **kw)
    result = ExportResult(
        out=str(out), target=cfg.to, quantization=cfg.quantization, model=cfg.model, adapter=cfg.adapter,
        files_mb=mb(dir_bytes(out)), parity=parity, timing_source=t_src, timing_export=t_exp,
        speedup=round(t_src["median_s"] / t_exp["median_s"], 3) if t_src and t_exp and t_exp["median_s"] > 0 else None,
        details={"merge_logits_max_abs_diff": merge_logits_diff(cfg, bundle.model, clips) if cfg.to == "hf" else None,
                 "masks_reapplied": bool(bundle.masks), "source_backend": source.describe(),
                 "export_backend": exported.describe(), "threads": torch.get_num_threads(),
                 "ct2_compute_type": getattr(exported, "compute_type", None),
                 "ct2_float_input_convs": cfg.to == "ct2" and cfg.float_convs and is_int8(cfg.quantization)},
    )
    gate = _gate(cfg, exported, result) if cfg.gate != "off" else None
    write_run(out, cfg, result, stage="export", legacy=(REPORT_FILE,))
    if gate is not None:  # refuse raises here, once the report says why (the files stay for inspection)
        enforce(gate, cfg.gate, f"export {out}")
    return result


def _gate(cfg: ExportConfig, exported, result: ExportResult):
    """Run the hallucination suite on the export and record it in result.details; the GateResult."""
    from soritune.eval.hallucination import gate_backend

    suite_dir = Path(cfg.out) / "hallucination_suite"
    report, warning = gate_backend(exported, "warn", cfg.gate_thresholds, what=f"export {cfg.out}", out=suite_dir,
                                   batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                   encoder_input=cfg.encoder_input)
    result.details["hallucination_gate"] = {"mode": cfg.gate, **report.gate, "warning": warning,
                                            "report": str(suite_dir / "suite_report.json")}
    return GateResult(**report.gate)
