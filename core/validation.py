"""Shared helpers for validated YAML inputs: errors name the field."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def format_validation_error(err: ValidationError, what: str, source: str) -> str:
    lines = [f"invalid {what} {source}:"]
    errors = [(tuple(str(p) for p in e["loc"] if p != "[key]"), e["msg"]) for e in err.errors()]
    for loc, msg in errors:
        # a container error echoed above a more precise error inside it adds nothing
        if any(other[: len(loc)] == loc and len(other) > len(loc) for other, _ in errors):
            continue
        lines.append(f"  field '{'.'.join(loc) or f'({what})'}': {msg}")
    return "\n".join(lines)


def load_yaml_model(model: type[M], path: str | Path, what: str, error: type[Exception]) -> M:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"invalid {what} {path}: expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise error(format_validation_error(err, what, str(path))) from None
