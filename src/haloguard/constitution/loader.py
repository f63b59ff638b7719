"""Reading constitutions from YAML/JSON files with one-line, path-naming errors."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .schema import Constitution, ConstitutionError

DEFAULT_RESOURCE = "default.yaml"


def format_loc(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``policies[3].categories[0].severity``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _from_validation_error(err: ValidationError, file: str) -> ConstitutionError:
    errors = err.errors(include_url=False)
    first = errors[0]
    problem = first["msg"]
    if first["type"] not in {"missing"} and "input" in first:
        value = first["input"]
        if isinstance(value, (str, int, float, bool)) or value is None:
            problem += f" (got {value!r})"
    if len(errors) > 1:
        problem += f" (+{len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return ConstitutionError(problem, path=format_loc(tuple(first["loc"])), file=file)


def parse_constitution(data: Any, source: str = "<data>") -> Constitution:
    """Validate an already-parsed document; errors name ``source``."""
    if not isinstance(data, dict):
        kind = "empty document" if data is None else f"a {type(data).__name__}"
        raise ConstitutionError(f"top level must be a mapping, got {kind}", file=source)
    try:
        return Constitution.model_validate(data)
    except ValidationError as err:
        raise _from_validation_error(err, source) from None
    except ConstitutionError as err:
        raise err.with_file(source) from None


def parse_text(text: str, source: str = "<text>") -> Constitution:
    """Parse YAML (or JSON) text into a Constitution."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConstitutionError(f"invalid YAML: {where}{problem}", file=source) from None
    return parse_constitution(data, source)


@functools.lru_cache(maxsize=1)
def _load_default() -> Constitution:
    ref = resources.files("haloguard.constitution").joinpath(DEFAULT_RESOURCE)
    try:
        text = ref.read_text(encoding="utf-8")
    except OSError as err:
        problem = f"cannot read packaged constitution: {err}"
        raise ConstitutionError(problem, file=str(ref)) from None
    return parse_text(text, str(ref))


def load_constitution(path: str | Path | None = None) -> Constitution:
    """Load a constitution file; ``None`` gives the packaged default (cached)."""
    if path is None:
        return _load_default()
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConstitutionError("file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConstitutionError(f"cannot read file: {reason}", file=file) from None
    return parse_text(text, file)
