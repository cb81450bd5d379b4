"""One `bench train` measurement in a fresh process: `python -m soritune.bench.train_worker JOB OUT`.

JOB (JSON) names the runner: "soritune" (soritune.train.run with the job's method) or
"hf-peft-recipe" (soritune.bench.train_recipe). OUT receives the row as JSON, or {"error": ...}.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from soritune.bench.memory import MemoryMeter
from soritune.bench.train_measure import BudgetReached, StepClock, memory_fields, resolve_device, resolved_precision

BIG_STEPS = 1_000_000  # "until the time budget": the clock stops the run


def run_soritune(job: dict) -> dict:
    import torch

    from soritune.train import TrainConfig
    from soritune.train.run import run

    torch.set_num_threads(job["threads"])
    device = resolve_device(job["device"])
    captured: dict = {}  # parameter counts from the "start" event (the clock may end the run early)
    steps = job["warmup_steps"] + job["steps"] if job.get("steps") else BIG_STEPS
    cfg = TrainConfig(model=job["model"], train=job["manifest"], out=str(Path(job["workdir"]) / f"run-{job['name']}"),
                      method=job["method"], batch_size=job["batch_size"], max_steps=steps, warmup_steps=0,
                      eval_at_start=False, save_every=10 ** 9, log_every=10 ** 6, device=job["device"],
                      mixed_precision=job["mixed_precision"], gradient_checkpointing=job["gradient_checkpointing"],
                      dynamic_length=job["dynamic_length"], threads=job["threads"], overwrite=True)
    step_clock = StepClock(device, job["warmup_steps"], job.get("steps"), job.get("seconds"))
    meter = MemoryMeter(device, interval_s=0.01).start()
    try:
        def progress(event: dict) -> None:
            if event.get("event") == "start":
                captured.update(trainable=event["trainable_params"], total=event["total_params"])
            step_clock(event)

        run(cfg, progress=progress)
    except BudgetReached:
        pass
    finally:
        reading = meter.stop()
    return {"method": job["method"], "runner": "soritune", **step_clock.summary(job["batch_size"]),
            **memory_fields(reading, device), "trainable_params": captured.get("trainable"),
            "total_params": captured.get("total"),
            "encoder_frames": "dynamic (per batch)" if job["dynamic_length"] else "3000 (30 s)",
            "settings": {"loop": "soritune.train.run", "method": job["method"], "lora_r": cfg.lora_r,
                         "lora_alpha": cfg.lora_alpha, "target": cfg.target, "target_side": cfg.target_side,
                         "gradient_checkpointing": cfg.gradient_checkpointing, "mixed_precision": resolved_precision(cfg.mixed_precision, device),
                         "optimizer": cfg.optimizer, "dynamic_length": cfg.dynamic_length, "device": device}}


def export_hf(job: dict) -> dict:
    """Write the model's weights (seed 0, as soritune.train loads them) as a Hugging Face directory."""
    from soritune.models import load

    loaded = load(job["model"], seed=0)
    loaded.model.save_pretrained(job["dest"])
    loaded.processor.save_pretrained(job["dest"])
    return {"dir": job["dest"]}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job_path, out_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    try:
        if job["runner"] == "soritune":
            res = run_soritune(job)
        elif job["runner"] == "export-hf":
            res = export_hf(job)
        elif job["runner"] == "hf-peft-recipe":
            from soritune.bench.train_recipe import run_recipe

            res = run_recipe(job)
        else:
            raise ValueError(f"unknown runner {job['runner']!r}")
    except Exception as e:  # noqa: BLE001 - the parent records the reason and goes on
        res = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
    from soritune.jsonio import write_json

    write_json(out_path, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
