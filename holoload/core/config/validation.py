"""Turns TOML text plus `--set` overrides into validated models, with errors naming file and key path."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from holoload.core.errors import ScenarioError

M = TypeVar("M", bound=BaseModel)


def parse_toml(text: str, file: str) -> dict[str, Any]:
    """Parse TOML text, turning syntax errors into a ScenarioError.

    Args:
        text: the document.
        file: name used in error messages.

    Raises:
        ScenarioError: the text is not valid TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, [("", f"not valid TOML: {exc}")]) from exc


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split one `key.path=value` override; the value is read as TOML, else as a plain string.

    Raises:
        ScenarioError: the item has no `=` or an empty key path.
    """
    key, sep, raw = item.partition("=")
    path = [part.strip() for part in key.strip().split(".")]
    if not sep or not all(path):
        raise ScenarioError("--set", [(item, 'expected key.path=value, e.g. gates.p95_20k="p95(batch_20k) <= 10s"')])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def set_path(data: dict[str, Any], path: Sequence[str], value: Any, *, file: str, item: str) -> None:
    """Set one key path (`chaos.0.enabled`) of a raw document to `value`, as `--set` does.

    Tables on the way are created; list items are addressed by index. Profiles and
    `HOLOLOAD_GATE_*` variables go through here too, so every source behaves the same.

    Args:
        data: the raw document, changed in place.
        path: the key path, split at the dots.
        value: the new value (already a TOML value).
        file: where the override came from, for error messages (`--set`, a scenario file).
        item: the override as the user wrote it, quoted in error messages.

    Raises:
        ScenarioError: the path walks through something that is not a table or list.
    """
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        node = _step(node, part, list(path[: depth + 1]), item, file)
    last = path[-1]
    if isinstance(node, list):
        node[_index(node, last, item, file)] = value
    else:
        node[last] = value


def _step(node: Any, part: str, where: list[str], item: str, file: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, item, file)]
    if not isinstance(node, dict):
        raise ScenarioError(file, [(".".join(where), f"cannot set inside a {type(node).__name__} ({item})")])
    return node.setdefault(part, {})


def _index(node: list[Any], part: str, item: str, file: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ScenarioError(file, [(part, f"expected a list index below {len(node)} ({item})")])
    return int(part)


def validate(model: type[M], data: Mapping[str, Any], file: str) -> M:
    """Validate raw data against a model, reporting every problem at once.

    Raises:
        ScenarioError: with one (key path, expectation) per problem.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        merged: dict[str, list[str]] = {}
        for err in exc.errors():
            path, msg = _describe(model, err)
            if msg not in merged.setdefault(path, []):
                merged[path].append(msg)  # a union reports each branch: say them once, joined
        raise ScenarioError(file, [(path, " or ".join(msgs)) for path, msgs in merged.items()]) from None


def key_path(loc: Sequence[int | str]) -> str:
    """Render a pydantic location tuple as `chaos[0].after_batch`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(model: type[BaseModel], err: Mapping[str, Any]) -> tuple[str, str]:
    loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
    path = key_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        bad = str(loc[-1])
        hint = difflib.get_close_matches(bad, allowed, n=1)
        msg = f"unknown key '{bad}'"
        if hint:
            msg += f" (did you mean '{hint[0]}'?)"
        if allowed:
            msg += f"; allowed here: {', '.join(sorted(allowed))}"
        return path, msg
    if kind == "missing":
        return path, "required key is missing"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    value = err.get("input")
    if "got" not in msg and not isinstance(value, (dict, list)):
        msg += f" (got {value!r})"
    return path, msg


_TYPE_TAGS = frozenset({"int", "str", "float", "bool", "list", "dict", "none", "constrained-int", "constrained-float"})


def _is_union_tag(part: int | str) -> bool:
    # pydantic inserts the union member / validator name it tried into locations
    return isinstance(part, str) and ("[" in part or part.startswith("function-") or part in _TYPE_TAGS)


def _allowed_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if _is_model(current) else None
        if field is None:
            return []
        current = _inner_model(field.annotation)
        if current is None:
            return []
    return list(current.model_fields) if _is_model(current) else []


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _inner_model(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
