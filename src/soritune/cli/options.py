"""CLI options generated from a stage's pydantic config: each field is declared once, in the config.

    @app.command()
    @config_options(EvalConfig, short={"model": "-m", "out": "-o"})
    def eval_(fields: dict, config: Path | None = ConfigOpt, set_: list[str] | None = SetOpt) -> None:
        cfg = load_config(EvalConfig, config, set_, **fields)

Every plain field (str, int, float, bool, Path, Literal choices, lists of those; `X | None` too)
becomes `--field-name` with the field's description, its default and its choices in the help (the
config checks a choice, so a wrong one gets soritune's one-line error naming the field); a
bool becomes `--name/--no-name`. Options default to None, so `fields` holds only the flags the
user gave: the config's own default (or a --config file, a preset) fills the rest, and pydantic
checks the bounds with its one-line, field-named error. Nested models (decode, augment, gate
thresholds) stay reachable with --set section.key=value.

Keyword arguments shape the flags, never the fields: `rename` keeps an older flag name (a tuple for
several spellings; for a bool, both: "--speed/--no-speed"), `short` adds "-m", `csv` makes a list
field one comma-separated value (`--sparsity 0.1,0.5`; a string value adds separators: ":" for
8:1:1) instead of a repeated flag, and `nested` gives flags to fields of a dict-of-fields section
(`train_overrides`: {"train_overrides": (TrainConfig, {"include": [...], "rename": {...}})} puts
`--lr 1e-3` in fields["train_overrides"]["lr"]; a dotted key, "recipe.model", reaches a section inside
one; `merge_config` merges such sections at every depth). A dict of configs ({"magnitude": MagnitudeConfig,
...}) gives one command the union of their fields, each flag's help naming the configs that have it
(`prune --method`: the command keeps the given fields of the chosen one).
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, NamedTuple

import typer
from pydantic_core import PydanticUndefined

from soritune.errors import ConfigError

PLAIN = (str, int, float, bool, Path)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML file with the same fields (flags given override it).")
SetOpt = typer.Option(None, "--set", help="Override any field, nested ones too: --set key=value (repeatable).")


def _cli_type(annotation: Any) -> Any | None:
    """The type typer gets for a field annotation, or None when a flag cannot express it."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        plain = [a for a in args if _cli_type(a) is not None and typing.get_origin(a) is not list]
        return _cli_type(plain[0]) if plain else (_cli_type(args[0]) if len(args) == 1 else None)
    if origin is Literal:
        return annotation
    if origin is list:
        (inner,) = typing.get_args(annotation) or (str,)
        return list[inner] if inner in PLAIN or typing.get_origin(inner) is Literal else None
    return annotation if annotation in PLAIN else None


def _choices(kind) -> tuple | None:
    if typing.get_origin(kind) is list:
        (kind,) = typing.get_args(kind)
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else None


def _default_text(field) -> str:
    default = field.default
    if default is PydanticUndefined or field.default_factory is not None:
        if field.default_factory is not None and typing.get_origin(field.annotation) is list:
            value = field.default_factory()
            return f"  \\[default: {','.join(map(str, value))}]" if value else ""
        return "  \\[required]" if field.is_required() else ""
    if default is None:
        return ""
    if isinstance(default, bool):
        return f"  \\[default: {'on' if default else 'off'}]"  # \\[: not rich markup
    if isinstance(default, (list, tuple)):
        if not default:
            return ""
        default = ",".join(map(str, default))
    return f"  \\[default: {default}]"


def _split(text: str, inner: Any, flag: str, seps: str) -> list:
    """One option value holding a list: "0.1,0.3" (or "8:1:1" where ":" separates too) -> [0.1, 0.3]."""
    parts = [p.strip() for p in re.split(f"[,{re.escape(seps)}]", text) if p.strip()]
    if inner not in (int, float):
        return parts
    try:
        return [inner(p) for p in parts]
    except ValueError:
        kind = "integers such as 1,4,8" if inner is int else "numbers such as 0.1,0.5"
        raise ConfigError(f"{flag} expects comma-separated {kind}, got {text!r}") from None


class _Spec(NamedTuple):
    param: inspect.Parameter
    path: tuple[str, ...]  # where the value goes in `fields`: ("lr",) or ("train_overrides", "lr")
    convert: Callable[[Any], Any] | None  # csv text -> list


def _fields(model) -> list[tuple[str, Any, str, str]]:
    """(name, [field], help prefix, default text) of a config, or of the union of a dict of labelled
    configs (a default that differs between them is shown per config)."""
    if not isinstance(model, dict):
        return [(n, [f], "", _default_text(f)) for n, f in model.model_fields.items()]
    found: dict[str, dict[str, Any]] = {}
    for label, cls in model.items():
        for name, field in cls.model_fields.items():
            found.setdefault(name, {})[label] = field
    rows = []
    for name, by_label in found.items():
        owner = "" if len(by_label) == len(model) else ", ".join(by_label) + ": "
        texts = {label: _default_text(f) for label, f in by_label.items()}
        default = next(iter(texts.values())) if len(set(texts.values())) == 1 else "  \\[default: " + ", ".join(
            f"{label} {t.split(': ', 1)[1].rstrip(']') if ': ' in t else '-'}" for label, t in texts.items()) + "]"
        rows.append((name, list(by_label.values()), owner, default))
    return rows


def _specs(model, *, include=None, exclude=(), short=None, rename=None, extra=None, csv=(), label: str = "",
           prefix: tuple[str, ...] = (), defaults: dict | None = None) -> list[_Spec]:
    """`defaults`: {field: value} a command applies on top of the config's own (shown as the default)."""
    short, rename, extra, defaults = short or {}, rename or {}, extra or {}, defaults or {}
    seps = csv if isinstance(csv, dict) else dict.fromkeys(csv, "")
    specs = []
    for name, fields, owner, default in _fields(model):
        field = fields[0]
        if (include is not None and name not in include) or name in exclude:
            continue
        kind = _cli_type(field.annotation)
        if kind is None:
            continue
        flags = rename.get(name, "--" + name.replace("_", "-"))
        flags = [flags] if isinstance(flags, str) else list(flags)
        if defaults.get(name) is not None:
            default = f"  \\[default: {defaults[name]}]"
        help_text = label + owner + (field.description or name).rstrip(".") + default
        decls = [flags[0] if "/" in flags[0] else f"{flags[0]}/--no-{flags[0][2:]}"] if kind is bool else flags
        if name in short:
            decls.append(short[name])
        settings = dict(extra.get(name, {}))
        choices = tuple(dict.fromkeys(c for f in fields for c in _choices(_cli_type(f.annotation)) or ()))
        convert = None
        if name in seps and typing.get_origin(kind) is list:
            (inner,) = typing.get_args(kind)
            inner = str if choices else inner
            convert = functools.partial(_split, inner=inner, flag=flags[0], seps=seps[name])
            settings.setdefault("metavar", "<" + "|".join(map(str, choices)) + ">,..." if choices else "A,B,...")
            kind = str
        elif choices:  # checked by the config (one line naming the field and the allowed values), shown here
            plain = int if all(type(c) is int for c in choices) else str  # Literal[1, 2] takes the integers
            kind = list[plain] if typing.get_origin(kind) is list else plain
            settings.setdefault("metavar", "<" + "|".join(map(str, choices)) + ">")
        option = typer.Option(None, *decls, help=help_text, **settings)
        param = inspect.Parameter("__".join((*prefix, name)), inspect.Parameter.KEYWORD_ONLY, default=option,
                                  annotation=kind | None)
        specs.append(_Spec(param, (*prefix, name), convert))
    return specs


def option_parameters(model, **kw) -> list[inspect.Parameter]:
    """One keyword parameter (with its typer.Option) per CLI-expressible field of `model`."""
    return [s.param for s in _specs(model, **kw)]


def config_options(model, *, nested: dict | None = None, more: tuple = (), **kw) -> Callable:
    """Decorate a command whose first parameter is `fields`: the model's fields become its options,
    and `fields` receives {field: value} for the flags that were given. `more`: further (config, kw)
    pairs whose fields are flags of the same command (transcribe: the model reference + DecodeOptions)."""

    def wrap(fn: Callable) -> Callable:
        own = list(inspect.signature(fn).parameters.values())
        if not own or own[0].name != "fields":
            raise TypeError(f"{fn.__name__}: the first parameter must be `fields`")
        specs = _specs(model, **kw)
        for other, other_kw in more:
            specs += _specs(other, **other_kw)
        for section, (sub_model, sub_kw) in (nested or {}).items():  # "recipe.model": a section inside one
            specs += _specs(sub_model, prefix=tuple(section.split(".")), **sub_kw)
        by_name = {s.param.name: s for s in specs}
        if len(by_name) < len(specs):
            raise TypeError(f"{fn.__name__}: two generated options have the same name")
        clash = set(by_name) & {p.name for p in own[1:]}
        if clash:
            raise TypeError(f"{fn.__name__}: parameters {sorted(clash)} are generated from the config")

        @functools.wraps(fn)
        def command(**values):
            fields: dict = {}
            for name in [k for k in values if k in by_name]:
                value, spec = values.pop(name), by_name[name]
                if value is None or (value in ([], ()) and spec.convert is None):
                    continue
                *section, key = spec.path
                target = fields
                for part in section:
                    target = target.setdefault(part, {})
                target[key] = spec.convert(value) if spec.convert else value
            return fn(fields, **values)

        own_kw = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[1:]]
        command.__signature__ = inspect.Signature([s.param for s in specs] + own_kw)  # what typer reads
        return command

    return wrap


def merge_config(model_cls, config: Path | None, set_: list[str] | None, fields: dict, base: dict | None = None):
    """base (a preset) < YAML file < flags given < --set; a section given by flags (train_overrides,
    recipe.model) merges into the file's and the base's, at every depth, instead of replacing them."""
    from soritune.config import apply_overrides, read_yaml, validate

    data = _deep_merge(dict(base or {}), read_yaml(config) if config else {})
    return validate(model_cls, apply_overrides(_deep_merge(data, fields), set_ or None))


def _deep_merge(into: dict, given: dict) -> dict:
    """`given` over `into`, section by section (a nested dict merges into the one below it)."""
    for key, value in given.items():
        into[key] = _deep_merge(dict(into.get(key) or {}), value) if isinstance(value, dict) else value
    return into
