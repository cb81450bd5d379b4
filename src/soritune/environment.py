"""The environment block of every report (benchmarks, demo, `soritune report`): machine, device,
threads, library versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("soritune", "torch", "transformers", "ctranslate2", "faster-whisper", "peft", "accelerate",
            "bitsandbytes", "numpy")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX512-BF16 in /proc/cpuinfo's flags): there bf16
    autocast trains faster at the same CER (demo, 100 steps: LoRA 260 vs 300 s back to back; QLoRA 239 s vs 327 s
    in an fp32 run at higher load, so that ratio is loose); elsewhere it is emulated."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def nvidia_driver() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None when there is none."""
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = res.stdout.strip().splitlines()
    return lines[0].strip() if res.returncode == 0 and lines else None


def gpu_info(device: str) -> dict:
    import torch

    idx = torch.device(device).index or 0
    props = torch.cuda.get_device_properties(idx)
    return {"gpu_name": props.name, "gpu_memory_gb": round(props.total_memory / 1024 ** 3, 2),
            "gpu_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
            "driver": nvidia_driver(), "gpu_count": torch.cuda.device_count()}


def environment(device: str = "cpu", threads: int | None = None) -> dict:
    """Everything a reader needs to place the numbers: host, CPU, threads, GPU, versions."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    env = {
        "device": str(device),
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "load_average_1_5_15": load,
        "versions": package_versions(),
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda_available"] = torch.cuda.is_available()
        if str(device).startswith("cuda") and torch.cuda.is_available():
            env.update(gpu_info(str(device)))
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return env


def describe_device(env: dict) -> str:
    """One line: 'NVIDIA H100 (driver 550.54)' or 'AMD EPYC, 2 threads'."""
    if env.get("gpu_name"):
        return f"{env['gpu_name']} (driver {env.get('driver') or '?'}, CUDA {env.get('cuda') or '?'})"
    return f"{env.get('cpu_model', 'CPU')}, {env.get('threads') or env.get('cpu_count')} threads"
