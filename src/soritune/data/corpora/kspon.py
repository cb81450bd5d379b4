"""KsponSpeech (AI-Hub, ETRI transcription rules) in its distributed layout.

    ROOT/KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm (+ .txt)   ... parts 01-05
    ROOT/KsponSpeech_eval/eval_clean/KsponSpeech_E00001.pcm (+ .txt)       ... eval_other
    ROOT/KsponSpeech_scripts/{train,dev,eval_clean,eval_other}.trn          "path :: text"

With the `.trn` scripts, they are the inputs (one utterance a line, split = script name, text
from the script, audio resolved against ROOT). Without them, every `.pcm` / `.txt` pair found
under ROOT is an input: split from the folder (eval_clean, eval_other; folders 0621-0623 are
dev, the rest train), text from the `.txt` beside the audio. Encodings are detected per script
file (a hint) and confirmed per line or per `.txt` file. `id` is the file stem.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from soritune.data.corpora.base import Corpus, Item, text_label
from soritune.data.encoding import detect_encoding
from soritune.errors import SoritunError

SPLITS = ("train", "dev", "eval_clean", "eval_other")
DEV_FOLDERS = range(621, 624)
_FOLDER = re.compile(r"KsponSpeech_(\d{4})")
_SEP = b"::"


def find_scripts(root: Path) -> list[Path]:
    """`.trn` scripts under ROOT/KsponSpeech_scripts, ROOT or ROOT/*/KsponSpeech_scripts."""
    found: dict[str, Path] = {}
    for pattern in ("KsponSpeech_scripts/*.trn", "*.trn", "*/KsponSpeech_scripts/*.trn"):
        for p in sorted(root.glob(pattern)):
            found.setdefault(p.stem, p)
    order = {s: i for i, s in enumerate(SPLITS)}
    return sorted(found.values(), key=lambda p: (order.get(p.stem, len(SPLITS)), p.stem))


def split_of(path: Path) -> str:
    """Official split of an audio file from its folders (no scripts)."""
    parts = path.parts
    for name in ("eval_clean", "eval_other"):
        if name in parts:
            return name
    m = _FOLDER.fullmatch(path.parent.name)
    if m and int(m.group(1)) in DEV_FOLDERS:
        return "dev"
    return "train"


def _parts(rel: str) -> list[str]:
    return [p for p in rel.replace("\\", "/").split("/") if p and p != "."]


def _stem(rel: str) -> str:
    return os.path.splitext(rel.replace("\\", "/").rsplit("/", 1)[-1])[0]


class _AudioResolver:
    """Maps a script's relative audio path to a file: ROOT-relative, or found by stem."""

    def __init__(self, root: Path):
        self.root = root
        self.bases = [root, root.parent] + sorted(p for p in root.iterdir() if p.is_dir())
        self.rule: tuple[str, int] | None = None
        self.index: dict[str, str] | None = None

    def find_rule(self, rel: str) -> None:
        parts = _parts(rel)
        for k in range(len(parts)):
            for base in self.bases:
                if base.joinpath(*parts[k:]).is_file():
                    self.rule = (str(base), k)
                    return
        self.rule = None

    def __call__(self, rel: str) -> str | None:
        if self.rule is not None:  # plain string joins: this runs once per utterance
            base, k = self.rule
            return os.path.join(base, *_parts(rel)[k:])
        if self.index is None:  # layout re-organised: index every .pcm under ROOT by stem
            self.index = {}
            for d, _, files in os.walk(self.root):
                for f in files:
                    if f.lower().endswith(".pcm"):
                        self.index.setdefault(f[:-4], os.path.join(d, f))
        return self.index.get(_stem(rel))


def _plan_scripts(root: Path, scripts: list[Path]) -> Iterator[Item]:
    resolver = _AudioResolver(root)
    for script in scripts:
        split = script.stem
        with script.open("rb") as f:
            hint = detect_encoding(f.read(1 << 16))
            f.seek(0)
            first = True
            for lineno, line in enumerate(f, 1):
                if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                line = line.rstrip(b"\r\n")
                if not line.strip():
                    continue
                cut = line.find(_SEP)
                if cut < 0:
                    yield Item(f"{script.name}:{lineno}", split, None, text_bytes=line, hint=hint,
                               reason="malformed", detail=f"{script.name}:{lineno}: no 'path :: text' separator")
                    continue
                rel = line[:cut].decode("utf-8", "replace").strip()
                if first:
                    resolver.find_rule(rel)
                    first = False
                yield Item(_stem(rel), split, resolver(rel), text_bytes=line[cut + len(_SEP):].strip(), hint=hint)


def _plan_tree(root: Path) -> Iterator[Item]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        pairs: dict[str, dict[str, str]] = {}
        for f in files:
            stem, ext = os.path.splitext(f)
            if ext.lower() in (".pcm", ".txt"):
                pairs.setdefault(stem, {})[ext.lower()] = os.path.join(d, f)
        for stem in sorted(pairs):
            p = pairs[stem]
            audio = p.get(".pcm")
            split = split_of(Path(audio or p[".txt"]))
            yield Item(stem, split, audio, label_path=p.get(".txt"))


def plan(config, notes: dict) -> Iterator[Item]:
    root = Path(config.root)
    if not root.is_dir():
        raise SoritunError(f"KsponSpeech root {root} is not a directory")
    scripts = find_scripts(root)
    notes["text_source"] = "scripts: " + ", ".join(p.name for p in scripts) if scripts else "per-utterance .txt"
    return _plan_scripts(root, scripts) if scripts else _plan_tree(root)


CORPUS = Corpus(
    name="kspon",
    splits=SPLITS,
    plan=plan,
    read_label=text_label,
    default_norm="etri",
    description="KsponSpeech: .pcm + .txt tree, with or without KsponSpeech_scripts/*.trn",
)
