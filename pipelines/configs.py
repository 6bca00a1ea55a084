"""Typed configs from YAML plus command-line overrides, validated at the door."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from catalog.errors import RoomtoneError

M = TypeVar("M", bound=BaseModel)


def describe_validation_error(exc: ValidationError, where: str = "config", fields: Iterable[str] = ()) -> RoomtoneError:
    """One message naming every bad field, what was given and what is allowed; an unknown field
    gets the closest of ``fields`` (the model's own) as a suggestion."""
    parts, fields = [], list(fields)
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")  # our validators' messages name their fields
        shown = repr(err.get("input"))
        given = (f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
                 if "input" in err and not isinstance(err["input"], dict) else "")
        close = difflib.get_close_matches(str(err["loc"][-1]), fields, n=1) if err["type"] == "extra_forbidden" else []
        parts.append(f"{field}: " * bool(field) + msg + given + (f" (did you mean {close[0]!r}?)" if close else ""))
    return RoomtoneError(f"invalid {where}: " + "; ".join(parts), "fix the named fields to what each message allows")


def read_yaml(path: Path, what: str, fix_path: str):
    """The YAML document in `path`; a missing file, a folder, text that is not UTF-8 or bad YAML is one
    clear error naming `what`."""
    if not path.is_file():
        raise RoomtoneError(f"{what} {path} {'is a folder' if path.is_dir() else 'does not exist'}", fix_path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RoomtoneError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}",
                            "fix the YAML syntax (UTF-8 text)") from None


def load_config(config_type: type[M], path: str | Path | None = None, /, **overrides) -> M:
    """Defaults, then the YAML file, then non-None overrides (any field name, `model` included);
    unknown keys are refused."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        values = read_yaml(path, "config file", "check the path given to --config") or {}
        if not isinstance(values, dict):
            raise RoomtoneError(f"config file {path} must hold a mapping of fields", "write `field: value` lines")
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    sources = [str(path)] * (path is not None) + ["the command's options"] * bool(given)
    try:
        return config_type(**values)
    except ValidationError as exc:
        raise describe_validation_error(exc, config_type.__name__ + (f" (from {' and '.join(sources)})" if sources
                                                                      else ""), config_type.model_fields) from None
