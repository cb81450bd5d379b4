"""The environment block every report carries: machine, threads, device, library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_model(),
           "cpu_count": os.cpu_count()}
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
    except ImportError:
        pass
    env["versions"] = {p: _version(p) for p in ("soritune", "torch", "transformers", "peft", "accelerate",
                                                  "bitsandbytes", "ctranslate2", "faster-whisper")}
    return env
