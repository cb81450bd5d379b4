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
thresholds) stay reachable with --set section.key=value. `rename` keeps an older flag name
(for a bool, both spellings: "--speed/--no-speed").
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

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
        return "  \\[required]" if field.is_required() else ""
    if default is None:
        return ""
    if isinstance(default, bool):
        return f"  \\[default: {'on' if default else 'off'}]"  # \\[: not rich markup
    return f"  \\[default: {default}]"


def option_parameters(model: type[BaseModel], *, include=None, exclude=(), short: dict | None = None,
                      rename: dict | None = None, extra: dict | None = None) -> list[inspect.Parameter]:
    """One keyword parameter (with its typer.Option) per CLI-expressible field of `model`."""
    short, rename, extra = short or {}, rename or {}, extra or {}
    params = []
    for name, field in model.model_fields.items():
        if (include is not None and name not in include) or name in exclude:
            continue
        kind = _cli_type(field.annotation)
        if kind is None:
            continue
        flag = rename.get(name, "--" + name.replace("_", "-"))
        help_text = (field.description or name).rstrip(".") + _default_text(field)
        decls = [flag if "/" in flag else f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        if name in short:
            decls.append(short[name])
        settings = dict(extra.get(name, {}))
        choices = _choices(kind)
        if choices:  # checked by the config (one line naming the field and the allowed values), shown here
            kind = list[str] if typing.get_origin(kind) is list else str
            settings.setdefault("metavar", "<" + "|".join(map(str, choices)) + ">")
        option = typer.Option(None, *decls, help=help_text, **settings)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=kind | None))
    return params


def config_options(model: type[BaseModel], **kw) -> Callable:
    """Decorate a command whose first parameter is `fields`: the model's fields become its options,
    and `fields` receives {field: value} for the flags that were given."""

    def wrap(fn: Callable) -> Callable:
        own = list(inspect.signature(fn).parameters.values())
        if not own or own[0].name != "fields":
            raise TypeError(f"{fn.__name__}: the first parameter must be `fields`")
        generated = option_parameters(model, **kw)
        names = {p.name for p in generated}
        clash = names & {p.name for p in own[1:]}
        if clash:
            raise TypeError(f"{fn.__name__}: parameters {sorted(clash)} are generated from {model.__name__}")

        @functools.wraps(fn)
        def command(**values):
            given = {k: values.pop(k) for k in list(values) if k in names}
            return fn({k: v for k, v in given.items() if v is not None and v != []}, **values)

        own_kw = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own[1:]]
        command.__signature__ = inspect.Signature(generated + own_kw)  # what typer reads
        return command

    return wrap
