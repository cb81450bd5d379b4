"""Real training steps of soritune's own code, run under the ledger on fake or real tensors.

`trace_step(config, fake=True)` runs two optimizer steps: the first (on zero gradients, without
forward and backward, see `_warm_up`) creates the optimizer state; the second, a full
`Trainer.optimizer_step`, is the steady state every later step repeats (weights, optimizer state and,
with gradient accumulation, the gradients of the previous micro-batch live through forward and
backward; two micro-batches stand for any number, as each after the first repeats the second's). `train.adapters.build_model` builds the model the method trains
(gradient checkpointing, frozen encoder, PEFT adapters) and `train.loop.Trainer.optimizer_step` runs
the step (the loss module `WhisperLoss`, accelerate's backward and autocast, gradient clipping, the
optimizer, the scheduler, zero_grad), all under `FakeTensorMode`: every tensor has its shape, dtype
and lifetime, none has memory. Only the base model's loading is replaced on fake tensors: its
architecture is built from the spec's config (random weights cost what real ones cost), and a
quantised base is packed by `plan.packed` instead of bitsandbytes. With fake=False the same code
runs on real tensors (real bitsandbytes, real optimizer) for validation.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from soritune.plan.config import PlanConfig
from soritune.plan.ledger import LedgerResult, MemoryLedger


@dataclass
class StepTrace:
    ledger: LedgerResult
    trainable_params: int
    total_params: int
    wall_s: float
    fake: bool


def arch_config(spec: str):
    """The WhisperConfig behind any model spec, without loading weights."""
    from soritune.models.specs import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind in ("tiny", "random"):
        from soritune.models.architectures import tiny_test_config, whisper_config

        return tiny_test_config() if parsed.kind == "tiny" else whisper_config(parsed.arg)
    from transformers import WhisperConfig

    from soritune.models import model_dir_for

    src = model_dir_for(parsed)
    if parsed.kind == "ct2":
        from soritune.errors import ModelSpecError

        raise ModelSpecError(f"{spec}: plan a ct2: model through the hf: directory it was converted from")
    return WhisperConfig.from_pretrained(str(src) if src else parsed.arg)


def _fake_base(config, device, compute_dtype):
    """`train.adapters._load_base` on fake tensors: the spec's architecture, packed when quantised."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from soritune.plan.packed import pack_linears

    model = WhisperForConditionalGeneration(arch_config(config.model))  # fake tensors, on the CPU device
    if config.quantization:
        pack_linears(model, 8 if config.quantization == "8bit" else 4, compute_dtype or torch.float32)
    return model, None, {"spec": config.model}


def _fake_to(real_to):
    """nn.Module.to for fake parameters, which `to` insists on swapping in place (and cannot): a move
    that changes nothing returns the module (what `to` computes then); a real change replaces each
    parameter and buffer by its converted copy (what `to` computes, without the swap)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensor

    def to(self, *args, **kwargs):
        device, dtype, _, _ = torch._C._nn._parse_to(*args, **kwargs)
        device = torch.device(device) if device is not None else None

        def changes(t):
            return (device is not None and t.device != device) or (
                dtype is not None and t.is_floating_point() and t.dtype != dtype)

        tensors = list(self.parameters()) + list(self.buffers())
        if not any(changes(t) for t in tensors):
            return self
        if not all(isinstance(t, FakeTensor) for t in tensors):
            return real_to(self, *args, **kwargs)
        for m in self.modules():
            for store in (m._parameters, m._buffers):
                for k, t in store.items():
                    if t is not None and changes(t):
                        new = t.detach().to(device=device, dtype=dtype if t.is_floating_point() else None)
                        store[k] = torch.nn.Parameter(new, t.requires_grad) if store is m._parameters else new
        return self

    return to


@contextlib.contextmanager
def _building(fake: bool, dtype):
    """build_model's setting: pure bf16 builds every weight in bf16; on fake tensors the base comes
    from `_fake_base` and module moves that change nothing are skipped (see `_fake_to`)."""
    import torch

    from soritune.train import adapters

    saved = (adapters._load_base, torch.nn.Module.to, torch.get_default_dtype())
    if dtype is not None:
        torch.set_default_dtype(dtype)
    if fake:
        adapters._load_base = _fake_base
        torch.nn.Module.to = _fake_to(saved[1])
    try:
        yield
    finally:
        adapters._load_base, torch.nn.Module.to = saved[:2]
        torch.set_default_dtype(saved[2])


@contextlib.contextmanager
def _as_real(fake: bool):
    """Make libraries take the path they take on real tensors: torch's foreach kernels (gradient
    clipping, the optimizer) accept only plain tensors, and transformers builds explicit attention
    masks for anything it takes for a graph trace, fake tensors included."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch.optim import optimizer
    from torch.utils import _foreach_utils
    from transformers import masking_utils
    from transformers.utils.import_utils import is_tracing

    if not fake:
        yield
        return
    saved = masking_utils.is_tracing
    lists = (_foreach_utils._foreach_supported_types, optimizer._foreach_supported_types)
    for types in lists:
        types.append(FakeTensor)
    masking_utils.is_tracing = lambda tensor=None: is_tracing()
    try:
        yield
    finally:
        masking_utils.is_tracing = saved
        for types in lists:
            types.remove(FakeTensor)


def synthetic_batch(cfg: PlanConfig, n_mels: int, vocab: int) -> dict:
    """The collator's batch: features [B, mels, frames], decoder ids and labels [B, tokens] (no padding)."""
    import torch

    shape = (cfg.batch_size, cfg.label_tokens)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, vocab, shape, generator=g) if not _fake_active() else torch.zeros(shape, dtype=torch.long)
    return {"input_features": torch.zeros((cfg.batch_size, n_mels, cfg.frames)),
            "decoder_input_ids": torch.zeros(shape, dtype=torch.long) + 50258, "labels": labels,
            "ids": [f"u{i}" for i in range(cfg.batch_size)]}


def _fake_active() -> bool:
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return any(isinstance(m, FakeTensorMode) for m in _get_current_dispatch_mode_stack())


def _accelerator(cfg: PlanConfig):
    from accelerate import Accelerator

    mp = {"fp32": "no", "bf16": "no", "bf16-mixed": "bf16", "fp16-mixed": "bf16"}[cfg.precision]
    return Accelerator(cpu=True, mixed_precision=mp)


def _hooks(ledger: MemoryLedger, module, optimizer, paged: bool) -> list:
    import torch

    names = {id(m): n or "model" for n, m in module.named_modules()}

    def enter(mod, args):
        if id(mod) in names:
            ledger.module = names[id(mod)]

    steps = [1]

    def phase(name):
        ledger.set_phase(f"step {steps[0]} {name}")

    handles = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
               module.register_forward_pre_hook(lambda m, a: phase("forward")),
               module.register_forward_hook(lambda m, a, o: phase("backward"))]

    def pre_step(opt, args, kwargs):
        ledger.tag([p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None], "gradients")
        phase("optimizer")
        ledger.module = ""

    def post_step(opt, args, kwargs):
        ledger.tag_optimizer(opt, paged=paged)
        phase("zero_grad")
        steps[0] += 1

    handles += [optimizer.register_step_pre_hook(pre_step), optimizer.register_step_post_hook(post_step)]
    return handles


def _warm_up(trainer) -> None:
    """Step 1 without forward and backward: zero gradients, then the optimizer's own step creates its
    state, as a first training step would (the state's shapes depend on the parameters only). Step 1's
    forward and backward peaks are below step 2's, which run with that state alive."""
    import torch

    for p in trainer.params:
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()
    trainer.optimizer.zero_grad(set_to_none=True)


def trace_step(cfg: PlanConfig, fake: bool = True) -> StepTrace:
    """Run one optimizer step of the setup under a MemoryLedger; fake=True allocates nothing."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    from soritune.train.adapters import build_model
    from soritune.train.efficiency import WhisperLoss
    from soritune.train.loop import Trainer
    from soritune.train.run import _reset_accelerate

    t0 = time.perf_counter()
    tcfg = cfg.train_config()
    acc = _accelerator(cfg)
    compute_dtype = torch.bfloat16 if cfg.precision in ("bf16-mixed", "fp16-mixed", "bf16") else None
    mode = FakeTensorMode(allow_non_fake_inputs=True) if fake else contextlib.nullcontext()
    try:
        with mode:
            with _building(fake, torch.bfloat16 if cfg.precision == "bf16" else None):
                built = build_model(tcfg, device="cpu", compute_dtype=compute_dtype)
            module = WhisperLoss(built.model, dynamic_length=True, chunk_tokens=cfg.resolved_chunk())
        # the optimizer is built outside fake mode: bitsandbytes fills its quantisation maps from values
        trainer = Trainer(config=tcfg, accelerator=acc, built=built, plan=SimpleNamespace(per_epoch=1),
                          module=module, dev_rows=[], run_dir=Path("."), metrics=None)
        with mode:
            inner = trainer.optimizer.optimizer
            if cfg.gpu_foreach and isinstance(inner, (torch.optim.AdamW, torch.optim.Adam)):
                for group in inner.param_groups:
                    group["foreach"] = True
            whisper = built.model.get_base_model() if hasattr(built.model, "get_base_model") else built.model
            batch = synthetic_batch(cfg, whisper.config.num_mel_bins, whisper.config.vocab_size)
            ledger = MemoryLedger(fake=fake)
            handles = _hooks(ledger, module, inner, paged=cfg.optimizer.startswith("paged"))
            try:
                with _as_real(fake), ledger, ledger.saved_tensors_hooks():
                    ledger.add_model(built.model, batch)
                    _warm_up(trainer)  # step 1: the optimizer creates its state
                    trainer.optimizer_step([batch] * min(cfg.grad_accum, 2))  # step 2: the steady state
            finally:
                for h in handles:
                    h.remove()
        return StepTrace(ledger.result(), built.trainable_params, built.total_params,
                         time.perf_counter() - t0, fake)
    finally:
        _reset_accelerate(acc)
