"""Model spec strings: parse them, or fail with one line naming the accepted forms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from soritune.errors import ModelSpecError

ARCHS = ("tiny", "base", "small", "medium", "large-v2", "large-v3", "large-v3-turbo")
ACCEPTED = (
    "accepted model specs: bundled:whisper-base | hf:ID_OR_DIR (or a bare local directory) | "
    "ct2:DIR | tiny: | random:ARCH with ARCH one of " + ", ".join(ARCHS)
)


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # bundled | hf | ct2 | tiny | random
    arg: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}"


def _dir_spec(path: str) -> ModelSpec:
    """A directory: CTranslate2 when it holds model.bin (so the ct2 backend uses it as it is), else hf."""
    return ModelSpec("ct2" if (Path(path) / "model.bin").is_file() else "hf", path)


def parse_spec(spec: str) -> ModelSpec:
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"empty model spec; {ACCEPTED}")
    spec = spec.strip()
    kind, sep, arg = spec.partition(":")
    if not sep or (len(kind) == 1 and Path(spec).exists()):  # bare path (also C:\... style)
        if Path(spec).is_dir():
            return _dir_spec(spec)
        raise ModelSpecError(f"unknown model spec {spec!r} (not a directory); {ACCEPTED}")
    kind = kind.lower()
    if kind == "bundled":
        if arg != "whisper-base":
            raise ModelSpecError(f"unknown bundled model {arg!r}: only bundled:whisper-base ships; {ACCEPTED}")
        return ModelSpec("bundled", arg)
    if kind == "hf":
        if not arg:
            raise ModelSpecError(f"hf: needs a hub id or a directory; {ACCEPTED}")
        return _dir_spec(arg) if Path(arg).is_dir() else ModelSpec("hf", arg)
    if kind == "ct2":
        if not (Path(arg) / "model.bin").is_file():
            raise ModelSpecError(f"ct2:{arg}: no model.bin in that directory; {ACCEPTED}")
        return ModelSpec("ct2", arg)
    if kind == "tiny":
        return ModelSpec("tiny", arg or "default")
    if kind == "random":
        if arg not in ARCHS:
            raise ModelSpecError(f"random:{arg}: unknown architecture; {ACCEPTED}")
        return ModelSpec("random", arg)
    if Path(spec).is_dir():
        return _dir_spec(spec)
    raise ModelSpecError(f"unknown model spec {spec!r}; {ACCEPTED}")
