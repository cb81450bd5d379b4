"""Curate a manifest: filter, dedupe, trim, sample, split speaker-disjoint, mix in replay rows.

Every input row is accounted for: it is kept, or counted under the FIRST rule that drops it, in
this order: duplicate_id -> dropped_by_duration -> dropped_by_regex -> dropped_by_field ->
deduplicated -> trimmed_percentile -> not_sampled. The counts add up to the input count and are
written to the run `<stem>.curate/` (config.yaml + summary.json, soritune.rundir) beside the output,
`<stem>.curate_report.json` links to its summary; `dropped` writes the dropped rows with a
`reason` (and a `reason_detail`). Then the kept rows are split by speaker (optional) and replay
rows from another manifest are added (marked `replay: true`, never counted as input).

Deterministic for a seed: the same input and config give byte-identical output.

    from soritune.data.curate import CurateConfig, curate
    res = curate(CurateConfig(manifest="all.jsonl", out="formula.jsonl", require=["[0-9A-Za-z]"]))
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal

from pydantic import Field, field_validator, model_validator

from soritune.config import StageConfig
from soritune.data.manifest import iter_manifest, validate_row
from soritune.errors import CurateError
from soritune.jsonio import atomic_write_text
from soritune.rundir import SUMMARY_FILE, link, write_run

COUNT_KEYS = (
    "kept", "duplicate_id", "dropped_by_duration", "dropped_by_regex", "dropped_by_field",
    "deduplicated", "trimmed_percentile", "not_sampled",
)
SPLIT_NAMES = {2: ("train", "test"), 3: ("train", "dev", "test")}

Progress = Callable[[str, int], None]


class CurateConfig(StageConfig):
    """What `soritune curate` does; every rule is off unless set."""

    manifest: Path = Field(description="input manifest (JSONL)")
    out: Path = Field(description="output manifest; its run dir <stem>.curate/ (config.yaml, summary.json) goes "
                      "beside it, <stem>.curate_report.json links to the summary")
    min_duration_s: float | None = Field(None, ge=0, description="drop rows shorter than this (s)")
    max_duration_s: float | None = Field(None, gt=0, description="drop rows longer than this (s)")
    require: list[str] = Field([], description="regex the text must contain (re.search; repeatable: all must match), "
                               "e.g. '[0-9A-Za-z]'")
    exclude: list[str] = Field([], description="regex that drops a text containing it (repeatable)")
    where: list[str] = Field([], description="field=value or field!=value (repeatable: all must hold; a.b reaches "
                             "nested keys; numbers and true/false compare as JSON)")
    dedupe: bool = Field(False, description="drop exact text+audio duplicates and same-audio duplicates (first kept)")
    dedupe_content: bool = Field(False, description="with dedupe: also files with identical bytes under other names "
                                 "(reads the files)")
    trim_percentile: float = Field(0.0, ge=0, lt=50, description="drop this % shortest and this % longest rows")
    sample: int | None = Field(None, ge=1, description="keep at most N rows (see stratify)")
    stratify: Literal["text-length", "none"] = Field("text-length", description="sampling strata: proportional from "
                                                     "text-length deciles, or none")
    speaker_split: str | None = Field(None, description="ratios like 8:1:1 (or 9:1): write <stem>_train/_dev/_test, "
                                      "no speaker in two")
    replay: Path | None = Field(None, description="another manifest to mix in (rows marked replay: true), against forgetting")
    replay_fraction: float = Field(0.1, ge=0, description="add round(fraction * kept) rows sampled from replay")
    seed: int = Field(0, description="seed for sampling, split assignment and replay sampling")
    dropped: Path | None = Field(None, description="also write the dropped rows (JSONL), each with a `reason`")

    @field_validator("require", "exclude")
    @classmethod
    def _regexes_compile(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"invalid regex {pattern!r} ({e})") from None
        return v

    @field_validator("where")
    @classmethod
    def _where_parses(cls, v: list[str]) -> list[str]:
        for clause in v:
            parse_where(clause)
        return v

    @field_validator("speaker_split")
    @classmethod
    def _split_parses(cls, v: str | None) -> str | None:
        if v is not None:
            parse_ratio(v)
        return v

    @model_validator(mode="after")
    def _duration_range(self) -> CurateConfig:
        if self.min_duration_s is not None and self.max_duration_s is not None:
            if self.min_duration_s > self.max_duration_s:
                raise ValueError(f"min_duration_s ({self.min_duration_s}) > max_duration_s ({self.max_duration_s})")
        return self


def parse_ratio(text: str) -> tuple[float, ...]:
    """'8:1:1' -> (0.8, 0.1, 0.1); two or three non-negative parts with a positive sum."""
    try:
        parts = tuple(float(p) for p in text.split(":"))
    except ValueError:
        raise ValueError(f"speaker_split {text!r}: expected numbers like 8:1:1 or 9:1") from None
    if len(parts) not in SPLIT_NAMES or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ValueError(f"speaker_split {text!r}: expected 2 or 3 non-negative parts like 8:1:1 or 9:1")
    total = sum(parts)
    return tuple(p / total for p in parts)


@dataclass
class CurateResult:
    """What curate did; saved as the report. counts add up to input_rows."""

    input_rows: int
    counts: dict[str, int]  # disjoint: kept + every drop rule == input_rows
    details: dict[str, int]  # finer breakdown (dedupe kinds, duration too short/long, ...)
    output: str
    output_rows: int  # kept + replay rows
    kept_duration_s: float
    splits: dict[str, dict] = field(default_factory=dict)  # name -> {path, rows, speakers, duration_s}
    replay: dict | None = None  # requested, added, pool, excluded_* ...
    trim: dict | None = None  # thresholds of the percentile trim
    strata: list[dict] | None = None  # per text-length decile: length range, available, sampled
    dropped: str | None = None
    report: str = ""
    config: dict = field(default_factory=dict)

    @property
    def accounted(self) -> bool:
        return sum(self.counts.values()) == self.input_rows


def run_dir(out: str | Path) -> Path:
    """The curate run beside the output manifest: <stem>.curate/ with config.yaml + summary.json
    (soritune.rundir); the output's folder may be another stage's run (prepare), so not that folder."""
    out = Path(out)
    return out.with_name(f"{out.stem}.curate")


def report_path(out: str | Path) -> Path:
    """<stem>.curate_report.json: the name the report had before the run-dir contract, now a link to
    <stem>.curate/summary.json."""
    out = Path(out)
    return out.with_name(f"{out.stem}.curate_report.json")


def split_path(out: str | Path, name: str) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}_{name}{out.suffix or '.jsonl'}")


# ---- rows as read: the row, its absolute audio path, and whether the path was relative -------------


@dataclass(slots=True)
class Item:
    row: dict
    audio_abs: str  # absolute, normalised path of the audio file
    relative: bool  # the manifest had a relative path: write it relative to the output again
    index: int  # position in its manifest (0-based)


def read_items(path: str | Path) -> Iterator[Item]:
    """Stream a manifest as Items (validated rows; audio resolved against the manifest's folder)."""
    base = str(Path(path).parent.resolve())
    for i, row in enumerate(iter_manifest(path, resolve_audio=False)):
        relative = not os.path.isabs(row["audio"])
        audio_abs = os.path.normpath(os.path.join(base, row["audio"])) if relative else row["audio"]
        yield Item(row, audio_abs, relative, i)


@functools.lru_cache(maxsize=65536)
def _reldir(folder: str, out_dir: str) -> str | None:
    try:
        return os.path.relpath(folder, out_dir)
    except ValueError:  # another drive (Windows): keep the path absolute
        return None


def output_row(item: Item, out_dir: str) -> dict:
    """The row as written into a manifest in `out_dir`: relative audio paths re-based on `out_dir`."""
    row = dict(item.row)
    if item.relative:
        folder, name = os.path.split(item.audio_abs)
        rel = _reldir(folder, out_dir)
        row["audio"] = item.audio_abs if rel is None else (name if rel == "." else os.path.join(rel, name))
    return row


# ---- per-row rules: duration, regex, field ---------------------------------------------------------


@dataclass(frozen=True)
class Where:
    field: str
    negate: bool
    value: str

    def holds(self, row: dict) -> bool:
        found, value = _lookup(row, self.field)
        equal = found and _as_text(value) == self.value
        return not equal if self.negate else equal

    def __str__(self) -> str:
        return f"{self.field}{'!=' if self.negate else '='}{self.value}"


def parse_where(clause: str) -> Where:
    """'field=value' or 'field!=value' (value compared as text; numbers/bools as JSON: 3, true)."""
    m = re.fullmatch(r"\s*([^=!\s][^=!]*?)\s*(!?=)(.*)", clause)
    if not m:
        raise ValueError(f"where clause {clause!r}: expected field=value or field!=value")
    return Where(m.group(1), m.group(2) == "!=", m.group(3).strip())


def _lookup(row: dict, name: str) -> tuple[bool, object]:
    if name in row:
        return True, row[name]
    node: object = row
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass
class RowRules:
    min_s: float | None
    max_s: float | None
    require: list[re.Pattern]
    exclude: list[re.Pattern]
    where: list[Where]

    @classmethod
    def from_config(cls, cfg: CurateConfig) -> RowRules:
        return cls(cfg.min_duration_s, cfg.max_duration_s, [re.compile(p) for p in cfg.require],
                   [re.compile(p) for p in cfg.exclude], [parse_where(w) for w in cfg.where])

    def check(self, row: dict) -> tuple[str, str, str] | None:
        """(count key, detail, detail kind) of the first rule the row fails, or None."""
        d = float(row["duration"])
        if self.min_s is not None and d < self.min_s:
            return "dropped_by_duration", f"duration {d:g} s < min {self.min_s:g} s", "duration_too_short"
        if self.max_s is not None and d > self.max_s:
            return "dropped_by_duration", f"duration {d:g} s > max {self.max_s:g} s", "duration_too_long"
        text = row["text"]
        for p in self.require:
            if not p.search(text):
                return "dropped_by_regex", f"text lacks required {p.pattern!r}", "regex_require"
        for p in self.exclude:
            if p.search(text):
                return "dropped_by_regex", f"text contains excluded {p.pattern!r}", "regex_exclude"
        for w in self.where:
            if not w.holds(row):
                found, value = _lookup(row, w.field)
                got = _as_text(value) if found else "missing"
                return "dropped_by_field", f"{w} does not hold ({w.field} is {got})", "field"
        return None


# ---- whole-set rules: dedupe, percentile trim, stratified sampling, replay --------------------------

Drop = Callable[..., None]


@functools.lru_cache(maxsize=65536)
def _realdir(folder: str) -> str:
    return os.path.realpath(folder)


def _audio_ids(paths: set[str], by_content: bool) -> dict[str, str]:
    """Identity of each audio file: its path (folder symlinks resolved); with by_content, a hash of
    the bytes for every file whose size equals another's (reads those files)."""
    real = {p: os.path.join(_realdir(os.path.dirname(p)), os.path.basename(p)) for p in paths}
    if not by_content:
        return {p: "path:" + rp for p, rp in real.items()}
    by_size: dict[int, set[str]] = {}
    for rp in set(real.values()):
        try:
            by_size.setdefault(os.stat(rp).st_size, set()).add(rp)
        except OSError:
            pass  # missing file: identified by its path
    digest = {}
    for group in by_size.values():
        if len(group) > 1:
            for rp in group:
                h = hashlib.blake2b(digest_size=16)
                with open(rp, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                digest[rp] = "sha:" + h.hexdigest()
    return {p: digest.get(rp, "path:" + rp) for p, rp in real.items()}


def dedupe(items: list[Item], drop: Drop, by_content: bool = False) -> list[Item]:
    """Keep the first of rows with the same audio (same file, or with by_content same bytes; same segment)."""
    ids = _audio_ids({it.audio_abs for it in items}, by_content)
    first_by_pair: dict[tuple, str] = {}
    first_by_audio: dict[tuple, str] = {}
    kept = []
    for it in items:
        offset = it.row.get("offset")
        audio_key = (ids[it.audio_abs],) if offset is None else (ids[it.audio_abs], round(float(offset), 3),
                                                                  round(float(it.row["duration"]), 3))
        pair = (audio_key, it.row["text"])
        if pair in first_by_pair:
            drop(it, "deduplicated", f"same text and audio as {first_by_pair[pair]!r}", "dedupe_text_audio")
        elif audio_key in first_by_audio:
            drop(it, "deduplicated", f"same audio as {first_by_audio[audio_key]!r} (other text)", "dedupe_same_audio")
        else:
            first_by_pair[pair] = first_by_audio[audio_key] = it.row["id"]
            kept.append(it)
    return kept


def trim_percentile(items: list[Item], pct: float, drop: Drop) -> tuple[list[Item], dict]:
    """Drop floor(n * pct / 100) shortest and as many longest rows (ties broken by id)."""
    k = int(len(items) * pct / 100 + 1e-9)
    order = sorted(range(len(items)), key=lambda i: (float(items[i].row["duration"]), items[i].row["id"]))
    low, high = set(order[:k]), set(order[len(order) - k:]) if k else set()
    info = {"percentile": pct, "per_side": k}
    if k:
        info["min_kept_s"] = float(items[order[k]].row["duration"]) if len(order) > 2 * k else None
        info["max_kept_s"] = float(items[order[-k - 1]].row["duration"]) if len(order) > 2 * k else None
    kept = []
    for i, it in enumerate(items):
        if i in low:
            drop(it, "trimmed_percentile", f"among the shortest {pct:g}% ({it.row['duration']} s)", "trim_short")
        elif i in high:
            drop(it, "trimmed_percentile", f"among the longest {pct:g}% ({it.row['duration']} s)", "trim_long")
        else:
            kept.append(it)
    return kept, info


def text_length(text: str) -> int:
    """Characters without whitespace (Korean syllables, digits, letters, punctuation)."""
    return len("".join(text.split()))


def _allocate(sizes: list[int], n: int) -> list[int]:
    """Split n over strata proportionally to their sizes (largest remainder; ties to the first)."""
    total = sum(sizes)
    exact = [n * s / total for s in sizes]
    alloc = [int(x) for x in exact]
    rest = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - alloc[i]), i))
    for i in rest[: n - sum(alloc)]:
        alloc[i] += 1
    return alloc


def sample(items: list[Item], n: int, stratify: str, seed: int, drop: Drop) -> tuple[list[Item], list[dict] | None]:
    """Keep n rows: uniformly, or proportionally from each text-length decile (rank-based, 10 equal bins)."""
    if n >= len(items):
        return items, None
    rng = random.Random(f"{seed}:sample")
    chosen: set[int] = set()
    strata = None
    if stratify == "none":
        chosen = set(rng.sample(range(len(items)), n))
        bins = [list(range(len(items)))]
    else:
        ties = [rng.random() for _ in items]
        length = [text_length(it.row["text"]) for it in items]
        order = sorted(range(len(items)), key=lambda i: (length[i], ties[i]))
        nbins = min(10, len(items))
        bins = [order[len(order) * b // nbins: len(order) * (b + 1) // nbins] for b in range(nbins)]
        strata = []
        for b, (members, k) in enumerate(zip(bins, _allocate([len(m) for m in bins], n))):
            chosen.update(rng.sample(members, k))
            strata.append({"decile": b + 1, "min_chars": length[members[0]], "max_chars": length[members[-1]],
                           "available": len(members), "sampled": k})
    stratum_of = {i: b for b, members in enumerate(bins) for i in members}
    kept = []
    for i, it in enumerate(items):
        if i in chosen:
            kept.append(it)
        else:
            where = f"text-length decile {stratum_of[i] + 1}" if strata else "uniform sample"
            drop(it, "not_sampled", f"not among the {n} sampled ({where})", "not_sampled")
    return kept, strata


def replay_sample(path: Path, want: int, taken_ids: set[str], held_out_speakers: set[str],
                  seed: int) -> tuple[list[Item], dict]:
    """Reservoir-sample `want` rows from another manifest (streamed), skipping id clashes and held-out speakers."""
    rng = random.Random(f"{seed}:replay")
    reservoir: list[Item] = []
    info = {"path": str(path), "requested": want, "pool": 0, "excluded_id_clash": 0, "excluded_held_out_speaker": 0}
    seen, replay_ids = 0, set()
    for it in read_items(path):
        if it.row["id"] in taken_ids or it.row["id"] in replay_ids:
            info["excluded_id_clash"] += 1
            continue
        replay_ids.add(it.row["id"])
        if it.row.get("speaker") not in (None, "") and str(it.row["speaker"]) in held_out_speakers:
            info["excluded_held_out_speaker"] += 1
            continue
        seen += 1
        if want == 0:
            continue
        if len(reservoir) < want:
            reservoir.append(it)
        else:
            j = rng.randrange(seen)
            if j < want:
                reservoir[j] = it
    info["pool"] = seen
    info["added"] = len(reservoir)
    reservoir.sort(key=lambda it: it.index)
    return reservoir, info


class _Sink:
    """Streams dropped rows to a temporary file beside `path` (renamed at the end); counts always."""

    def __init__(self, path: Path | None, out_dir: str):
        self.counts = {k: 0 for k in COUNT_KEYS if k != "kept"}
        self.details: dict[str, int] = {}
        self.path, self.out_dir, self._tmp, self._f = path, out_dir, None, None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            self._f = self._tmp.open("w", encoding="utf-8")

    def drop(self, item: Item, reason: str, detail: str, kind: str | None = None) -> None:
        self.counts[reason] += 1
        if kind:
            self.details[kind] = self.details.get(kind, 0) + 1
        if self._f is not None:
            row = output_row(item, self.out_dir)
            row["reason"], row["reason_detail"] = reason, detail
            self._f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        if self._f is not None:
            self._f.close()
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._tmp.unlink(missing_ok=True)


def _check_paths(cfg: CurateConfig) -> None:
    inputs = {Path(cfg.manifest).resolve()} | ({Path(cfg.replay).resolve()} if cfg.replay else set())
    outputs = [cfg.out, report_path(cfg.out)] + ([cfg.dropped] if cfg.dropped else [])
    if cfg.speaker_split:
        outputs += [split_path(cfg.out, n) for n in SPLIT_NAMES[len(parse_ratio(cfg.speaker_split))]]
    seen = set()
    for p in outputs:
        rp = Path(p).resolve()
        if rp in inputs:
            raise CurateError(f"output {p} would overwrite an input manifest; choose another --out/--dropped")
        if rp in seen:
            raise CurateError(f"output path {p} is used twice; choose another --out/--dropped")
        seen.add(rp)


def _filter_stream(cfg: CurateConfig, sink: _Sink, progress: Progress | None) -> tuple[int, list[Item]]:
    """Stream the input; apply id, duration, regex and field rules; return (input count, survivors)."""
    rules = RowRules.from_config(cfg)
    seen_ids: set[str] = set()
    survivors: list[Item] = []
    n = 0
    for n, item in enumerate(read_items(cfg.manifest), 1):
        if progress is not None and n % 5000 == 0:
            progress("filter", n)
        if item.row["id"] in seen_ids:
            sink.drop(item, "duplicate_id", f"id {item.row['id']!r} seen earlier in the input")
            continue
        seen_ids.add(item.row["id"])
        failure = rules.check(item.row)
        if failure is None:
            survivors.append(item)
        else:
            sink.drop(item, *failure)
    if progress is not None:
        progress("filter", n)
    return n, survivors


def _split(items: list[Item], ratio: tuple[float, ...], seed: int) -> dict[str, list[Item]]:
    """Assign whole speaker groups (rows without speaker: one group per id) to splits, largest first."""
    groups: dict[tuple, list[Item]] = {}
    for it in items:
        spk = it.row.get("speaker")
        key = ("id", it.row["id"]) if spk is None or spk == "" else ("speaker", str(spk))
        groups.setdefault(key, []).append(it)
    order = list(groups)
    random.Random(f"{seed}:split").shuffle(order)
    order.sort(key=lambda k: -len(groups[k]))  # stable: ties stay in shuffled order
    names = SPLIT_NAMES[len(ratio)]
    targets = [r * len(items) for r in ratio]
    counts = [0] * len(ratio)
    chosen: dict[tuple, int] = {}
    for key in order:
        idx = max(range(len(ratio)), key=lambda i: (targets[i] - counts[i], -i))
        chosen[key] = idx
        counts[idx] += len(groups[key])
    out: dict[str, list[Item]] = {name: [] for name in names}
    for it in items:  # keep input order inside each split
        spk = it.row.get("speaker")
        key = ("id", it.row["id"]) if spk is None or spk == "" else ("speaker", str(spk))
        out[names[chosen[key]]].append(it)
    return out


def _write_rows(path: Path, rows: list[dict]) -> None:
    for i, row in enumerate(rows, 1):
        validate_row(row, f"{path}: row {i}")
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _split_summary(path: Path, items: list[Item]) -> dict:
    speakers = {str(it.row["speaker"]) for it in items if it.row.get("speaker") not in (None, "")}
    return {
        "path": str(path), "rows": len(items), "speakers": len(speakers),
        "duration_s": round(sum(float(it.row["duration"]) for it in items), 3),
    }


def _mix_replay(cfg: CurateConfig, kept: list[Item], splits: dict[str, list[Item]]) -> tuple[list[Item], dict]:
    """round(fraction * kept) rows from cfg.replay, marked `replay: true`; with splits they join train only."""
    held_out = {str(it.row["speaker"]) for name, members in splits.items() if name != "train"
                for it in members if it.row.get("speaker") not in (None, "")}
    want = round(cfg.replay_fraction * len(kept))
    items, info = replay_sample(cfg.replay, want, {it.row["id"] for it in kept}, held_out, cfg.seed)
    info["fraction"] = cfg.replay_fraction
    for it in items:
        it.row["replay"] = True
        if splits:
            it.row["split"] = "train"
    if splits:
        splits["train"] = splits["train"] + items
    return items, info


def curate(config: CurateConfig, progress: Progress | None = None) -> CurateResult:
    """Run every configured rule over `config.manifest`; write the output, splits, report, dropped rows."""
    cfg = config
    _check_paths(cfg)
    out = Path(cfg.out)
    out_dir = str(out.parent.resolve())
    dropped = Path(cfg.dropped) if cfg.dropped else None
    sink = _Sink(dropped, str(dropped.parent.resolve()) if dropped else out_dir)
    try:
        n_input, items = _filter_stream(cfg, sink, progress)
        if cfg.dedupe:
            items = dedupe(items, sink.drop, cfg.dedupe_content)
        trim = None
        if cfg.trim_percentile > 0:
            items, trim = trim_percentile(items, cfg.trim_percentile, sink.drop)
        strata = None
        if cfg.sample is not None:
            items, strata = sample(items, cfg.sample, cfg.stratify, cfg.seed, sink.drop)
        if progress is not None:
            progress("write", len(items))

        kept = items
        splits: dict[str, list[Item]] = {}
        if cfg.speaker_split:
            splits = _split(kept, parse_ratio(cfg.speaker_split), cfg.seed)
            for name, members in splits.items():
                for it in members:
                    it.row["split"] = name
        replay_items, replay_info = _mix_replay(cfg, kept, splits) if cfg.replay is not None else ([], None)

        _write_rows(out, [output_row(it, out_dir) for it in kept + replay_items])
        split_info = {}
        for name, members in splits.items():
            sp = split_path(out, name)
            _write_rows(sp, [output_row(it, str(sp.parent.resolve())) for it in members])
            split_info[name] = _split_summary(sp, members)
        sink.commit()
    except BaseException:
        sink.abort()
        raise

    counts = {"kept": len(kept), **sink.counts}
    result = CurateResult(
        input_rows=n_input, counts=counts, details=dict(sorted(sink.details.items())), output=str(out),
        output_rows=len(kept) + len(replay_items),
        kept_duration_s=round(sum(float(it.row["duration"]) for it in kept), 3),
        splits=split_info, replay=replay_info, trim=trim, strata=strata,
        dropped=str(cfg.dropped) if cfg.dropped else None, report=str(report_path(out)),
        config=cfg.model_dump(mode="json"),
    )
    if not result.accounted:  # a bug, never a user error
        raise AssertionError(f"curate lost rows: counts {counts} do not add up to {n_input}")
    write_run(run_dir(out), cfg, result, stage="curate")
    link(report_path(out), f"{run_dir(out).name}/{SUMMARY_FILE}")
    return result


run = curate
