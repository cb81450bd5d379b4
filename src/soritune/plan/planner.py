"""`plan(config) -> PlanResult`: the traced peak plus the stated CUDA overheads, with its assumptions.

peak_gb = traced peak (live tensor storage at the step's highest point, paged optimizer state left
out) + CUDA context + cuBLAS workspace + allocator overhead (a fraction of the traced peak). The
overheads are constants of PlanConfig, reported separately in `breakdown`. GB = 2**30 bytes, as
PyTorch and nvidia-smi count them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from soritune.plan.config import PlanConfig
from soritune.plan.ledger import CATEGORIES, GB
from soritune.plan.trace import trace_step


@dataclass
class PlanResult:
    """A predicted training peak; saves as JSON (`peak_gb`, `breakdown`, `assumptions`, ...)."""

    model: str
    method: str
    precision: str
    batch_size: int
    peak_gb: float
    traced_peak_gb: float
    breakdown: dict  # GB by category at the peak, then the CUDA overheads
    peak_at: dict  # phase (step 1/2, forward/backward/optimizer), last op, module
    phase_peaks_gb: dict
    trainable_params: int
    total_params: int
    trace_wall_s: float
    assumptions: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def assumptions(cfg: PlanConfig) -> list[str]:
    """What the prediction takes for granted, in words (shown with every plan)."""
    out = [
        ("two optimizer steps of soritune's own train code traced on fake tensors (FakeTensorMode: shapes, "
        "dtypes and lifetimes, no memory); the peak is live tensor storage, the second step being the steady state"),
        (f"input {cfg.audio_s:g} s ({cfg.frames} log-mel frames), {cfg.label_tokens} decoder tokens per utterance, "
        f"no padding; micro-batch {cfg.batch_size}, gradient accumulation {cfg.grad_accum}"),
        ("the CPU code path of each kernel: SDPA attention without a stored attention matrix (as CUDA's "
         "flash / memory-efficient kernels)" if cfg.attn_implementation == "sdpa" else
         "eager attention: the [heads x L x L] attention probabilities are kept for backward")
        + "; torch's CPU autocast op lists for mixed precision",
        f"cross-entropy in chunks of {cfg.resolved_chunk()} tokens (soritune train's GPU default)" if cfg.resolved_chunk()
        else "cross-entropy over all tokens at once (full [tokens x vocab] logits)",
        (f"CUDA overheads are stated constants, not traced: context {cfg.cuda_context_gb:g} GB, cuBLAS workspace "
        f"{cfg.cublas_workspace_gb:g} GB, allocator rounding and fragmentation {100 * cfg.allocator_overhead:g}% "
        f"of the traced peak"),
        "GB = 2**30 bytes",
    ]
    if cfg.precision == "fp16-mixed":
        out.append("fp16-mixed traced as bf16 autocast (same 2-byte widths; the GradScaler's scalars are not counted)")
    if cfg.method in ("qlora8", "qlora4"):
        out.append("bitsandbytes kernels do not run on fake tensors: the quantised base is counted exactly from "
                   "bitsandbytes' layout (8-bit: int8 weight + fp32 row scales; 4-bit: NF4 packed bytes + 8-bit "
                   "absmax per 64 weights + fp32 absmax per 256 blocks + codes), and its matmuls create the "
                   "temporaries bitsandbytes' CUDA kernels create (dequantised weight in forward and backward; "
                   "8-bit: also the int8 copy of the input, kept input for backward)")
    if cfg.optimizer.startswith("paged"):
        out.append("paged optimizer state lives in CUDA unified memory outside PyTorch's allocator and can be "
                   "evicted to the host: listed as optimizer_paged, not counted in peak_gb")
    if cfg.optimizer != "adamw":
        out.append("bitsandbytes optimizer state: 8-bit states with fp32 absmax per 256 values; tensors under 4096 "
                   "elements keep fp32 states")
    if cfg.gpu_foreach and cfg.optimizer == "adamw":
        out.append("torch AdamW in its multi-tensor (foreach) form, its CUDA default (temporaries the size of all "
                   "trainable parameters during the update)")
    return out


def plan(cfg: PlanConfig) -> PlanResult:
    """Trace the setup and add the CUDA overheads; see the module docstring."""
    traced = trace_step(cfg, fake=True)
    led = traced.ledger
    paged = led.breakdown_bytes.get("optimizer_paged", 0)
    device_bytes = led.peak_bytes - paged
    breakdown = {c: round(led.breakdown_bytes.get(c, 0) / GB, 4) for c in CATEGORIES}
    overheads = {"cuda_context": cfg.cuda_context_gb, "cublas_workspace": cfg.cublas_workspace_gb,
                 "allocator_overhead": cfg.allocator_overhead * device_bytes / GB}
    breakdown.update({k: round(v, 4) for k, v in overheads.items()})
    traced_gb = device_bytes / GB
    return PlanResult(
        model=cfg.model, method=cfg.method, precision=cfg.precision, batch_size=cfg.batch_size,
        peak_gb=round(traced_gb + sum(overheads.values()), 4), traced_peak_gb=round(traced_gb, 4),
        breakdown=breakdown, peak_at={"phase": led.peak_phase, "op": led.peak_op, "module": led.peak_module},
        phase_peaks_gb={k: round(v / GB, 4) for k, v in led.phase_peaks_bytes.items()},
        trainable_params=traced.trainable_params, total_params=traced.total_params,
        trace_wall_s=round(traced.wall_s, 2), assumptions=assumptions(cfg), config=cfg.model_dump(),
    )
