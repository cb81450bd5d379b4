"""Data verbs: `soritune prepare CORPUS` (corpus -> manifests), one command per registered corpus:
kspon and aihub-lecture carry their own options; every other reader (manifest, nemo, ...) gets the
shared ones from `_registry_command`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out

prepare_app = typer.Typer(
    help=(
        "Turn a corpus into manifests: OUT/{split}.jsonl, OUT/quarantine.jsonl (every utterance left "
        "out, with its reason) and OUT/prepare_report.json (counts that add up to the inputs). "
        "Runs in parallel, streams, and resumes: re-run the same command after an interruption."
    ),
    no_args_is_help=True,
)
app.add_typer(prepare_app, name="prepare")

OutOpt = typer.Option(..., "--out", "-o", help="Output folder (manifests, quarantine, report).")
WorkersOpt = typer.Option(None, "--workers", "-w", help="Worker processes (default 2).")
ShardOpt = typer.Option(None, "--shard-size", help="Utterances a shard: the unit of parallel work and resume (default 2000).")
EngineOpt = typer.Option(None, "--engine", help="local (process pool, default) or ray (pip install 'soritune\\[ray]').")
RayOpt = typer.Option(None, "--ray-address", help="Ray cluster to join ('auto', 'ray://host:10001'); default: local Ray.")
ModeOpt = typer.Option(None, "--mode", help="verbatim (default: keep fillers and repetitions) or fluent (drop them).")
ConvertOpt = typer.Option(None, "--convert", help="none (default: reference audio in place), flac or wav (16 kHz, under OUT/audio).")
SplitOpt = typer.Option(None, "--split", help="official (default: the corpus's splits) or random (seeded, see --ratios).")
RatiosOpt = typer.Option(None, "--ratios", help="train:dev[:test] for --split random (default 8:1:1).")
SeedOpt = typer.Option(None, "--seed", help="Seed of the random split (default 0).")
MinOpt = typer.Option(None, "--min-duration-s", help="Quarantine shorter audio as too_short (default 0.5).")
MaxOpt = typer.Option(None, "--max-duration-s", help="Quarantine longer audio as too_long (default 30).")
TokOpt = typer.Option(None, "--max-label-tokens", help="Whisper decoder positions incl. special tokens (default 448).")
KeepOpt = typer.Option(False, "--keep-shards", help="Keep OUT/.shards after merging.")
ConfigOpt = typer.Option(None, "--config", "-c", help="YAML file of PrepareConfig fields (flags override it).")
SetOpt = typer.Option(None, "--set", help="Override a config field: --set min_duration_s=1.0 (repeatable).")


def _prepare(corpus: str, root: Path, out_dir: Path, config_path: Path | None, overrides: list[str] | None,
             ratios: str | None, **fields) -> None:
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from soritune.config import load_config
    from soritune.data.prepare_common import PrepareConfig, parse_ratios, run

    if ratios is not None:
        fields["ratios"] = parse_ratios(ratios)
    config = load_config(PrepareConfig, config_path, overrides, corpus=corpus, root=str(root), out=str(out_dir), **fields)
    t0 = time.perf_counter()
    columns = (TextColumn("[bold]prepare {task.fields[corpus]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:>8.0f} utt/s"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("prepare", total=None, corpus=corpus, rate=0.0)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, rate=done / max(time.perf_counter() - t0, 1e-9))

        result = run(config, progress=progress)
    _summary(result)


def _summary(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.corpus} -> {result.out_dir}", show_edge=False)
    table.add_column("split")
    table.add_column("kept", justify="right")
    table.add_column("hours", justify="right")
    for split, n in result.kept_by_split.items():
        table.add_row(split, f"{n:,}", f"{result.hours_by_split.get(split, 0.0):.2f}")
    out.print(table)
    if result.quarantined_by_reason:
        reasons = ", ".join(f"{r} {n:,}" for r, n in result.quarantined_by_reason.items())
        out.print(f"quarantined {result.quarantined:,}: {reasons} -> {result.quarantine_path}", highlight=False, soft_wrap=True)
    resumed = f" ({result.shards_resumed}/{result.shards} shards resumed)" if result.shards_resumed else ""
    out.print(f"{result.inputs:,} utterances in {result.elapsed_s:.1f} s: {result.utterances_per_s:,.0f} utterances/s"
              f"{resumed}; report {result.report_path}", highlight=False, soft_wrap=True)


@prepare_app.command("kspon")
def prepare_kspon(
    root: Path = typer.Argument(..., help="KsponSpeech root (holding KsponSpeech_01..05, KsponSpeech_eval, KsponSpeech_scripts)."),
    out_dir: Path = OutOpt, workers: int | None = WorkersOpt, shard_size: int | None = ShardOpt,
    engine: str | None = EngineOpt, ray_address: str | None = RayOpt, mode: str | None = ModeOpt,
    convert: str | None = ConvertOpt, split: str | None = SplitOpt, ratios: str | None = RatiosOpt,
    seed: int | None = SeedOpt, min_duration_s: float | None = MinOpt, max_duration_s: float | None = MaxOpt,
    max_label_tokens: int | None = TokOpt, keep_shards: bool = KeepOpt,
    config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt,
) -> None:
    """Prepare KsponSpeech (ETRI marks normalised; spelling -> text, pronunciation -> text_pron).

    Reads KsponSpeech_scripts/*.trn when present, else the .txt beside each .pcm (CP949, UTF-8 or EUC-KR, detected).

    Writes OUT/{train,dev,eval_clean,eval_other}.jsonl; audio is referenced in place (absolute paths) unless --convert.

    Example: soritune prepare kspon /data/KsponSpeech --out data/kspon --workers 2
    """
    _prepare("kspon", root, out_dir, config, set_, ratios, workers=workers, shard_size=shard_size, engine=engine,
             ray_address=ray_address, mode=mode, convert=convert, split=split, seed=seed,
             min_duration_s=min_duration_s, max_duration_s=max_duration_s, max_label_tokens=max_label_tokens,
             keep_shards=keep_shards or None)


@prepare_app.command("aihub-lecture")
def prepare_aihub(
    root: Path = typer.Argument(..., help="Folder holding the JSON labels and the audio (any depth)."),
    out_dir: Path = OutOpt, pron_first: bool = typer.Option(False, "--pron-first", help="Duals are written (pronunciation)/(spelling)."),
    workers: int | None = WorkersOpt, shard_size: int | None = ShardOpt,
    engine: str | None = EngineOpt, ray_address: str | None = RayOpt, mode: str | None = ModeOpt,
    convert: str | None = ConvertOpt, split: str | None = SplitOpt, ratios: str | None = RatiosOpt,
    seed: int | None = SeedOpt, min_duration_s: float | None = MinOpt, max_duration_s: float | None = MaxOpt,
    max_label_tokens: int | None = TokOpt, keep_shards: bool = KeepOpt,
    config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt,
) -> None:
    """Prepare AI-Hub lecture speech: one JSON label per utterance, audio paired by file stem.

    Numeric key prefixes (01_dataset, 1_identifier) are stripped; the text is transcription.text (ETRI marks).

    lectureinfo, speakerinfo, category and speaker are kept as manifest fields.

    Training / Validation folders give the splits (else everything is train: try --split random).

    Example: soritune prepare aihub-lecture /data/lecture --out data/lecture --split random --ratios 8:1:1
    """
    _prepare("aihub-lecture", root, out_dir, config, set_, ratios, pron_first=pron_first or None, workers=workers,
             shard_size=shard_size, engine=engine, ray_address=ray_address, mode=mode, convert=convert, split=split,
             seed=seed, min_duration_s=min_duration_s, max_duration_s=max_duration_s,
             max_label_tokens=max_label_tokens, keep_shards=keep_shards or None)


def _corpus_doc(name: str) -> str:
    """The first paragraph of a registered corpus module's docstring, read without importing it."""
    import ast
    from importlib.util import find_spec

    from soritune.data.corpora import REGISTRY

    spec = find_spec(REGISTRY[name])
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) if spec and spec.origin else None
    return (doc or f"the {name} corpus").split("\n\n")[0].replace("\n", " ")


def _registry_command(name: str):
    """`soritune prepare NAME ROOT --out DIR` for a registered corpus with no command of its own."""

    def command(
        root: Path = typer.Argument(..., help="The corpus: a file or folder, as the reader describes it."),
        out_dir: Path = OutOpt,
        norm: str | None = typer.Option(None, "--norm", help="basic or etri (default: the corpus's own)."),
        workers: int | None = WorkersOpt, shard_size: int | None = ShardOpt,
        engine: str | None = EngineOpt, ray_address: str | None = RayOpt, mode: str | None = ModeOpt,
        convert: str | None = ConvertOpt, split: str | None = SplitOpt, ratios: str | None = RatiosOpt,
        seed: int | None = SeedOpt, min_duration_s: float | None = MinOpt, max_duration_s: float | None = MaxOpt,
        max_label_tokens: int | None = TokOpt, keep_shards: bool = KeepOpt,
        config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt,
    ) -> None:
        _prepare(name, root, out_dir, config, set_, ratios, norm=norm, workers=workers, shard_size=shard_size,
                 engine=engine, ray_address=ray_address, mode=mode, convert=convert, split=split, seed=seed,
                 min_duration_s=min_duration_s, max_duration_s=max_duration_s, max_label_tokens=max_label_tokens,
                 keep_shards=keep_shards or None)

    command.__doc__ = (f"Prepare a corpus with the {name} reader: {_corpus_doc(name)}\n\nReader: soritune.data.corpora registry entry {name!r} "
                       f"(its module docstring says which columns and files it reads).\n\n"
                       f"Example: soritune prepare {name} CORPUS --out data/{name} --split random --ratios 9:1")
    return command


def _register_corpora() -> None:
    """Every registered corpus gets a `prepare NAME` command: a new reader needs no CLI code."""
    from soritune.data.corpora import REGISTRY

    have = {c.name for c in prepare_app.registered_commands}
    for name in REGISTRY:
        if name not in have:
            prepare_app.command(name)(_registry_command(name))


_register_corpora()


def _register_synth() -> None:
    """`soritune prepare synth` is the synthetic lecture corpus verb defined in cli/synth.py."""
    from soritune.cli.synth import prepare_synth

    prepare_app.command("synth")(prepare_synth)


_register_synth()
