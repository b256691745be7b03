"""Checking raw YAML data against the settings models: the ConfigurationManager's tools.

Every problem is collected (not raised) as ``file: key.path: problem``, so a
configuration with several mistakes reports all of them at once; unknown keys
are warnings with a "did you mean" suggestion, legacy keys pass silently.
"""

from __future__ import annotations

import copy
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from src.config.settings import LEGACY_KEYS


@dataclass
class Problems:
    """Errors and warnings found so far, each ``file: key.path: problem``."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, file: str, path: str, problem: str) -> None:
        self.errors.append(f"{file}: {path}: {problem}" if path else f"{file}: {problem}")


def join_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base``; nested mappings merge, others replace."""
    result: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def warn_unknown_keys(
    raw: Any, allowed: set[str], file: str, path: str, problems: Problems
) -> None:
    if not isinstance(raw, dict):
        return
    for key in list(raw):
        if key in allowed:
            continue
        raw.pop(key)
        if key in LEGACY_KEYS:
            continue
        hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        problems.warnings.append(f"{file}: {join_path(path, key)}: unknown key ignored{suggestion}")


def _model_keys(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, and whether it is a dict of such models."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found[0] is not None:
                return found
        return None, False
    if origin is dict:
        inner, _ = _submodel(typing.get_args(annotation)[1])
        return inner, inner is not None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _prune(raw: Any, model: type[BaseModel], file: str, path: str, problems: Problems) -> Any:
    """Drop (and warn about) keys the model does not know, recursively."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    warn_unknown_keys(raw, _model_keys(model), file, path, problems)
    by_key = {info.alias or name: info for name, info in model.model_fields.items()}
    for key, value in raw.items():
        sub, is_dict = _submodel(by_key[key].annotation)
        if sub is None:
            continue
        if is_dict and isinstance(value, dict):
            raw[key] = {
                k: _prune(v, sub, file, join_path(join_path(path, key), k), problems)
                for k, v in value.items()
            }
        elif not is_dict:
            raw[key] = _prune(value, sub, file, join_path(path, key), problems)
    return raw


_M = typing.TypeVar("_M", bound=BaseModel)


def validate(model: type[_M], raw: Any, file: str, path: str, problems: Problems) -> _M | None:
    cleaned = _prune(raw, model, file, path, problems)
    try:
        return model.model_validate(cleaned)
    except ValidationError as exc:
        for err in exc.errors():
            where = path
            for part in err["loc"]:
                where = join_path(where, part)
            message = err["msg"].removeprefix("Value error, ")
            problems.error(file, where, message)
        return None


def validate_each(
    model: type[_M], raw: Any, file: str, path: str, problems: Problems
) -> dict[str, _M]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.error(file, path, "expected a mapping of names to settings")
        return {}
    result: dict[str, _M] = {}
    for name, entry in raw.items():
        item = validate(model, entry or {}, file, join_path(path, name), problems)
        if item is not None:
            result[str(name)] = item
    return result
