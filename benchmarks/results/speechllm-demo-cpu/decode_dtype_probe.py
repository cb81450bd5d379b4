"""The probe behind decode_dtype.md: prefill and per-step decode time of the demo's stage-2 LLM as trained
(PEFT, float32), as a merged float32 copy and as a merged bfloat16 copy (8 rows of 150 input embeddings)."""

import time

import torch

from soritune.speechllm.decoding import inference_copy
from soritune.speechllm.model import SpeechLLM

RUN = "/tmp/sllm3/demo_run/out/run/stage2/model"


def timed_generate(llm, kw: dict, steps: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    llm.generate(**kw, max_new_tokens=steps, min_new_tokens=steps)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench(llm, name: str, dtype, n: int = 10) -> None:
    torch.manual_seed(0)
    emb = (torch.randn(8, 150, 640) * 0.05).to(dtype)
    kw = dict(inputs_embeds=emb, attention_mask=torch.ones(8, 150, dtype=torch.long), do_sample=False, pad_token_id=0)
    with torch.no_grad():
        llm.generate(**kw, max_new_tokens=2, min_new_tokens=2)  # warm-up
        w1, c1 = timed_generate(llm, kw, 1)
        w2, c2 = timed_generate(llm, kw, n + 1)
    print(f"{name}: prefill wall {w1:.2f}s cpu {c1:.2f}s | decode step wall {(w2 - w1) / n * 1000:.0f} ms "
          f"cpu {(c2 - c1) / n * 1000:.0f} ms", flush=True)


def copy_of(llm, dtype_name: str):
    t = time.process_time()
    copy = inference_copy(llm, dtype_name)
    print("copy cpu", time.process_time() - t)
    return copy


def main() -> None:
    torch.set_num_threads(2)
    m = SpeechLLM.load(RUN)
    bench(m.llm, "fp32 peft", torch.float32)
    bench(copy_of(m.llm, "float32"), "fp32 merged", torch.float32)
    bench(copy_of(m.llm, "bfloat16"), "bf16 merged", torch.bfloat16)
    bench(m.llm, "fp32 peft again", torch.float32)


if __name__ == "__main__":
    main()
