"""Strict YAML reading: a size cap before parsing, safe loading, no anchors/aliases/merge keys/duplicates/Python
tags, line numbers for every key, and `Section`, a reader of one mapping that rejects unknown keys with a
did-you-mean and names the file, line and key path in every error (errors.ConfigError).

Used by the model schema (configs.py), budget files (budgets.py) and the GPU catalogue (hardware.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError

MAX_FILE_BYTES = 1 << 20  # a model file is a few hundred bytes; 1 MiB leaves room and stops huge inputs
MAX_LAYERS = 100_000
MAX_DIM = 1 << 20  # heads, head dims, ranks: real models stay below 2^16
MAX_CONTEXT_FIELD = 1 << 40


# ---------------------------------------------------------------------------------------------------------
# Reading YAML safely


class _Marked(dict):  # type: ignore[type-arg]
    """A mapping that remembers the line of each key (1-based)."""

    lines: dict[str, int]


def _make_loader() -> type:
    import yaml  # only when a YAML file is read (built-ins come from the disk cache)

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            if node in self.constructed_objects or node in self.recursive_objects:
                raise yaml.constructor.ConstructorError(
                    None, None, "anchors and aliases (&name / *name) are not supported", node.start_mark
                )
            return super().construct_object(node, deep=deep)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            if not isinstance(node, yaml.MappingNode):
                return super().construct_mapping(node, deep=deep)
            result = _Marked()
            result.lines = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(
                        None, None, "merge keys (<<) are not supported", key_node.start_mark
                    )
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"keys must be strings, got {key!r}", key_node.start_mark
                    )
                if key in result:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                result[key] = self.construct_object(value_node, deep=True)
                result.lines[key] = key_node.start_mark.line + 1
            return result

    StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_mapping)
    return StrictLoader


_LOADER: type | None = None


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a small UTF-8 text file, refusing directories, huge files and undecodable bytes."""
    name = str(path)
    try:
        if path.is_dir():
            raise ConfigError(name, "", "is a directory, expected a file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigError(name, "", f"file is {size:,} bytes; files of this kind are limited to {max_bytes:,}")
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise ConfigError(name, "", "no such file") from None
    except PermissionError:
        raise ConfigError(name, "", "permission denied") from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read file ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise ConfigError(name, "", f"file is larger than {max_bytes:,} bytes")
    try:
        text = data.decode("utf-8")  # "utf-8-sig" would load one more codec module on every read
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "", f"not UTF-8 text (bad byte at offset {exc.start})") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark
    if "\x00" in text:
        raise ConfigError(name, "", "contains NUL bytes; not a text file")
    return text


def load_yaml(text: str, name: str) -> Any:
    """Parse YAML text with the strict loader; syntax errors become ConfigError with a line number."""
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _make_loader()
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(name, "", f"invalid YAML: {problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(name, "", f"invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(name, "", "invalid YAML: nesting is too deep") from None


# ---------------------------------------------------------------------------------------------------------
# A strict reader for one mapping


def type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Section:
    """Reads keys of one YAML mapping; `done()` rejects keys nobody asked for."""

    def __init__(self, data: Any, file: str, path: str = "", line: int | None = None):
        if not isinstance(data, dict):
            raise ConfigError(file, path, f"expected a mapping of keys, got {type_name(data)}", line)
        self.data = data
        self.file = file
        self.path = path
        self.lines: dict[str, int] = getattr(data, "lines", {})
        self.used: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def line(self, key: str) -> int | None:
        return self.lines.get(key)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(key), message, self.line(key))

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def get_int(
        self, key: str, *, default: int | None = None, required: bool = True, minimum: int = 1,
        maximum: int = MAX_DIM,
    ) -> int | None:  # fmt: skip
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if default is not None or not required:
                return default
            raise ConfigError(self.file, self.key(key), "is required (a positive integer)", None)
        value = self.data[key]
        return self.check_int(key, value, minimum, maximum)

    def check_int(self, key: str, value: Any, minimum: int, maximum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer >= {minimum}, got {type_name(value)}")
        if value < minimum:
            raise self.error(key, f"expected an integer >= {minimum}, got {value}")
        if value > maximum:
            raise self.error(key, f"{value:,} is larger than any real model allows (at most {maximum:,})")
        return value

    def req_int(self, key: str, minimum: int = 1, maximum: int = MAX_DIM) -> int:
        value = self.get_int(key, minimum=minimum, maximum=maximum)
        assert value is not None
        return value

    def get_str(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise ConfigError(self.file, self.key(key), "is required (a string)", None)
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {type_name(value)}")
        if len(value) > 500:
            raise self.error(key, "string is too long (more than 500 characters)")
        return value.strip()

    def choice(self, key: str, choices: tuple[str, ...], *, required: bool = True) -> str | None:
        value = self.get_str(key, required=required)
        if value is None:
            return None
        if value.lower() not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}{suggest(value, choices)}")
        return value.lower()

    def section(self, key: str, *, required: bool = True) -> Section | None:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise ConfigError(self.file, self.key(key), "is required (a mapping)", None)
            return None
        return Section(self.data[key], self.file, self.key(key), self.line(key))

    def get_bool(self, key: str, default: bool = False) -> bool:
        self.used.add(key)
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {type_name(value)}")
        return value

    def get_list(self, key: str) -> list[Any] | None:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {type_name(value)}")
        return value

    def expect(self, known: tuple[str, ...]) -> None:
        """Reject unknown keys before anything else, so a typo is reported as a typo (not as a missing key)."""
        for key in self.data:
            if key not in known:
                raise self.error(key, f"unknown key{suggest(key, known)}")

    def done(self, also_known: tuple[str, ...] = ()) -> None:
        known = tuple(self.used) + also_known
        for key in self.data:
            if key not in self.used:
                raise self.error(key, f"unknown key{suggest(key, known)}")


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib  # only on the error path: keeps start-up fast

    match = difflib.get_close_matches(str(word).lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    if not match:
        return ""
    original = next(c for c in choices if c.lower() == match[0])
    return f" (did you mean {original!r}?)"
