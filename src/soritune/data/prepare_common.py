"""The prepare stage: corpus -> manifests + quarantine + report, in parallel, streaming, resumable.

`run(PrepareConfig) -> PrepareResult`. The corpus reader lists its utterances (paths and raw
bytes: small), the list is cut into shards, and each shard is processed by a worker process
(`--workers`, default 2; or Ray tasks with `engine='ray'`) that streams its rows to
`OUT/.shards/NNNNNN.SPLIT.jsonl` and its rejects to `NNNNNN.quarantine.jsonl`, then writes
`NNNNNN.done.json` (its counts) last, each file by rename. So a killed run leaves only whole
shards; re-running with the same inputs and settings skips every shard with a `done` file and
finishes the rest, with no duplicates (a changed input list or setting starts afresh).
The shards are then concatenated in order into

    OUT/{split}.jsonl        manifest rows (id, audio, duration, text, text_pron, text_raw,
                             split, source, + corpus metadata)
    OUT/quarantine.jsonl     every input not in a manifest: id, split, reason, raw_text, audio,
                             source, detail
    OUT/prepare_report.json  counts per split and reason (they add up to `inputs`), hours,
                             normalisation version, throughput, the resolved config
    OUT/config.yaml          the resolved config (OUT/summary.json is the report; prepare_report.json links to it)

`audio` in a manifest row is absolute when the audio is referenced in place (ROOT is resolved
first, so a relative ROOT gives absolute paths too), and relative to OUT (the manifest's folder, as
soritune's readers resolve it) when it was converted (`convert='flac'|'wav'`, under OUT/audio/).
A full disk (or any other write failure) ends the run with one line naming OUT; finished shards are
kept, so re-running after freeing space resumes.
Memory: the parent holds the list of items (paths + raw transcript bytes, ~0.5 KB each) and
the per-shard counts; rows never accumulate in memory anywhere.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, field_validator

from soritune.config import StageConfig
from soritune.data.corpora import Item, Settings, get_corpus
from soritune.data.corpora.base import process_item
from soritune.data.korean_text import NORMALIZATION_VERSION
from soritune.errors import PrepareError, SoritunError
from soritune.jsonio import write_json
from soritune.rundir import write_run

SHARD_DIR = ".shards"
RANDOM_SPLITS = ("train", "dev", "test")
Progress = Callable[[int, int], None]  # (utterances done, total)



class PrepareConfig(StageConfig):
    """Settings of `soritune prepare CORPUS ROOT --out DIR`."""

    corpus: str = Field(description="registered corpus reader: kspon, aihub-lecture, manifest")
    root: str = Field(description="corpus root folder (or list file for the manifest reader)")
    out: str = Field(description="output folder for manifests, quarantine and report")
    workers: int = Field(2, ge=1, description="worker processes (local) or concurrent tasks (ray)")
    shard_size: int = Field(2000, ge=1, description="utterances per shard (unit of parallel work and resume)")
    engine: Literal["local", "ray"] = Field("local", description="local process pool or a Ray cluster")
    ray_address: str | None = Field(None, description="Ray cluster address (None: start or join a local one)")
    norm: Literal["etri", "basic"] | None = Field(None, description="text normalisation (None: the corpus default)")
    mode: Literal["verbatim", "fluent"] = Field("verbatim", description="keep (verbatim) or drop (fluent) fillers and repetitions")
    pron_first: bool = Field(False, description="duals are written (pronunciation)/(spelling)")
    min_duration_s: float = Field(0.5, ge=0, description="shorter utterances are quarantined too_short")
    max_duration_s: float = Field(30.0, gt=0, description="longer utterances are quarantined too_long (Whisper: 30 s)")
    max_label_tokens: int = Field(448, ge=8, description="decoder positions incl. special tokens (Whisper: 448)")
    convert: Literal["none", "flac", "wav"] = Field("none", description="reference audio in place, or write 16 kHz FLAC/WAV under OUT/audio")
    split: Literal["official", "random"] = Field("official", description="the corpus's splits, or a seeded random split")
    ratios: list[float] = Field([8.0, 1.0, 1.0], description="train:dev[:test] proportions for split=random")
    seed: int = Field(0, description="seed of the random split")
    keep_shards: bool = Field(False, description="keep OUT/.shards after merging")

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        if len(v) not in (2, 3) or any(r < 0 for r in v) or sum(v) <= 0:
            raise ValueError("ratios must be 2 or 3 non-negative numbers (train:dev[:test]) with a positive sum")
        return v


@dataclass
class PrepareResult:
    out_dir: str
    corpus: str
    inputs: int
    kept: int
    quarantined: int
    kept_by_split: dict[str, int]
    quarantined_by_reason: dict[str, int]
    hours_by_split: dict[str, float]
    manifests: dict[str, str]
    quarantine_path: str
    report_path: str
    elapsed_s: float
    utterances_per_s: float
    shards: int
    shards_resumed: int
    normalization_version: str = NORMALIZATION_VERSION
    notes: dict = field(default_factory=dict)


def parse_ratios(text: str) -> list[float]:
    """'8:1:1' -> [8.0, 1.0, 1.0]."""
    try:
        return [float(x) for x in text.replace(",", ":").split(":")]
    except ValueError:
        raise SoritunError(f"--ratios expects numbers like 8:1:1, got {text!r}") from None


def mark_duplicates(items: list[Item]) -> int:
    """Later items whose id was already seen get reason duplicate_id (in place); returns how many."""
    seen: set[str] = set()
    n = 0
    for i, it in enumerate(items):
        if it.id in seen and not it.reason:
            items[i] = it._replace(reason="duplicate_id", detail=f"id {it.id!r} appears earlier in the input")
            n += 1
        seen.add(it.id)
    return n


def assign_random_splits(items: list[Item], ratios: list[float], seed: int) -> tuple[str, ...]:
    """Seeded shuffle, then exact counts per ratio (first split takes the rounding); in place."""
    names = RANDOM_SPLITS[: len(ratios)]
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    counts = [math.floor(len(items) * r / sum(ratios)) for r in ratios]
    counts[0] += len(items) - sum(counts)
    pos = 0
    for name, count in zip(names, counts):
        for i in order[pos : pos + count]:
            items[i] = items[i]._replace(split=name)
        pos += count
    return names


def effective_shard_size(n_items: int, shard_size: int) -> int:
    """Small corpora get smaller shards (>= 64 a shard, ~64 shards) so all workers have work."""
    return max(1, min(shard_size, max(64, math.ceil(n_items / 64))))


def fingerprint(config: PrepareConfig, settings: Settings, items: list[Item], shard_size: int) -> str:
    """Identifies a run's inputs and settings: shards are only reused under the same one."""
    h = hashlib.sha256()
    h.update(json.dumps([settings.__dict__, config.split, config.ratios, config.seed, shard_size],
                        sort_keys=True, default=str).encode())
    for it in items:
        h.update("\0".join(str(x) for x in (it.id, it.split, it.audio, it.label_path, it.text, it.reason)).encode())
        h.update(it.text_bytes or b"\1")
    return h.hexdigest()


def process_shard(task: dict) -> dict:
    """Worker: prepare one shard's items, write its files atomically, return its counts."""
    corpus = get_corpus(task["corpus"])
    settings: Settings = task["settings"]
    shard_dir = Path(task["shard_dir"])
    idx = task["index"]
    stats = {"index": idx, "n": len(task["items"]), "kept": {}, "quarantined": {}, "duration_s": {}}
    handles: dict[str, tuple[Path, object]] = {}

    def out(name: str):
        if name not in handles:
            tmp = shard_dir / f".{idx:06d}.{name}.jsonl.tmp"
            handles[name] = (tmp, tmp.open("w", encoding="utf-8"))
        return handles[name][1]

    try:
        for item in task["items"]:
            try:
                ok, row = process_item(item, corpus.read_label, settings)
            except Exception as e:  # noqa: BLE001 - a bug must not lose the utterance either
                ok, row = False, {"id": item.id, "split": item.split, "reason": "internal_error",
                                  "raw_text": item.text, "audio": item.audio, "source": settings.source,
                                  "detail": f"{type(e).__name__}: {e}"}
            split = row["split"]
            if ok:
                stats["kept"][split] = stats["kept"].get(split, 0) + 1
                stats["duration_s"][split] = stats["duration_s"].get(split, 0.0) + row["duration"]
                out(split).write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                per = stats["quarantined"].setdefault(split, {})
                per[row["reason"]] = per.get(row["reason"], 0) + 1
                out("quarantine").write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        for _, fh in handles.values():
            fh.close()
    for name, (tmp, _) in handles.items():
        os.replace(tmp, shard_dir / f"{idx:06d}.{name}.jsonl")
    stats["files"] = sorted(handles)
    write_json(shard_dir / f"{idx:06d}.done.json", stats)
    return stats


def _open_shard_dir(out: Path, fp: str) -> tuple[Path, dict[int, dict]]:
    """OUT/.shards for this fingerprint, and the counts of the shards already done there."""
    shard_dir = out / SHARD_DIR
    plan_file = shard_dir / "plan.json"
    if shard_dir.exists():
        try:
            same = json.loads(plan_file.read_text())["fingerprint"] == fp
        except (OSError, ValueError, KeyError):
            same = False
        if not same:
            shutil.rmtree(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    write_json(plan_file, {"fingerprint": fp})
    done = {}
    for p in shard_dir.glob("*.done.json"):
        stats = json.loads(p.read_text())
        done[stats["index"]] = stats
    for p in shard_dir.glob(".*.tmp"):  # leftovers of a killed worker
        p.unlink(missing_ok=True)
    return shard_dir, done


def _run_local(tasks: list[dict], workers: int, on_done: Callable[[dict], None]) -> None:
    if workers == 1 or len(tasks) <= 1:
        for t in tasks:
            on_done(process_shard(t))
        return
    import multiprocessing as mp

    # spawn: workers start clean (no copy of the parent's item list, no inherited threads)
    with mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        for stats in pool.imap_unordered(process_shard, tasks, chunksize=1):
            on_done(stats)


def _merge(shard_dir: Path, out: Path, name: str, indices: list[int], done: dict[int, dict]) -> Path:
    """Concatenate the shards' NAME files in shard order into OUT/NAME.jsonl (atomically)."""
    dest = out / f"{name}.jsonl"
    tmp = out / f".{name}.jsonl.tmp"
    with tmp.open("wb") as fo:
        for i in indices:
            if name in done[i].get("files", ()):
                with (shard_dir / f"{i:06d}.{name}.jsonl").open("rb") as fi:
                    shutil.copyfileobj(fi, fo, 1 << 20)
    os.replace(tmp, dest)
    return dest


def _aggregate(done: dict[int, dict]) -> tuple[dict, dict, dict, dict]:
    kept: dict[str, int] = {}
    reasons: dict[str, int] = {}
    by_split: dict[str, dict] = {}
    duration: dict[str, float] = {}
    for stats in done.values():
        for split, n in stats["kept"].items():
            kept[split] = kept.get(split, 0) + n
            duration[split] = duration.get(split, 0.0) + stats["duration_s"].get(split, 0.0)
        for split, per in stats["quarantined"].items():
            q = by_split.setdefault(split, {})
            for reason, n in per.items():
                q[reason] = q.get(reason, 0) + n
                reasons[reason] = reasons.get(reason, 0) + n
    return kept, reasons, by_split, duration


def run(config: PrepareConfig, progress: Progress | None = None) -> PrepareResult:
    """Prepare a corpus into OUT (see the module docstring). Resumes an interrupted run.

    With workers > 1 the pool starts its processes with 'spawn' (clean workers, safe beside
    threads such as a progress bar), so a script calling this needs the usual
    `if __name__ == "__main__":` guard. `progress(done, total)` is called as shards finish.
    """
    # ROOT absolute: rows reference audio in place, and readers resolve relative paths against the
    # manifest's folder, not against the directory prepare happened to run in
    config = config.model_copy(update={"root": str(Path(config.root).expanduser().resolve())})
    try:
        return _run(config, progress)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise PrepareError(f"disk full while writing {config.out} ({e.strerror}): free some space and run the "
                               "same command again; finished shards are kept and resume") from None
        if e.filename is None:
            raise
        raise PrepareError(f"cannot write {e.filename}: {e.strerror}") from None


def _run(config: PrepareConfig, progress: Progress | None) -> PrepareResult:
    t0 = time.perf_counter()
    corpus = get_corpus(config.corpus)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(source=corpus.name, norm=config.norm or corpus.default_norm, mode=config.mode,
                        pron_first=config.pron_first, min_duration_s=config.min_duration_s,
                        max_duration_s=config.max_duration_s, max_label_tokens=config.max_label_tokens,
                        convert=config.convert, out_dir=str(out.resolve()))
    notes: dict = {}
    items = list(corpus.plan(config, notes))
    if not items:
        raise PrepareError(f"no utterances found in {config.root} for corpus {corpus.name!r} ({corpus.description})")
    notes["duplicate_ids"] = mark_duplicates(items)
    splits = list(assign_random_splits(items, config.ratios, config.seed) if config.split == "random" else corpus.splits)
    n_items = len(items)
    size = effective_shard_size(n_items, config.shard_size)
    fp = fingerprint(config, settings, items, size)
    shard_dir, done = _open_shard_dir(out, fp)
    indices = list(range(math.ceil(n_items / size)))
    resumed = sum(1 for i in indices if i in done)
    tasks = [{"corpus": corpus.name, "index": i, "items": items[i * size : (i + 1) * size], "settings": settings,
              "shard_dir": str(shard_dir)} for i in indices if i not in done]
    del items
    finished = sum(done[i]["n"] for i in done)
    if progress:
        progress(finished, n_items)

    def on_done(stats: dict) -> None:
        nonlocal finished
        done[stats["index"]] = stats
        finished += stats["n"]
        if progress:
            progress(finished, n_items)

    if config.engine == "ray":
        from soritune.data.engine_ray import run_shards_ray

        run_shards_ray(process_shard, tasks, on_done, address=config.ray_address,
                       max_in_flight=max(config.workers, 1) * 2)
    else:
        _run_local(tasks, config.workers, on_done)
    tasks.clear()

    kept, reasons, q_by_split, duration = _aggregate(done)
    n_kept, n_quarantined = sum(kept.values()), sum(reasons.values())
    if n_kept + n_quarantined != n_items:
        raise PrepareError(f"accounting mismatch: {n_kept} kept + {n_quarantined} quarantined != {n_items} inputs")
    splits += sorted(s for s in kept if s not in splits)
    manifests = {s: str(_merge(shard_dir, out, s, indices, done)) for s in splits}
    quarantine_path = _merge(shard_dir, out, "quarantine", indices, done)
    elapsed_s = time.perf_counter() - t0
    split_names = splits + sorted(s for s in q_by_split if s not in splits)
    report = {
        "corpus": corpus.name, "root": str(config.root), "out": str(out),
        "normalization_version": NORMALIZATION_VERSION, "norm": settings.norm, "mode": config.mode,
        "inputs": n_items, "kept": n_kept, "quarantined": n_quarantined,
        "accounted": n_kept + n_quarantined == n_items,
        "splits": {s: {"inputs": kept.get(s, 0) + sum(q_by_split.get(s, {}).values()), "kept": kept.get(s, 0),
                       "hours": round(duration.get(s, 0.0) / 3600, 4), "quarantined": q_by_split.get(s, {})}
                   for s in split_names},
        "reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "notes": notes, "elapsed_s": round(elapsed_s, 3), "utterances_per_s": round(n_items / elapsed_s, 1),
        "engine": config.engine, "workers": config.workers,
        "shards": {"total": len(indices), "size": size, "resumed": resumed},
        "config": config.model_dump(),
    }
    report_path = write_run(out, config, report, stage="prepare", legacy=("prepare_report.json",))
    if not config.keep_shards:
        shutil.rmtree(shard_dir, ignore_errors=True)
    return PrepareResult(
        out_dir=str(out), corpus=corpus.name, inputs=n_items, kept=n_kept, quarantined=n_quarantined,
        kept_by_split={s: kept.get(s, 0) for s in splits}, quarantined_by_reason=report["reasons"],
        hours_by_split={s: report["splits"][s]["hours"] for s in split_names}, manifests=manifests,
        quarantine_path=str(quarantine_path), report_path=str(report_path), elapsed_s=elapsed_s,
        utterances_per_s=n_items / elapsed_s, shards=len(indices), shards_resumed=resumed, notes=notes)
