"""bench stage: speed and memory of soritune next to named peers, measured in the same run.

- infer_bench: `run(InferBenchConfig) -> InferBenchResult` (`soritune bench infer`): latency, TTFT,
  TPOT, tokens/s, RTFx, peak memory of the torch / CTranslate2 backends vs faster-whisper and HF generate
  (infer_runners: the systems; workload: the clips);
- train_bench: `run(TrainBenchConfig) -> TrainBenchResult` (`soritune bench train`): peak memory and
  samples/s per training method vs the HF + PEFT int8 recipe (train_worker, train_recipe);
- timing, memory, train_measure: the measuring helpers (the environment block comes from
  soritune.environment); report: bench.json, bench.md, PNG.
"""
