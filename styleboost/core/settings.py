"""Settings as data: config dataclasses whose fields carry their help, turned into flags and back by one parser.

Every config (training, generation, evaluation, protocols, the style encoder, the toy world) is a
dataclass declared with ``option`` fields. ``build_parser`` / ``add_options`` make one flag per field
(``--a_b`` and ``--a-b`` both work) plus ``--config FILE.yaml``; ``settings_from_args`` layers
defaults, then a ``base`` mapping, then the YAML file, then the flags actually given, so a YAML key and a
flag always mean the same thing.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from styleboost.core.errors import StyleBoostError
from styleboost.core.text import read_text

T = TypeVar("T")
_ARGPARSE_KEYS = ("choices", "action", "metavar", "nargs", "type")


def comma_list(text: str) -> list[str]:
    """``a,b, c`` -> ``["a", "b", "c"]`` (empty parts dropped): the type of a comma-separated flag."""
    return [part.strip() for part in text.split(",") if part.strip()]


def option(default: Any = dataclasses.MISSING, help: str = "", *, flags: tuple[str, ...] | None = None,
           positional: bool = False, cli: bool = True, **argparse_kwargs: Any) -> Any:
    """A dataclass field that carries its command-line help. ``flags`` names the flag when it differs from
    the field (``--token`` for ``tokens``); ``positional`` makes it a positional argument; ``cli=False`` keeps
    it off the command line; ``choices``, ``action``, ``metavar``, ``type`` and ``nargs`` pass through to
    argparse. Without a default the setting is required."""
    metadata = {"help": help, "flags": flags, "positional": positional, "cli": cli, **argparse_kwargs}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_type(cls: type, f: dataclasses.Field) -> tuple[type, bool]:
    """(base type, is_list) of a field annotated as X, X | None or list[X] (or list[X] | None)."""
    hint = typing.get_type_hints(cls)[f.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], True
    return hint, False


def flag_names(f: dataclasses.Field, dashes: bool = True) -> list[str]:
    """The flags of a field: its own (or the declared) names, spelt with ``-`` and with ``_``; the first is the
    one help shows (dashes for ``styleboost`` sub-commands, underscores for the training scripts, as in
    diffusers' scripts)."""
    names = list(f.metadata.get("flags") or [f"--{f.name}"])
    spellings = []
    for name in names:
        dashed, underscored = "--" + name[2:].replace("_", "-"), "--" + name[2:].replace("-", "_")
        spellings += [dashed, underscored] if dashes else [underscored, dashed]
    return list(dict.fromkeys(spellings))


def cli_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.init and f.metadata.get("cli", True)]


def add_options(parser: argparse.ArgumentParser, cls: type, dashes: bool = True) -> argparse.ArgumentParser:
    """``--config`` and one flag per field of the config dataclass ``cls`` (see ``flag_names``). Flags not given
    stay out of the namespace, so they override a YAML file only where they are given."""
    parser.add_argument("--config", help="YAML file of settings; flags given here override it.")
    for f in cli_fields(cls):
        base, is_list = field_type(cls, f)
        kw: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": f.metadata.get("help")}
        kw.update({k: f.metadata[k] for k in _ARGPARSE_KEYS if k in f.metadata})
        if base is bool and "action" not in kw:
            kw["action"] = argparse.BooleanOptionalAction
        elif base is not bool:
            kw.setdefault("type", base)
            if is_list and kw.get("action") != "append":
                kw.setdefault("nargs", "+")
        if f.metadata.get("positional"):
            parser.add_argument(f.name, **{k: v for k, v in kw.items() if k != "dest"})
        else:
            parser.add_argument(*flag_names(f, dashes), **kw)
    return parser


def build_parser(cls: type, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """A training script's parser for the config dataclass ``cls`` (see ``add_options``; ``--a_b`` first)."""
    return add_options(argparse.ArgumentParser(prog=prog, description=description or cls.__doc__), cls, dashes=False)


def load_yaml_settings(path: str | Path, cls: type) -> dict[str, Any]:
    """Read a YAML file of ``cls`` settings, naming the file in any error."""
    text = read_text(path, what="config file")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise StyleBoostError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise StyleBoostError(f"{path}: expected a mapping of settings at the top level")
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls) if f.init})
    if unknown:
        raise StyleBoostError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return data


def settings_from_namespace(cls: type[T], args: argparse.Namespace, base: Mapping[str, Any] | None = None) -> T:
    """An instance of ``cls``: its defaults, then ``base``, then the YAML file of ``--config``, then the flags
    given. A required setting that none of them gives is one line naming its flag."""
    given = vars(args)
    settings: dict[str, Any] = dict(base or {})
    if given.get("config"):
        settings.update(load_yaml_settings(given["config"], cls))
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    settings.update({k: v for k, v in given.items() if k in names})
    for f in dataclasses.fields(cls):
        if f.name in settings and field_type(cls, f)[1] and isinstance(settings[f.name], str):
            settings[f.name] = [settings[f.name]]  # a YAML scalar for a list setting
    missing = [f for f in dataclasses.fields(cls) if f.init and f.name not in settings
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise StyleBoostError(f"{flag_names(missing[0])[0]} is required")
    return cls(**settings)


def settings_from_args(cls: type[T], argv: list[str] | None = None, *, base: Mapping[str, Any] | None = None,
                       prog: str | None = None, description: str | None = None) -> T:
    """Parse ``argv`` with ``build_parser(cls)`` and layer it as ``settings_from_namespace`` does."""
    return settings_from_namespace(cls, build_parser(cls, prog, description).parse_args(argv), base)
