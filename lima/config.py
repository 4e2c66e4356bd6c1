"""One config flow: YAML profile in `configs/` → overrides (papermill parameters or `--set`) → dataclasses.

A profile is a nested mapping with one top-level section per pipeline stage (`data`, `curation`, `model`,
`train`, ...). Each stage owns a dataclass and reads its section with `section(cfg, "train", TrainConfig)`.
Unknown keys are errors rather than silently ignored, because a typo in a sweep parameter would otherwise
run the default and look like a result.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _find_root() -> Path:
    if env := os.environ.get("LIMA_ROOT"):
        return Path(env).resolve()
    here = Path(__file__).resolve().parent.parent
    if (here / "configs").is_dir():
        return here
    return Path.cwd()


ROOT = _find_root()
CONFIG_DIR = ROOT / "configs"


class ConfigError(ValueError):
    """A profile, override or section that does not fit the schema."""


def resolve(path: str | os.PathLike[str]) -> Path:
    """Paths in profiles are relative to the repository root, whatever the caller's working directory."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _profile_file(profile: str | os.PathLike[str]) -> Path:
    candidate = Path(profile)
    if candidate.suffix in {".yaml", ".yml"}:
        return candidate if candidate.is_absolute() else resolve(candidate)
    return CONFIG_DIR / f"{profile}.yaml"


def _read_profile(profile: str | os.PathLike[str], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = _profile_file(profile)
    if not path.exists():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise ConfigError(f"profile {profile!r} not found ({path}); known profiles: {known}")
    if str(path) in seen:
        raise ConfigError(f"profile inheritance loops through {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    parent = data.pop("inherits", None)
    if parent:
        data = _deep_merge(_read_profile(parent, (*seen, str(path))), data)
    return data


# Each stage's section and the dataclass that reads it (`section(cfg, name, cls)`), as "module:Class" so that
# validating an override imports only the stage it touches.
SECTION_SCHEMAS: dict[str, str] = {
    "data": "lima.data:DataConfig",
    "curation": "lima.curation:CurationConfig",
    "model": "lima.model:ModelConfig",
    "train": "lima.train:TrainConfig",
    "generate": "lima.generate.decoding:DecodingConfig",
    "judge": "lima.judge:JudgeConfig",
    "absolute": "lima.judge.protocols:AbsoluteConfig",
    "analysis": "lima.analysis:AnalysisConfig",
    "ablations": "lima.ablations.common:AblationConfig",
    "superficial": "lima.superficial:SuperficialConfig",
}


def section_schema(name: str) -> type | None:
    """The dataclass of a top-level section, or None for sections without one (paths, annotate, ...)."""
    spec = SECTION_SCHEMAS.get(name)
    if spec is None:
        return None
    import importlib

    module, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):          # a stage being reworked: fall back to the profile's keys
        return None
    return cls if dataclasses.is_dataclass(cls) else None


def _schema_field(cls: type | None, keys: list[str]) -> tuple[bool, Any]:
    """(is `keys` a field path of dataclass `cls`, its type); nested dataclass fields are walked."""
    tp: Any = cls
    for key in keys:
        target = _dataclass_of(tp)
        if target is None:
            return False, None
        hints = typing.get_type_hints(target)
        if key not in {f.name for f in dataclasses.fields(target)}:
            return False, None
        tp = hints[key]
    return True, tp


def _dataclass_of(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _known_keys(node: Mapping[str, Any], cls: type | None, keys: list[str]) -> list[str]:
    names = set(node)
    target = _dataclass_of(_schema_field(cls, keys)[1]) if cls is not None else None
    if target is not None:
        names |= {f.name for f in dataclasses.fields(target)}
    return sorted(names)


def apply_overrides(cfg: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Apply `{"train.epochs": 3}` or nested `{"train": {"epochs": 3}}`; unknown keys raise ConfigError.

    A key is known when the profile has it or when the section's dataclass has it (`SECTION_SCHEMAS`), so
    every documented field can be set even where the YAML leaves it at its default; a value that does not
    fit the field's type is an error here, before anything runs.
    """
    out = copy.deepcopy(cfg)
    for dotted, value in _flatten(overrides or {}, out).items():
        keys = dotted.split(".")
        cls = section_schema(keys[0]) if len(keys) > 1 else None
        in_schema, tp = _schema_field(cls, keys[1:]) if cls is not None else (False, None)
        node = out
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None and cls is not None and _dataclass_of(_schema_field(cls, keys[1: i + 1])[1]):
                child = node[key] = {}                   # a section or nested dataclass the YAML leaves out
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted!r}: {'.'.join(keys[: i + 1])!r} is not a section")
            node = child
        if keys[-1] not in node and not in_schema:
            known = _known_keys(node, cls, keys[1:-1])
            raise ConfigError(f"override {dotted!r}: unknown key; known: {known}")
        if in_schema:
            _coerce(value, tp, f"override {dotted}")     # raises ConfigError when the value does not fit
        node[keys[-1]] = copy.deepcopy(value)
    return out


def _flatten(overrides: Mapping[str, Any], cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested `{"train": {"epochs": 3}}` → `{"train.epochs": 3}` where the profile has that section."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = f"{prefix}{key}"
        section = isinstance(cfg.get(key), dict) or (not prefix and key in SECTION_SCHEMAS and key not in cfg)
        if isinstance(value, Mapping) and "." not in key and section:
            out.update(_flatten(value, cfg.get(key) or {}, f"{dotted}."))
        else:
            out[dotted] = value
    return out


_REF = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+)\}")


def _lookup(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise ConfigError(f"reference {{{dotted}}}: no such key")
        node = node[key]
    return node


def interpolate(node: Any, cfg: Mapping[str, Any], depth: int = 0) -> Any:
    """Replace `{paths.raw}`-style references in strings, so one `paths.root` override moves everything."""
    if isinstance(node, dict):
        return {k: interpolate(v, cfg, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, cfg, depth) for v in node]
    if isinstance(node, str) and _REF.search(node):
        if depth > 8:
            raise ConfigError(f"references nest too deep in {node!r}")
        out = _REF.sub(lambda m: str(_lookup(cfg, m.group(1))), node)
        return interpolate(out, cfg, depth + 1)
    return node


def load_profile(profile: str | os.PathLike[str] = "smoke", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    cfg = apply_overrides(_read_profile(profile), overrides)
    cfg.setdefault("profile", Path(profile).stem)
    paths = cfg.get("paths")
    if isinstance(paths, dict):
        # every path absolute before anything refers to it, so a notebook (cwd notebooks/) and the Makefile
        # (cwd repo root) mean the same folders, whichever `paths.*` entry an override set
        if "root" in paths:
            paths["root"] = str(resolve(str(paths["root"])))
        cfg["paths"] = {key: str(resolve(str(value))) for key, value in interpolate(paths, cfg).items()}
    return interpolate(cfg, cfg)


def parse_set_args(items: list[str] | None) -> dict[str, Any]:
    """`["train.epochs=3", "model.base=meta-llama/Llama-2-7b-hf"]` → dict, values parsed as YAML scalars (a
    value that is not valid YAML, such as `{paths.models}/lima`, is taken as the string it is)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:               # e.g. `{paths.models}/lima`: a reference, meant as a string
            out[key.strip()] = raw
    return out


def notebook_overrides(**params: Any) -> dict[str, Any]:
    """Papermill parameters that are None mean "take the profile's value"; the rest become overrides."""
    extra = params.pop("overrides", None) or {}
    out = {key.replace("__", "."): value for key, value in params.items() if value is not None}
    return {**out, **extra}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or value is None:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} does not fit {tp}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (arg, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, arg, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(tp, type):
        if tp is int and isinstance(value, bool):
            raise ConfigError(f"{where}: expected int, got {value!r}")
        if not isinstance(value, tp):
            raise ConfigError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str | None = None) -> T:
    """Build dataclass `cls` from a mapping, checking key names and simple types."""
    where = where or cls.__name__
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(fields)}")
    kwargs = {name: _coerce(value, hints[name], f"{where}.{name}") for name, value in data.items()}
    return cls(**kwargs)


def section(cfg: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Read one section of a loaded profile into its dataclass (missing section → the defaults)."""
    return from_dict(cls, cfg.get(name) or {}, where=f"{cfg.get('profile', 'profile')}.{name}")
