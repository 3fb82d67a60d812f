"""Bounded, strict YAML reading for scenario and data files.

Any input is read in bounded time and memory: the file size is capped, anchors and aliases are
refused (no "billion laughs"), nesting depth is capped, duplicate keys are refused instead of
silently keeping the last one, and only plain YAML types are built (PyYAML's safe loader).
Every failure is a :class:`InputError` whose message names the file and the place.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode

from hccsim.simulator.errors import InputError

MAX_BYTES = 1_000_000
MAX_DEPTH = 50
_SHORT = 60


def _text(value: Any) -> str:
    """A value as the user wrote it in YAML: texts quoted, ``true``, ``null``, ``.nan``, dates."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, datetime.date):  # also datetime.datetime
        return value.isoformat()
    if isinstance(value, bytes):
        return f"binary data ({len(value)} bytes)"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(_text(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
    return repr(value)


def shorten(value: Any, limit: int = _SHORT) -> str:
    """The value as written in YAML (``_text``), cut to ``limit`` characters with its full
    length noted. An empty value (YAML ``null``) reads "an empty value"."""
    if value is None:
        return "an empty value"
    text = _text(value)
    if len(text) > limit:
        text = f"{text[: limit - 1]}… ({len(text)} characters)"
    return text


class _StrictLoader(yaml.SafeLoader):
    """Safe loader without anchors, aliases, duplicate keys or deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise _Refused(
                f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not "
                "allowed; write the value out in full",
            )
        event = self.peek_event()
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            raise _Refused(
                f"line {event.start_mark.line + 1}: YAML anchors (&{event.anchor}) are not "
                "allowed; write the value out in full",
            )
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(
                f"line {event.start_mark.line + 1}: nesting deeper than {MAX_DEPTH} levels "
                "is not allowed",
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise _Refused(
                        f"line {key_node.start_mark.line + 1}: a mapping key must be a plain "
                        "value, not a list or mapping",
                    ) from None
                if key in seen:
                    raise _Refused(
                        f"line {key_node.start_mark.line + 1}: duplicate key {shorten(key)} "
                        f"(first given on line {seen[key]}); give each key once",
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    pass


def parse_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text under the rules above; ``source`` names the input in messages."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise InputError(f"{source}: larger than {MAX_BYTES // 1000} kB; scenario files are small")
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _Refused as exc:
        raise InputError(f"{source}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        raise InputError(f"{source}: {_describe_yaml_error(exc)}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({shorten(str(exc), 200)})") from None
    except RecursionError:
        raise InputError(f"{source}: nesting too deep to read") from None


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem and context in one sentence, with the line and column of the problem."""
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    what = (exc.problem or "").replace("'<stream end>'", "the end of the file")
    context = exc.context or ""
    if context.startswith("while ") and exc.context_mark is not None and what:
        # "expected ',' or '}', ..., while parsing a flow mapping that starts on line 2"
        what = f"{what}, {context} that starts on line {exc.context_mark.line + 1}"
    elif context and what:
        # "expected a single document in the stream, but found another document"
        what = f"{context}, {what}"
    what = what or context or "malformed YAML"
    if "'\\t'" in what:
        what += "; indent with spaces, not tabs"
    return f"{where}not valid YAML ({what})"


def read_yaml(path: str | Path) -> Any:
    """Read one YAML file under the rules above. Missing or unreadable files are InputErrors."""
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror})") from None
    if path.is_dir():
        raise InputError(f"{source}: is a folder; expected a YAML file")
    if size > MAX_BYTES:
        raise InputError(f"{source}: larger than {MAX_BYTES // 1000} kB; scenario files are small")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    return parse_yaml_text(text, source)
