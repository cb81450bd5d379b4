"""The synthetic Korean lecture-speech corpus: sentences from `lecture_text` (templates) and
`lecture_prose` (real Korean technical prose), spoken by a synthesis backend (`soritune.data.tts`:
espeak-ng or Kokoro) with a seeded voice and delivery per utterance (espeak: rate and pitch; Kokoro:
style blend and speed).

    >>> result = build_synth_corpus(SynthCorpusConfig(out="data/synth", n=400, seed=0))

Writes, under `out`:
- `train.jsonl`, `dev.jsonl`, `test.jsonl`: lecture speech with some everyday speech mixed in;
  `test` uses only held-out templates, prose sentences and vocabulary (see `lecture_text`,
  `lecture_prose`), and may be spoken by held-out voices (`test_voices`);
- `everyday.jsonl`: ordinary Korean outside the lecture domain (held-out everyday templates), to
  check that a fine-tuned model has not forgotten ordinary speech;
- `audio/<split>/<id>-<key>.wav` (16 kHz), where `key` hashes what was spoken and how;
- `synth_report.json`: sizes and hours per split, vocabulary overlap of test with train, the
  config hash.

Same config -> byte-identical manifests and audio. Re-running skips finished work: WAVs whose key
matches are reused, and a run whose report carries the same config hash returns at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from soritune.config import StageConfig
from soritune.data.lecture_prose import ProseSentences
from soritune.data.lecture_text import (
    LectureTextGenerator,
    Sentence,
    find_held_out_items,
)
from soritune.data.tts import default_voices, parse_voice
from soritune.errors import SoritunError
from soritune.rundir import write_run

GENERATOR_VERSION = 2  # bump when templates, vocabulary or synthesis settings change
SPLITS = ("train", "dev", "test", "everyday")
_DEFAULT_SHARES = {"dev": 0.15, "test": 0.25, "everyday": 0.10}
_NUMBER = re.compile(r"\d+/\d+|\d[\d,]*(?:\.\d+)?")


class SynthCorpusConfig(StageConfig):
    """Settings of `soritune prepare synth`."""

    out: Path = Field(description="output directory (manifests, audio/, synth_report.json)")
    n: int = Field(400, ge=1, description="train utterances; dev/test/everyday default to 15%/25%/10% of it")
    n_dev: int | None = Field(None, ge=0, description="dev utterances (default 15% of n, at least 1)")
    n_test: int | None = Field(None, ge=0, description="test utterances (default 25% of n, at least 1)")
    n_everyday: int | None = Field(None, ge=0, description="everyday check-set utterances (default 10% of n, min 1)")
    seed: int = Field(0, description="seed for sentences and voices; same seed, same corpus")
    everyday_share: float = Field(0.15, ge=0.0, le=1.0, description="share of everyday sentences in train/dev/test")
    prose_share: float = Field(0.3, ge=0.0, le=1.0, description="share of train/dev/test sentences taken from "
                               "real Korean technical prose (LibreOffice help) instead of templates")
    backend: Literal["espeak", "kokoro"] = Field("espeak", description="synthesis backend whose default voices "
                                                 "speak when `voices` is not given (see soritune.data.tts)")
    voices: list[str] | None = Field(None, description="voice specs (ko-m1, kokoro:jm_kumo, kokoro:jf_alpha+jm_kumo; "
                                     "default: the backend's Korean voices)")
    test_voices: list[str] | None = Field(None, description="voices of the test and everyday splits, e.g. held-out "
                                          "speakers, taking turns (list one twice to double its share; "
                                          "default: `voices`, drawn at random)")
    rate_wpm: tuple[int, int] = Field((140, 200), description="espeak speaking-rate range, words per minute")
    pitch: tuple[int, int] = Field((35, 65), description="espeak pitch range, 0-100")
    pitch_range: tuple[int, int] = Field((30, 70), description="espeak intonation-range range, 0-100")
    speed: tuple[float, float] = Field((0.9, 1.15), description="Kokoro tempo range (1.0 = the voice's own)")
    nonspeech_share: float = Field(0.0, ge=0.0, le=0.5, description="extra train clips that hold no speech, as a "
                                   "share of n: silence, room tone, mains hum, music, telephone beeps, hold music "
                                   "(3-20 s, empty transcript, `nonspeech: true`). A model fine-tuned on speech alone "
                                   "learns to write text on anything; these teach it to write nothing")
    joined_share: float = Field(0.0, ge=0.0, le=0.5, description="extra train clips, as a share of n, that join 2-3 "
                                "train utterances with 1.5-8 s pauses (silence or room tone) up to 28 s, the "
                                "transcripts joined by spaces: a model fine-tuned on single sentences learns to stop "
                                "at the first pause and miss the speech after it")
    workers: int = Field(1, ge=1, le=16, description="synthesis processes (does not change the output)")

    @field_validator("voices", "test_voices")
    @classmethod
    def _known_voices(cls, v):
        if v is not None:
            if not v:
                raise ValueError("give at least one voice, or leave it unset for the default")
            try:
                return [parse_voice(x).spec for x in v]
            except SoritunError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _ranges(self):
        for name, (lo, hi), (lo_ok, hi_ok) in (
            ("rate_wpm", self.rate_wpm, (80, 450)), ("pitch", self.pitch, (0, 100)),
            ("pitch_range", self.pitch_range, (0, 100)), ("speed", self.speed, (0.5, 2.0)),
        ):
            if not lo_ok <= lo <= hi <= hi_ok:
                raise ValueError(f"{name} must be (low, high) with {lo_ok} <= low <= high <= {hi_ok}, got ({lo}, {hi})")
        return self

    def sizes(self) -> dict[str, int]:
        """Utterances per split, resolving the proportional defaults."""
        given = {"dev": self.n_dev, "test": self.n_test, "everyday": self.n_everyday}
        out = {"train": self.n}
        for split, share in _DEFAULT_SHARES.items():
            out[split] = given[split] if given[split] is not None else max(1, round(self.n * share))
        return out

    def n_nonspeech(self) -> int:
        """Non-speech clips added to train (beyond the n speech utterances)."""
        return round(self.n * self.nonspeech_share)

    def n_joined(self) -> int:
        """Joined multi-utterance clips added to train."""
        return round(self.n * self.joined_share)

    def content_hash(self) -> str:
        """Hash of everything that decides the corpus (not `out`, not `workers`)."""
        data = self.model_dump(mode="json", exclude={"out", "workers"})
        data["voices"] = self.voice_names()
        data["test_voices"] = self.test_voice_names()
        data["sizes"] = self.sizes()
        data["generator_version"] = GENERATOR_VERSION
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def voice_names(self) -> list[str]:
        """The voices given, or the backend's default Korean voices."""
        return list(self.voices) if self.voices else default_voices(self.backend)

    def test_voice_names(self) -> list[str]:
        """The voices of the test and everyday splits."""
        return list(self.test_voices) if self.test_voices else self.voice_names()


@dataclass(frozen=True)
class PlannedUtterance:
    """One utterance to synthesise: its sentence, voice and delivery (espeak: rate_wpm, pitch,
    pitch_range; kokoro: speed; the other backend's fields are None)."""

    id: str
    split: str
    sentence: Sentence
    voice: str
    rate_wpm: int | None = None
    pitch: int | None = None
    pitch_range: int | None = None
    speed: float | None = None

    @property
    def delivery(self) -> dict:
        fields = {"rate_wpm": self.rate_wpm, "pitch": self.pitch, "pitch_range": self.pitch_range, "speed": self.speed}
        return {k: v for k, v in fields.items() if v is not None}

    @property
    def key(self) -> str:
        if self.speed is None:  # espeak: the key of generator version 1 (its audio did not change)
            spec = [self.sentence.text_pron, self.voice, self.rate_wpm, self.pitch, self.pitch_range, 1]
        else:
            spec = [self.sentence.text_pron, self.voice, self.speed]
        return hashlib.sha1(json.dumps(spec, ensure_ascii=False).encode()).hexdigest()[:10]

    @property
    def audio(self) -> str:
        return f"audio/{self.split}/{self.id}-{self.key}.wav"


@dataclass
class SynthCorpusResult:
    """What `build_synth_corpus` made; also written (with details) to `synth_report.json`."""

    out_dir: str
    manifests: dict[str, str]
    utterances: dict[str, int]
    hours: dict[str, float]
    vocab_overlap: dict[str, dict]
    config_hash: str
    synthesized: int = 0
    reused: int = 0
    skipped: bool = False
    duplicate_texts: int = 0
    wall_s: float = 0.0
    report: str = ""
    details: dict = field(default_factory=dict)


def plan_corpus(config: SynthCorpusConfig) -> tuple[list[PlannedUtterance], int]:
    """Sentences and voice settings for every utterance, in manifest order; and how many texts
    had to repeat because no new one was found (0 at the default sizes)."""
    sizes = config.sizes()
    seen: set[str] = set()
    duplicates = 0
    seen_side = LectureTextGenerator(config.seed, held_out=False, everyday_share=config.everyday_share)
    held_side = LectureTextGenerator(config.seed, held_out=True, everyday_share=config.everyday_share)
    everyday_side = LectureTextGenerator(f"{config.seed}:everyday", held_out=True)
    draws = {
        "train": _with_prose(seen_side.next, ProseSentences(config.seed, held_out=False), config.prose_share),
        "test": _with_prose(held_side.next, ProseSentences(config.seed, held_out=True), config.prose_share),
        "everyday": everyday_side.everyday,
    }
    draws["dev"] = draws["train"]
    plan: list[PlannedUtterance] = []
    for split in SPLITS:
        voices = config.test_voice_names() if split in ("test", "everyday") else config.voice_names()
        rng = random.Random(f"soritune-synth-voice:{config.seed}:{split}")
        for i in range(sizes[split]):
            for _ in range(100):
                sentence = draws[split]()
                if sentence.text not in seen:
                    break
            else:
                duplicates += 1
            seen.add(sentence.text)
            # held-out voices take turns (exact shares: a voice listed twice reads twice as often)
            voice = voices[i % len(voices)] if split in ("test", "everyday") and config.test_voices else rng.choice(voices)
            if parse_voice(voice).backend == "espeak":
                delivery = dict(rate_wpm=rng.randint(*config.rate_wpm), pitch=rng.randint(*config.pitch),
                                pitch_range=rng.randint(*config.pitch_range))
            else:
                delivery = dict(speed=round(rng.uniform(*config.speed), 2))
            plan.append(PlannedUtterance(id=f"synth-{split}-{i:05d}", split=split, sentence=sentence, voice=voice,
                                         **delivery))
    return plan, duplicates


def _with_prose(templates: Callable[[], Sentence], prose: ProseSentences, share: float) -> Callable[[], Sentence]:
    """A draw that takes a prose sentence with probability `share`, else a template sentence."""
    rng = random.Random(f"soritune-synth-prose:{prose.seed}:{int(prose.held_out)}")

    def draw() -> Sentence:
        return prose.next() if share and rng.random() < share else templates()

    return draw


def _write_utterance(job: tuple[str, str, str, dict]) -> int:
    """Speak one utterance and write it atomically; returns its length in samples (runs in workers)."""
    from soritune.audio import write_wav
    from soritune.data.tts import speak

    path, text_pron, voice, delivery = job
    audio = speak(text_pron, voice, threads=1, **delivery)  # one ONNX thread: output independent of workers
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.tmp.wav")
    write_wav(tmp, audio)
    os.replace(tmp, target)
    return len(audio)


def _existing_samples(path: Path) -> int | None:
    """Length of a finished WAV, or None when it is missing or unreadable."""
    if not path.exists():
        return None
    try:
        import soundfile as sf

        info = sf.info(str(path))
    except Exception:
        return None
    return info.frames if info.frames > 0 and info.samplerate == 16000 else None


def _synthesise(plan, out: Path, workers: int, progress) -> tuple[dict[str, int], int, int]:
    """Samples per utterance id; reuses finished WAVs. Returns (samples, synthesized, reused)."""
    samples: dict[str, int] = {}
    todo = []
    for u in plan:
        n = _existing_samples(out / u.audio)
        if n is None:
            todo.append(u)
        else:
            samples[u.id] = n
    reused = len(samples)
    total = len(plan)
    if progress:
        progress(reused, total)
    for split in SPLITS:
        (out / "audio" / split).mkdir(parents=True, exist_ok=True)
    jobs = [(str(out / u.audio), u.sentence.text_pron, u.voice, u.delivery) for u in todo]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked child would share the parent's espeak worker pipes
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = pool.map(_write_utterance, jobs, chunksize=4)
            for u, n in zip(todo, results):
                samples[u.id] = n
                if progress:
                    progress(len(samples), total)
    else:
        for u, job in zip(todo, jobs):
            samples[u.id] = _write_utterance(job)
            if progress:
                progress(len(samples), total)
    return samples, len(todo), reused


def _remove_stale_audio(plan, extra_rows: list[dict], out: Path) -> None:
    """Delete WAVs of ours that the current plan does not use (left by an earlier config)."""
    keep = {str(out / u.audio) for u in plan} | {str(out / r["audio"]) for r in extra_rows}
    for split in SPLITS:
        for path in (out / "audio" / split).glob("*.wav"):
            if path.name.startswith(("synth-", ".synth-", "nonspeech-", "joined-")) and str(path) not in keep:
                path.unlink()


def _joined_rows(config: SynthCorpusConfig, out: Path, train_rows: list[dict]) -> list[dict]:
    """The train split's joined clips (written unless already there): 2-3 distinct speech utterances of the
    train split with a pause (1.5-8 s of digital silence or room tone) after each but the last, at most 28 s."""
    import numpy as np

    from soritune.audio import SAMPLE_RATE, load_audio, write_wav
    from soritune.data.nonspeech import nonspeech_audio

    rng = random.Random(f"soritune-synth-joined:{config.seed}")
    speech = [r for r in train_rows if not r.get("nonspeech")]
    rows = []
    for i in range(config.n_joined() if len(speech) >= 2 else 0):
        parts = rng.sample(speech, min(rng.choice((2, 3)), len(speech)))
        pauses = [round(rng.uniform(1.5, 8.0), 2) for _ in parts[1:]]
        room = rng.random() < 0.5
        while len(parts) > 1 and sum(r["duration"] for r in parts) + sum(pauses) > 28.0:
            parts, pauses = parts[:-1], pauses[:-1]
        if len(parts) < 2:
            continue
        key = hashlib.sha256(json.dumps([[r["audio"] for r in parts], pauses, room]).encode()).hexdigest()[:10]
        rel = f"audio/train/joined-{i:05d}-{key}.wav"
        n_samples = _existing_samples(out / rel)
        if n_samples is None:
            pieces = []
            for k, r in enumerate(parts):
                pieces.append(load_audio(str(out / r["audio"])))
                if k < len(pauses):
                    pieces.append(nonspeech_audio("room_tone", i, pauses[k], rng=np.random.default_rng([config.seed, i, k]))
                                  if room else np.zeros(round(pauses[k] * SAMPLE_RATE), dtype=np.float32))
            audio = np.concatenate(pieces).astype(np.float32)
            write_wav(out / rel, audio)
            n_samples = len(audio)
        rows.append({"id": f"synth-train-join-{i:05d}", "audio": rel, "duration": round(n_samples / SAMPLE_RATE, 4),
                     "text": " ".join(r["text"] for r in parts), "text_pron": " ".join(r["text_pron"] for r in parts),
                     "speaker": "", "split": "train", "source": "synth-joined", "template": "joined",
                     "parts": [r["id"] for r in parts], "pauses_s": pauses})
    return rows


def _nonspeech_rows(config: SynthCorpusConfig, out: Path) -> list[dict]:
    """The train split's non-speech clips (written unless already there): the kinds take turns, each
    clip with its own length (3-20 s) and seed, none of them the hallucination suite's seeds."""
    import numpy as np

    from soritune.audio import write_wav
    from soritune.data.nonspeech import NONSPEECH_KINDS, nonspeech_audio

    rng = random.Random(f"soritune-synth-nonspeech:{config.seed}")
    rows = []
    for i in range(config.n_nonspeech()):
        kind = NONSPEECH_KINDS[i % len(NONSPEECH_KINDS)]
        duration_s, variant = round(rng.uniform(3.0, 20.0), 2), rng.randrange(1_000_000)
        rel = f"audio/train/nonspeech-{i:05d}-{kind}-{variant}.wav"
        if _existing_samples(out / rel) is None:
            audio = nonspeech_audio(kind, variant, duration_s, rng=np.random.default_rng([config.seed, i, variant]))
            write_wav(out / rel, np.clip(audio, -1.0, 1.0))
        # no speaker: a prompted target takes another utterance's text, so the model also learns to write
        # nothing after a prompt (long-form decoding conditions on the previous text)
        rows.append({"id": f"synth-train-ns-{i:05d}", "audio": rel, "duration": duration_s, "text": "", "text_pron": "",
                     "speaker": "", "split": "train", "source": "synth-nonspeech", "template": f"nonspeech-{kind}",
                     "nonspeech": True})
    return rows


def _overlap(train_rows: list[dict], other_rows: list[dict]) -> dict:
    """How much of `other` a model could have memorised from `train`."""
    def words(rows, key):
        return [w for r in rows for w in r[key].split()]

    def numbers(rows):
        return {m for r in rows for m in _NUMBER.findall(r["text"]) if not (m.isdigit() and int(m) < 10)}

    out = {}
    for key, name in (("text", "text"), ("text_pron", "pron")):
        train_types = set(words(train_rows, key))
        tokens = words(other_rows, key)
        types = set(tokens)
        out[f"{name}_word_types"] = len(types)
        out[f"{name}_type_share_in_train"] = round(len(types & train_types) / max(len(types), 1), 4)
        out[f"{name}_token_share_in_train"] = round(sum(t in train_types for t in tokens) / max(len(tokens), 1), 4)
    train_numbers, other_numbers = numbers(train_rows), numbers(other_rows)
    out["number_types"] = len(other_numbers)
    out["number_type_share_in_train"] = round(len(other_numbers & train_numbers) / max(len(other_numbers), 1), 4)
    train_templates = {r["template"] for r in train_rows}
    out["templates"] = len({r["template"] for r in other_rows})
    out["templates_shared_with_train"] = len({r["template"] for r in other_rows} & train_templates)
    train_texts = {r["text"] for r in train_rows}
    out["sentences_in_train"] = sum(r["text"] in train_texts for r in other_rows)
    return out


def _rows(plan, samples: dict[str, int]) -> dict[str, list[dict]]:
    from soritune.audio import SAMPLE_RATE

    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for u in plan:
        rows[u.split].append({
            "id": u.id, "audio": u.audio, "duration": round(samples[u.id] / SAMPLE_RATE, 4),
            "text": u.sentence.text, "text_pron": u.sentence.text_pron, "speaker": u.voice, "split": u.split,
            "source": f"synth-{u.sentence.domain}", "template": u.sentence.template, **u.delivery,
        })
    return rows


def _finished(config: SynthCorpusConfig, out: Path) -> SynthCorpusResult | None:
    """The earlier result when `out` already holds this exact corpus, complete."""
    report = out / "synth_report.json"
    if not report.exists():
        return None
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if data.get("config_hash") != config.content_hash():
        return None
    from soritune.data.manifest import ManifestError, read_manifest

    try:
        for split in SPLITS:
            rows = read_manifest(out / f"{split}.jsonl")
            expected = config.sizes()[split] + (config.n_nonspeech() + config.n_joined() if split == "train" else 0)
            if len(rows) != expected or not all(Path(r["audio"]).exists() for r in rows):
                return None
    except ManifestError:
        return None
    known = {k: data[k] for k in SynthCorpusResult.__dataclass_fields__ if k in data}
    known.update(out_dir=str(out), skipped=True, synthesized=0, reused=sum(config.sizes().values()), wall_s=0.0)
    return SynthCorpusResult(**known)


def build_synth_corpus(
    config: SynthCorpusConfig, progress: Callable[[int, int], None] | None = None
) -> SynthCorpusResult:
    """Build (or finish, or confirm) the synthetic corpus under `config.out`.

    `progress(done, total)` is called as utterances complete (reused ones count as done).
    """
    from soritune.data.manifest import write_manifest

    t0 = time.perf_counter()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise SoritunError(f"--out {out} exists and is not a directory")
    done = _finished(config, out)
    if done is not None:
        if progress:
            total = sum(done.utterances.values())
            progress(total, total)
        return done
    out.mkdir(parents=True, exist_ok=True)
    plan, duplicates = plan_corpus(config)
    samples, synthesized, reused = _synthesise(plan, out, config.workers, progress)
    rows = _rows(plan, samples)
    extra_rows = _nonspeech_rows(config, out) + _joined_rows(config, out, rows["train"])
    rows["train"] += extra_rows
    _remove_stale_audio(plan, extra_rows, out)
    manifests = {}
    for split in SPLITS:
        manifests[split] = str(write_manifest(out / f"{split}.jsonl", rows[split]))
    seconds = {s: sum(r["duration"] for r in rows[s]) for s in SPLITS}
    train_texts = [r["text"] for r in rows["train"] + rows["dev"]]
    result = SynthCorpusResult(
        out_dir=str(out), manifests=manifests, utterances={s: len(rows[s]) for s in SPLITS},
        hours={s: round(seconds[s] / 3600, 4) for s in SPLITS},
        vocab_overlap={s: _overlap(rows["train"], rows[s]) for s in ("dev", "test", "everyday")},
        config_hash=config.content_hash(), synthesized=synthesized, reused=reused,
        duplicate_texts=duplicates, wall_s=round(time.perf_counter() - t0, 2),
        report=str(out / "synth_report.json"),
        details={
            "duration_s": {s: round(seconds[s], 2) for s in SPLITS},
            "everyday_utterances": {s: sum(r["source"] == "synth-everyday" for r in rows[s]) for s in SPLITS},
            "speakers": {s: len({r["speaker"] for r in rows[s] if r["speaker"]}) for s in SPLITS},
            "prose_utterances": {s: sum(r["template"].startswith("prose-") for r in rows[s]) for s in SPLITS},
            "nonspeech_utterances": {s: sum(bool(r.get("nonspeech")) for r in rows[s]) for s in SPLITS},
            "joined_utterances": {s: sum(r["source"] == "synth-joined" for r in rows[s]) for s in SPLITS},
            "test_speakers_in_train": sorted({r["speaker"] for r in rows["test"] + rows["everyday"]}
                                             & {r["speaker"] for r in rows["train"] + rows["dev"]}),
            "held_out_items_in_train_or_dev": find_held_out_items(train_texts),
            "config": config.model_dump(mode="json", exclude={"out", "workers"}),
            "generator_version": GENERATOR_VERSION,
        },
    )
    write_run(out, config, asdict(result), stage="synth", legacy=("synth_report.json",))
    return result


run = build_synth_corpus
