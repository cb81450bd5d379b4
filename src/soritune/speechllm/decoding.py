"""Decoding helpers of the speech LLM: the loop guard, and the LLM in its inference form.

Loop guard: an under-trained speech LLM (and, users report, a trained one on odd audio) answers with a
token unit repeated up to the token cap ("1000000000...", "the the the ..."); each row of a batch that loops
keeps the whole batch decoding until the cap. A row stops once its newest tokens loop (`soritune.loops`:
one unit of 1-16 tokens repeated back to back 3+ times over 12+ tokens; what was generated up to
there is kept, and the row is counted as loop-stopped: nothing is trimmed or hidden).

Decoding form (`inference_copy`, used through `SpeechLLM.decoding`): for decoding only, a copy of the LLM
with LoRA merged into the base weights (no adapter matmuls per step), optionally in bfloat16 (half the bytes
per step; Gemma-3-270M's 262k-word head alone is 671 MB in float32). The trained LLM is never modified. On
this project's 2-core CPU (AMX and AVX512-BF16 present) bfloat16 did not pay, measured as process CPU time
under load (benchmarks/results/speechllm-demo-cpu/decode_dtype.md): float32 stays the default.

    from soritune.loops import loop_period
    loop_period([5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7])  # -> 1
"""

from __future__ import annotations

from soritune.loops import loop_period


def loop_guard(stop_ids: list[int]):
    """A transformers StoppingCriteria that ends a row when it loops; `.stopped_at[row]` is the number of
    new tokens the row had then (rows that ended on a stop token first are not counted)."""
    import torch
    from transformers import StoppingCriteria

    stops = set(stop_ids)

    class LoopGuard(StoppingCriteria):
        def __init__(self):
            self.stopped_at: dict[int, int] = {}
            self.start: int | None = None  # prompt ids in front of the new tokens (none with inputs_embeds)

        def __call__(self, input_ids, scores, **kwargs):
            if self.start is None:
                self.start = input_ids.shape[1] - 1
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            for row, ids in enumerate(input_ids[:, self.start:].tolist()):
                if row in self.stopped_at:
                    done[row] = True
                elif not stops.intersection(ids) and loop_period(ids) is not None:
                    self.stopped_at[row] = len(ids)
                    done[row] = True
            return done

    return LoopGuard()


def bf16_matmul_native() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AMX or AVX512-BF16, as oneDNN uses)."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(dtype: str, model) -> str:
    """`auto`: bfloat16 for a float LLM on a CPU with native bf16 matrix units, else float32 (opt-in: it did
    not pay on the 2-core CPU measured, see the module docstring)."""
    if dtype != "auto":
        return dtype
    native = model.device.type == "cpu" and model.config.llm_quantization is None and bf16_matmul_native()
    return "bfloat16" if native else "float32"


def inference_copy(llm, dtype: str):
    """A copy of the LLM for decoding: every weight in `dtype`, LoRA merged into the base weights (the sum
    taken in the weights' own precision before the cast), adapters removed. `llm` is left untouched; no
    float32 copy is made on the way (each new weight is made from the original directly)."""
    import copy

    import torch

    target = getattr(torch, dtype)
    made: dict = {}
    for module in llm.modules():
        if hasattr(module, "get_delta_weight") and hasattr(module, "lora_A"):
            weight = module.get_base_layer().weight
            with torch.no_grad():
                delta = sum(module.get_delta_weight(a) for a in module.active_adapters if a in module.lora_A)
                made[id(weight)] = torch.nn.Parameter((weight + delta).to(target), requires_grad=False)
    for p in llm.parameters():
        if id(p) not in made:
            made[id(p)] = torch.nn.Parameter(p.detach().to(target), requires_grad=False)
    clone = copy.deepcopy(llm, made)  # the memo hands deepcopy the new weights (ties kept: same object)
    if hasattr(clone, "peft_config"):
        clone = clone.unload()  # peft: the LoRA layers back to their (merged) base layers
    return clone.eval()
