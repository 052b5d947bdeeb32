"""YAML model files -> ModelSpec, with strict validation, and the registry of built-in models.

Strict means: `yaml` safe loading only, a size cap before parsing, no anchors/aliases, no duplicate keys,
unknown keys rejected with a did-you-mean, integers that are really integers (not 61.0, not "61", not true),
and every error naming the file, the key path and what was expected (errors.ConfigError).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, MlaMemError, UsageError
from .spec import (
    COMPRESSED_KINDS,
    LAYER_KINDS,
    CompressedAttention,
    Indexer,
    KVAttention,
    LinearAttention,
    MLAttention,
    ModelSpec,
    Params,
)
from .units import parse_dtype, parse_params

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
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
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
            raise ConfigError(name, "", f"file is {size:,} bytes; model files are limited to {max_bytes:,}")
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
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, "", f"not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise ConfigError(name, "", "contains NUL bytes; not a text file")
    return text


def load_yaml(text: str, name: str) -> Any:
    """Parse YAML text with the strict loader; syntax errors become ConfigError with a line number."""
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


def _type_name(value: Any) -> str:
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
            raise ConfigError(file, path, f"expected a mapping of keys, got {_type_name(data)}", line)
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
            raise self.error(key, f"expected an integer >= {minimum}, got {_type_name(value)}")
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
            raise self.error(key, f"expected a non-empty string, got {_type_name(value)}")
        if len(value) > 500:
            raise self.error(key, "string is too long (more than 500 characters)")
        return value.strip()

    def choice(self, key: str, choices: tuple[str, ...], *, required: bool = True) -> str | None:
        value = self.get_str(key, required=required)
        if value is None:
            return None
        if value.lower() not in choices:
            raise self.error(
                key, f"expected one of {', '.join(choices)}, got {value!r}{_suggest(value, choices)}"
            )
        return value.lower()

    def section(self, key: str, *, required: bool = True) -> Section | None:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise ConfigError(self.file, self.key(key), "is required (a mapping)", None)
            return None
        return Section(self.data[key], self.file, self.key(key), self.line(key))

    def get_list(self, key: str) -> list[Any] | None:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_type_name(value)}")
        return value

    def expect(self, known: tuple[str, ...]) -> None:
        """Reject unknown keys before anything else, so a typo is reported as a typo (not as a missing key)."""
        for key in self.data:
            if key not in known:
                raise self.error(key, f"unknown key{_suggest(key, known)}")

    def done(self, also_known: tuple[str, ...] = ()) -> None:
        known = tuple(self.used) + also_known
        for key in self.data:
            if key not in self.used:
                raise self.error(key, f"unknown key{_suggest(key, known)}")


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    import difflib  # only on the error path: keeps start-up fast

    match = difflib.get_close_matches(str(word).lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
    if not match:
        return ""
    original = next(c for c in choices if c.lower() == match[0])
    return f" (did you mean {original!r}?)"


# ---------------------------------------------------------------------------------------------------------
# Model files

MODEL_KEYS = (
    "name",
    "source",
    "aliases",
    "params",
    "dtype",
    "max_context",
    "layers",
    "mtp_layers",
    "attention",
    "layer_pattern",
    "layer_types",
    "sliding_window",
    "linear_attention",
    "indexer",
    "notes",
    "compress_rates",
    "weights",
)
WEIGHT_KEYS = ("hidden_size", "vocab_size", "intermediate_size", "tie_embeddings", "moe", "dtype")
MOE_KEYS = ("experts", "experts_per_token", "shared_experts", "intermediate_size", "first_dense_layers")  # fmt: skip


def parse_model(data: Any, file: str) -> ModelSpec:
    """Validate a parsed YAML document and build the ModelSpec."""
    if data is None:
        raise ConfigError(
            file, "", "the file is empty; expected a model description (name, layers, attention)"
        )
    top = Section(data, file)
    top.expect(MODEL_KEYS)
    name = top.get_str("name", required=True)
    assert name is not None
    source = top.get_str("source")
    top.get_str("notes")
    aliases_raw = top.get_list("aliases") or []
    aliases = []
    for index, alias in enumerate(aliases_raw):
        if not isinstance(alias, str) or not alias.strip():
            raise top.error("aliases", f"item {index}: expected a name, got {_type_name(alias)}")
        aliases.append(alias.strip())
    params = Params()
    params_section = top.section("params", required=False)
    if params_section is not None:
        params_section.expect(("total", "active"))
        values = {}
        for key in ("total", "active"):
            raw = params_section.raw(key)
            if raw is not None:
                try:
                    values[key] = parse_params(raw, params_section.key(key))
                except UsageError as exc:
                    raise params_section.error(key, str(exc).split(": ", 1)[-1]) from None
        params_section.done()
        params = Params(**values)
    dtype = top.get_str("dtype", default="bf16")
    assert dtype is not None
    try:
        dtype = parse_dtype(dtype).name
    except UsageError as exc:
        raise top.error("dtype", str(exc)) from None
    max_context = top.get_int("max_context", required=False, maximum=MAX_CONTEXT_FIELD)
    layers = top.req_int("layers", maximum=MAX_LAYERS)
    mtp_layers = top.get_int("mtp_layers", default=0, minimum=0, maximum=1000)
    assert mtp_layers is not None

    attention_section = top.section("attention")
    assert attention_section is not None
    attention = _parse_attention(attention_section)

    compressed = isinstance(attention, CompressedAttention)
    layer_kinds = _parse_layer_kinds(top, layers, COMPRESSED_KINDS if compressed else LAYER_KINDS)
    sliding_window = top.get_int("sliding_window", required=False, maximum=MAX_CONTEXT_FIELD)
    compress_rates: tuple[tuple[str, int], ...] = ()
    if compressed:
        if sliding_window is None:
            raise ConfigError(
                file, "sliding_window", "is required for kind compressed (every layer keeps a window)"
            )
        rates = top.section("compress_rates", required=any(k in ("csa", "hca") for k in layer_kinds))
        if rates is not None:
            rates.expect(("csa", "hca"))
            pairs = []
            for kind in ("csa", "hca"):
                value = rates.get_int(kind, required=kind in layer_kinds, maximum=1 << 20)
                if value is not None:
                    pairs.append((kind, value))
            compress_rates = tuple(pairs)
    elif top.has("compress_rates"):
        top.used.add("compress_rates")
        raise top.error("compress_rates", "only applies to attention kind compressed (DeepSeek-V4)")
    if "sliding" in layer_kinds and sliding_window is None:
        raise ConfigError(file, "sliding_window", "is required: the model has sliding layers")
    if sliding_window is not None and "sliding" not in layer_kinds and not compressed:
        raise top.error(
            "sliding_window",
            "is set but no layer is 'sliding'; add a layer_pattern such as [sliding, full] or remove the window",
        )

    linear = None
    linear_section = top.section("linear_attention", required=False)
    if linear_section is not None:
        linear = _parse_linear(linear_section)
    if "linear" in layer_kinds and linear is None:
        raise ConfigError(file, "linear_attention", "is required: the model has linear layers")
    if linear is not None and "linear" not in layer_kinds:
        raise top.error("linear_attention", "is set but no layer is 'linear' in layer_pattern / layer_types")
    if all(kind == "linear" for kind in layer_kinds) and mtp_layers:
        raise top.error("mtp_layers", "a model with only linear layers has no attention for MTP layers")

    indexer = None
    indexer_section = top.section("indexer", required=False)
    if indexer_section is not None:
        indexer = _parse_indexer(indexer_section, layers, layer_kinds)
    weights = None
    weights_section = top.section("weights", required=False)
    if weights_section is not None:
        weights = _parse_weights(weights_section, layers)
    top.done()
    return ModelSpec(
        name=name,
        layers=layers,
        attention=attention,
        layer_kinds=layer_kinds,
        sliding_window=sliding_window,
        linear_attention=linear,
        indexer=indexer,
        mtp_layers=mtp_layers,
        dtype=dtype,
        max_context=max_context,
        source=source,
        aliases=tuple(aliases),
        params=params,
        path=file,
        compress_rates=compress_rates,
        weights=weights,
    )


ATTENTION_KEYS = (
    "kind",
    "heads",
    "kv_heads",
    "head_dim",
    "v_head_dim",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "q_lora_rank",
)
LINEAR_KEYS = (
    "kind",
    "heads",
    "head_dim",
    "key_heads",
    "value_heads",
    "key_head_dim",
    "value_head_dim",
    "conv_kernel",
)
INDEXER_KEYS = ("heads", "head_dim", "topk", "layers")


def _parse_attention(section: Section) -> KVAttention | MLAttention | CompressedAttention:
    section.expect(ATTENTION_KEYS)
    kind = section.choice("kind", ("mha", "gqa", "mqa", "mla", "compressed"))
    heads = section.req_int("heads")
    if kind == "compressed":
        for wrong in ("kv_heads", "kv_lora_rank", "qk_nope_head_dim", "v_head_dim", "q_lora_rank"):
            if section.has(wrong):
                section.used.add(wrong)
                raise section.error(
                    wrong,
                    "does not apply to kind compressed (one shared key-value vector of head_dim per entry)",
                )
        compressed = CompressedAttention(
            heads=heads,
            head_dim=section.req_int("head_dim"),
            qk_rope_head_dim=section.req_int("qk_rope_head_dim"),
        )
        section.done()
        return compressed
    if kind == "mla":
        for wrong in ("kv_heads", "head_dim"):
            if section.has(wrong):
                section.used.add(wrong)
                raise section.error(
                    wrong,
                    "does not apply to MLA: an MLA layer caches one latent of kv_lora_rank + qk_rope_head_dim, "
                    "not per-head keys (remove it)",
                )
        if not section.has("kv_lora_rank"):
            raise ConfigError(
                section.file,
                section.key("kv_lora_rank"),
                "is required for kind mla (the latent width, e.g. 512)",
            )
        attention = MLAttention(
            heads=heads,
            kv_lora_rank=section.req_int("kv_lora_rank"),
            qk_rope_head_dim=section.req_int("qk_rope_head_dim"),
            qk_nope_head_dim=section.req_int("qk_nope_head_dim"),
            v_head_dim=section.req_int("v_head_dim"),
            q_lora_rank=section.get_int("q_lora_rank", required=False),
        )
        section.done()
        return attention
    for wrong in ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "q_lora_rank"):
        if section.has(wrong):
            section.used.add(wrong)
            raise section.error(wrong, f"only applies to kind mla, not {kind}")
    if kind == "mha":
        kv_heads = section.get_int("kv_heads", default=heads)
        if kv_heads != heads:
            raise section.error("kv_heads", f"MHA caches every head: kv_heads must equal heads ({heads})")
    elif kind == "mqa":
        kv_heads = section.get_int("kv_heads", default=1)
        if kv_heads != 1:
            raise section.error("kv_heads", "MQA caches one head: kv_heads must be 1 (use kind gqa)")
    else:
        kv_heads = section.req_int("kv_heads")
    assert kv_heads is not None
    if kv_heads > heads:
        raise section.error("kv_heads", f"{kv_heads} KV heads is more than the {heads} query heads")
    if heads % kv_heads:
        raise section.error("kv_heads", f"query heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    head_dim = section.req_int("head_dim")
    v_head_dim = section.get_int("v_head_dim", default=head_dim)
    assert kind is not None and v_head_dim is not None
    section.done()
    return KVAttention(kind=kind, heads=heads, kv_heads=kv_heads, head_dim=head_dim, v_head_dim=v_head_dim)


def _parse_layer_kinds(top: Section, layers: int, allowed: tuple[str, ...] = LAYER_KINDS) -> tuple[str, ...]:
    pattern = top.get_list("layer_pattern")
    explicit = top.get_list("layer_types")
    if pattern is not None and explicit is not None:
        raise top.error("layer_types", "give either layer_pattern (repeated) or layer_types (one per layer)")
    items = pattern if pattern is not None else explicit
    key = "layer_pattern" if pattern is not None else "layer_types"
    if items is None:
        return (allowed[0],) * layers
    if not items:
        raise top.error(key, "must not be empty")
    kinds = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or item.lower() not in allowed:
            raise top.error(
                key,
                f"item {index}: expected one of {', '.join(allowed)}, got {_type_name(item)}"
                f"{_suggest(str(item), allowed) if isinstance(item, str) else ''}",
            )
        kinds.append(item.lower())
    if explicit is not None:
        if len(kinds) != layers:
            raise top.error("layer_types", f"has {len(kinds)} entries but the model has {layers} layers")
        return tuple(kinds)
    if len(kinds) > layers:
        raise top.error("layer_pattern", f"has {len(kinds)} entries, more than the {layers} layers")
    # The pattern repeats from layer 0 and is cut at `layers` (Gemma 3: 62 = 10 x 6 + 2).
    return tuple(kinds[i % len(kinds)] for i in range(layers))


def _parse_linear(section: Section) -> LinearAttention:
    section.expect(LINEAR_KEYS)
    kind = section.choice("kind", ("gated_deltanet", "kda"))
    if kind == "kda":
        heads = section.req_int("heads")
        head_dim = section.req_int("head_dim")
        kernel = section.req_int("conv_kernel", maximum=1024)
        section.done()
        return LinearAttention("kda", heads, heads, head_dim, head_dim, kernel)
    linear = LinearAttention(
        kind="gated_deltanet",
        key_heads=section.req_int("key_heads"),
        value_heads=section.req_int("value_heads"),
        key_head_dim=section.req_int("key_head_dim"),
        value_head_dim=section.req_int("value_head_dim"),
        conv_kernel=section.req_int("conv_kernel", maximum=1024),
    )
    section.done()
    return linear


def _parse_indexer(section: Section, layers: int, layer_kinds: tuple[str, ...]) -> Indexer:
    section.expect(INDEXER_KEYS)
    heads = section.req_int("heads")
    head_dim = section.req_int("head_dim")
    topk = section.req_int("topk", maximum=MAX_CONTEXT_FIELD)
    raw_layers = section.get_list("layers")
    indexer_layers = None
    if raw_layers is not None:
        seen = []
        for index, item in enumerate(raw_layers):
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < layers:
                raise section.error(
                    "layers", f"item {index}: expected a layer index 0..{layers - 1}, got {item!r}"
                )
            if layer_kinds[item] == "linear":
                raise section.error(
                    "layers", f"item {index}: layer {item} is a linear layer, it has no indexer"
                )
            seen.append(item)
        if len(set(seen)) != len(seen):
            raise section.error("layers", "lists a layer twice")
        indexer_layers = tuple(sorted(seen))
    section.done()
    return Indexer(heads=heads, head_dim=head_dim, topk=topk, layers=indexer_layers)


def _parse_weights(section: Section, layers: int) -> Any:
    from .spec import WEIGHT_DTYPES, Weights

    section.expect(WEIGHT_KEYS)
    tie = section.raw("tie_embeddings")
    if tie is not None and not isinstance(tie, bool):
        raise section.error("tie_embeddings", f"expected true or false, got {_type_name(tie)}")
    dtype = section.get_str("dtype", default="bf16")
    assert dtype is not None
    if dtype.lower() not in WEIGHT_DTYPES:
        raise section.error("dtype", f"expected one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")
    values: dict[str, Any] = {
        "hidden_size": section.req_int("hidden_size"),
        "vocab_size": section.req_int("vocab_size", maximum=1 << 31),
        "intermediate_size": section.get_int("intermediate_size", default=0, minimum=0),
        "tie_embeddings": bool(tie),
        "dtype": dtype.lower(),
    }
    moe = section.section("moe", required=False)
    if moe is not None:
        moe.expect(MOE_KEYS)
        values["experts"] = moe.req_int("experts", maximum=1 << 16)
        values["experts_per_token"] = moe.req_int("experts_per_token", maximum=values["experts"])
        values["shared_experts"] = moe.get_int("shared_experts", default=0, minimum=0, maximum=1024)
        values["expert_intermediate_size"] = moe.req_int("intermediate_size")
        values["first_dense_layers"] = moe.get_int("first_dense_layers", default=0, minimum=0, maximum=layers)
        moe.done()
    if values["intermediate_size"] == 0 and (moe is None or values.get("first_dense_layers")):
        raise section.error("intermediate_size", "is required: the model has dense MLP layers")
    section.done()
    return Weights(**values)


def load_model_file(path: str | os.PathLike[str]) -> ModelSpec:
    file = Path(path)
    name = str(path)
    text = read_text(file)
    if not text.strip():
        raise ConfigError(
            name, "", "the file is empty; expected a model description (name, layers, attention)"
        )
    data = load_yaml(text, name)
    if not isinstance(data, dict):
        raise ConfigError(
            name, "", f"expected a YAML mapping (name:, layers:, attention:), got {_type_name(data)}"
        )
    return parse_model(data, name)


# ---------------------------------------------------------------------------------------------------------
# Built-in models


def builtin_dir() -> Path:
    """configs/ inside an installed wheel (mla_mem/configs) or at the root of a checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "configs"
    if packaged.is_dir():
        return packaged
    return here.parent / "configs"


def _builtin_files() -> Iterator[Path]:
    directory = builtin_dir()
    if directory.is_dir():
        yield from sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("gpus"))


def builtin_names() -> list[str]:
    return [p.stem for p in _builtin_files()]


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def resolve_builtin(name: str) -> Path | None:
    """File of a built-in model by its name (the file stem, case-insensitive) or any of its aliases."""
    wanted = _normalise(name)
    files = list(_builtin_files())
    for path in files:
        if path.stem == wanted:
            return path
    for path in files:
        spec = load_model_file(path)
        names = {_normalise(spec.name), *(_normalise(a) for a in spec.aliases)}
        if wanted in names:
            return path
    return None


def builtin_models() -> list[ModelSpec]:
    return [load_model_file(path) for path in _builtin_files()]


def load_model(name_or_path: str | os.PathLike[str] | ModelSpec) -> ModelSpec:
    """A built-in name or alias ('deepseek-v3', 'DeepSeek-R1'), a YAML model file, a Hugging Face config.json
    (or the directory holding it) or a Mistral params.json."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = os.sep in text or text.endswith((".yaml", ".yml", ".json")) or path.exists()
    if looks_like_path:
        from .hf import is_config_path, load_config

        if is_config_path(text):
            return load_config(text)
        if path.is_dir():
            raise ConfigError(text, "", "is a directory without config.json or params.json")
        return load_model_file(path)
    found = resolve_builtin(text)
    if found is None:
        names = builtin_names()
        raise UsageError(
            f"unknown model {text!r}{_suggest(_normalise(text), names)}; "
            "run 'mla-mem models' for the built-in names, or give a path to a YAML file"
        )
    return load_model_file(found)


__all__ = [
    "MlaMemError",
    "builtin_models",
    "builtin_names",
    "load_model",
    "load_model_file",
    "parse_model",
]
