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


def apply_overrides(cfg: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Apply `{"train.epochs": 3}` or nested `{"train": {"epochs": 3}}`; unknown keys raise ConfigError."""
    out = copy.deepcopy(cfg)
    for dotted, value in (overrides or {}).items():
        if isinstance(value, Mapping) and "." not in dotted and isinstance(out.get(dotted), dict):
            out[dotted] = apply_overrides(out[dotted], {k: v for k, v in value.items()})
            continue
        node = out
        keys = dotted.split(".")
        for i, key in enumerate(keys[:-1]):
            if not isinstance(node.get(key), dict):
                raise ConfigError(f"override {dotted!r}: {'.'.join(keys[: i + 1])!r} is not a section")
            node = node[key]
        if keys[-1] not in node:
            raise ConfigError(f"override {dotted!r}: unknown key; known: {sorted(node)}")
        node[keys[-1]] = copy.deepcopy(value)
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
    """`["train.epochs=3", "model.base=meta-llama/Llama-2-7b-hf"]` → dict, values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw)
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
