"""Exact weight sizes read from a checkpoint itself: safetensors headers (a file, a directory, a sharded index, or a
Hub repository through header-only range reads) and GGUF tensor tables. The dimension-based count of params.py
stays for configs alone; `fit` prefers these figures and says where each came from.

safetensors format (the format's own specification): 8 bytes little-endian u64 N, N bytes of JSON header
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data; offsets are relative to
the end of the header.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import field
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .records import record

MAX_HEADER = 100_000_000  # bytes; the safetensors reference implementation refuses headers above 100 MB

# Bits per stored element of every safetensors dtype (safetensors/src/tensor.rs Dtype)
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64, "F64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "C64": 64,
}  # fmt: skip

# Tensors that are not parameters but quantisation metadata (scales, zero points, group indices)
AUXILIARY = re.compile(r"(scale(_inv|_2)?|qzeros|g_idx|zero_point|amax|global_scale)$|\.scales?$|_scales?$")
VISION = ("vision", "visual", "image_newline", "mm_projector", "multi_modal_projector", "vit.", "patch_embed")
EMBEDDINGS = ("embed_tokens", "lm_head", "wte.", "word_embeddings", "tok_embeddings", "token_embd", "output.weight")
ROUTED = re.compile(r"\.experts\.|_exps\.|block_sparse_moe\.experts|\.experts$")
ATTENTION = ("self_attn", ".attn.", "attention", "attn_")
LAYER = re.compile(r"(?:^|\.)(?:layers|h|blk|blocks)\.(\d+)\.")


@record
class Tensor:
    """One tensor of a checkpoint's header: name, dtype, shape and stored bytes."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@record
class CheckpointWeights:
    """Weight bytes as stored, by dtype and by component; `params` counts values (packed 4-bit values counted one by
    one), scales and zero points aside."""

    source: str  # what was read: "safetensors headers of DIR (3 files)", "GGUF tensor table of FILE", ...
    total: int
    expert: int  # routed experts of the main layers (sharded by expert parallelism)
    attention: int
    mtp: int  # MTP / next-token-prediction layers (counted only with --mtp)
    mtp_expert: int
    by_dtype: dict[str, int] = field(default_factory=dict)
    by_component: dict[str, int] = field(default_factory=dict)
    params: int = 0  # values of every weight (MTP layers included)
    mtp_params: int = 0
    expert_params: int = 0  # routed experts of the main layers
    notes: tuple[str, ...] = ()

    def dense(self, mtp: bool) -> int:
        """Everything but routed experts, with or without the MTP layers."""
        main = self.total - self.expert - self.mtp
        return main + (self.mtp - self.mtp_expert if mtp else 0)

    def routed(self, mtp: bool) -> int:
        return self.expert + (self.mtp_expert if mtp else 0)

    @property
    def dtype_text(self) -> str:
        """'bf16 62% + f8_e4m3 38%', the checkpoint's mix of formats by bytes."""
        parts = sorted(self.by_dtype.items(), key=lambda item: -item[1])
        return " + ".join(f"{name.lower()} {100 * size / self.total:.0f}%" for name, size in parts if self.total)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "total_bytes": self.total, "expert_bytes": self.expert,
                "attention_bytes": self.attention, "mtp_bytes": self.mtp, "by_dtype": dict(self.by_dtype),
                "by_component": dict(self.by_component), "params": self.params, "notes": list(self.notes)}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# safetensors


def _tensor_bytes(dtype: str, shape: tuple[int, ...]) -> int | None:
    bits = DTYPE_BITS.get(dtype.upper())
    if bits is None:
        return None
    count = 1
    for dim in shape:
        count *= dim
    return -(-count * bits // 8)


def read_header(path: Path) -> list[Tensor]:
    """The tensors of one .safetensors file, validated against the file's size (exit 2 on anything malformed)."""
    name = str(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ConfigError(name, "", "not a safetensors file: shorter than its 8-byte header length")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER:
                raise ConfigError(name, "", f"safetensors header of {length:,} bytes; at most {MAX_HEADER:,} are read")
            if 8 + length > size:
                raise ConfigError(name, "", f"safetensors header of {length:,} bytes runs past the end of the file "
                                            f"({size:,} bytes)")  # fmt: skip
            raw = handle.read(length)
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(name, "", "safetensors header is not JSON") from None
    if not isinstance(header, dict):
        raise ConfigError(name, "", "safetensors header is not a JSON object")
    data = size - 8 - length
    tensors = []
    for key, info in header.items():
        if key == "__metadata__":
            continue
        tensors.append(_tensor(name, key, info, data))
    return tensors


def _tensor(file: str, key: str, info: Any, data: int) -> Tensor:
    if not isinstance(info, dict) or not isinstance(info.get("dtype"), str):
        raise ConfigError(file, key, "expected {dtype, shape, data_offsets} in the safetensors header")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ConfigError(file, key, f"shape: expected a list of sizes, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
        raise ConfigError(file, key, f"data_offsets: expected [begin, end], got {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end or end > data:
        raise ConfigError(file, key, f"data_offsets [{begin:,}, {end:,}] point past the data ({data:,} bytes)")
    expected = _tensor_bytes(info["dtype"], tuple(shape))
    if expected is not None and expected != end - begin:
        raise ConfigError(file, key, f"{info['dtype']} {shape} is {expected:,} bytes, but its offsets span "
                                     f"{end - begin:,}")  # fmt: skip
    return Tensor(key, info["dtype"].upper(), tuple(shape), end - begin)


def safetensors_files(path: Path) -> list[Path]:
    """The shards of a checkpoint: the file itself, the files its index names, or every .safetensors in a directory."""
    if path.is_file():
        if path.name.endswith(".index.json"):
            return _indexed(path)
        return [path]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        return _indexed(index)
    return sorted(path.glob("*.safetensors"))


def _indexed(index: Path) -> list[Path]:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(str(index), "", f"cannot read the safetensors index: {exc}") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise ConfigError(str(index), "weight_map", "expected {tensor name: shard file}")
    files = []
    for shard in dict.fromkeys(weight_map.values()):
        if Path(shard).name != shard:
            raise ConfigError(str(index), "weight_map", f"shard {shard!r} is not a file name in the index's directory")
        target = index.parent / shard
        if not target.is_file():
            raise ConfigError(str(index), "weight_map", f"names {shard}, which is not there")
        files.append(target)
    return files


def has_safetensors(path: Path) -> bool:
    directory = path if path.is_dir() else path.parent
    return (directory / "model.safetensors.index.json").is_file() or any(directory.glob("*.safetensors"))


def from_safetensors(path: str | os.PathLike[str], layers: int | None = None) -> CheckpointWeights:
    """The weights of a local checkpoint (directory, file or index)."""
    root = Path(path)
    files = safetensors_files(root)
    if not files:
        raise UsageError(f"{root}: no .safetensors files (nor model.safetensors.index.json)")
    tensors: list[Tensor] = []
    for file in files:
        tensors += read_header(file)
    where = root if root.is_dir() else root.parent
    return summarise(tensors, f"safetensors headers of {where} ({len(files)} file{'s' if len(files) > 1 else ''})",
                     layers)  # fmt: skip


def summarise(
    tensors: list[Tensor], source: str, layers: int | None, pack: dict[str, int] | None = None
) -> CheckpointWeights:
    """Sum tensors by dtype and component. `layers`: the main layer count, so that layers beyond it are MTP layers.
    `pack`: values per stored element by dtype for packed quantised weights (U8 holding two FP4 values: 2; I32
    holding eight int4 values: 8)."""
    pack = pack if pack is not None else _packing(tensors)
    by_dtype: dict[str, int] = {}
    by_component: dict[str, int] = {}
    total = expert = attention = mtp = mtp_expert = params = mtp_params = expert_params = 0
    for tensor in tensors:
        component = _component(tensor.name, layers)
        total += tensor.nbytes
        by_dtype[tensor.dtype] = by_dtype.get(tensor.dtype, 0) + tensor.nbytes
        by_component[component] = by_component.get(component, 0) + tensor.nbytes
        is_mtp = component.startswith("mtp")
        routed = component.endswith("experts")
        if is_mtp:
            mtp += tensor.nbytes
            mtp_expert += tensor.nbytes if routed else 0
        elif routed:
            expert += tensor.nbytes
        if component == "attention":
            attention += tensor.nbytes
        if not AUXILIARY.search(tensor.name):
            count = 1
            for dim in tensor.shape:
                count *= dim
            values = count * pack.get(tensor.dtype, 1)
            params += values
            mtp_params += values if is_mtp else 0
            expert_params += values if routed and not is_mtp else 0
    notes = []
    if any(v > 1 for v in pack.values()):
        notes.append("packed weights counted by value: " + ", ".join(f"{d} x {v}" for d, v in pack.items() if v > 1))
    return CheckpointWeights(source=source, total=total, expert=expert, attention=attention, mtp=mtp,
                             mtp_expert=mtp_expert, by_dtype=by_dtype, by_component=by_component, params=params,
                             mtp_params=mtp_params, expert_params=expert_params, notes=tuple(notes))  # fmt: skip


def _packing(tensors: list[Tensor]) -> dict[str, int]:
    """Packed 4-bit weights: U8 weights that carry scales (NVFP4 / MXFP4: two values per byte) and I32 weights named
    qweight or weight_packed (GPTQ, AWQ, compressed-tensors: eight int4 values per int32)."""
    names = {t.name for t in tensors}
    pack = {}
    for tensor in tensors:
        stem = tensor.name.rsplit(".", 1)[0]
        if (
            tensor.dtype == "U8"
            and not AUXILIARY.search(tensor.name)
            and any(f"{stem}.{s}" in names for s in ("weight_scale", "scales", "weight_scale_inv"))
            or tensor.dtype == "U8"
            and tensor.name.endswith("_blocks")
        ):
            pack["U8"] = 2
        if tensor.dtype == "I32" and tensor.name.endswith(("qweight", "weight_packed")):
            pack["I32"] = 8
    return pack


def _component(name: str, layers: int | None) -> str:
    lowered = name.lower()
    if any(key in lowered for key in VISION):
        return "vision"
    layer = LAYER.search(lowered)
    is_mtp = (
        ".mtp." in f".{lowered}"
        or lowered.startswith("mtp")
        or (layers is not None and layer is not None and int(layer.group(1)) >= layers)
    )
    routed = ROUTED.search(lowered) is not None and "shared" not in lowered
    if is_mtp:
        return "mtp experts" if routed else "mtp"
    if routed:
        return "experts"
    if any(key in lowered for key in EMBEDDINGS):
        return "embeddings"
    if any(key in lowered for key in ATTENTION):
        return "attention"
    return "other"


# ---------------------------------------------------------------------------------------------------------
# A model's checkpoint


_READ: dict[tuple[str, int | None], CheckpointWeights] = {}


def locate(checkpoint: str, model_path: str | None) -> str:
    """A relative checkpoint path of a YAML file: as given when it exists here, else beside the YAML file."""
    if checkpoint.startswith("hf:") or Path(checkpoint).is_absolute() or Path(checkpoint).exists():
        return checkpoint
    if model_path:
        beside = Path(model_path).parent / checkpoint
        if beside.exists():
            return str(beside)
    return checkpoint


def measured(checkpoint: str, layers: int | None, model_path: str | None = None) -> CheckpointWeights:
    """The weights of a model's checkpoint (spec.checkpoint): safetensors headers of a directory or file, a GGUF
    tensor table, or a Hub repository's headers ("hf:org/name@commit"); read once per process."""
    where = locate(checkpoint, model_path)
    key = (where, layers)
    if key not in _READ:
        if where.startswith("hf:"):
            from .hub import hub_weights

            _READ[key] = hub_weights(where, layers)
        elif where.lower().endswith(".gguf"):
            from .ggufread import gguf_weights

            _READ[key] = gguf_weights(where, layers)
        else:
            if not Path(where).exists():
                raise UsageError(f"checkpoint {checkpoint}: no such file or directory")
            _READ[key] = from_safetensors(where, layers)
    return _READ[key]


@record
class WeightsReport:
    """`show --weights`: the checkpoint's stored bytes beside the count from the dims (MTP layers included in
    both), and how far apart they are."""

    checkpoint: CheckpointWeights | None
    dims_bytes: int | None
    dims_dtype: str
    dims_params: int | None
    difference: float | None  # percent of the checkpoint's bytes
    notes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint.as_dict() if self.checkpoint else None,
                "dims": {"total_bytes": self.dims_bytes, "dtype": self.dims_dtype, "params": self.dims_params}
                if self.dims_bytes is not None else None,
                "difference_percent": self.difference, "notes": list(self.notes)}  # fmt: skip


def weights_report(spec: Any) -> WeightsReport:  # noqa: ANN401 - a ModelSpec (spec.py imports nothing of ours)
    from .params import count_params, weight_bytes

    read = measured(spec.checkpoint, spec.layers, spec.path) if spec.checkpoint else None
    dims = params = None
    dtype = ""
    notes = []
    if spec.weights is not None:
        try:
            counted = weight_bytes(spec, None, mtp=True)
            dims, dtype = counted.total, counted.dtype
            params = count_params(spec).total_with_mtp
        except UsageError as exc:
            notes.append(f"dims: {exc}")
    difference = None
    if read is not None and dims is not None and read.total:
        difference = (dims - read.total) * 100 / read.total
        if abs(difference) > 1:
            notes.append(f"the dims count {dims:,} B, the checkpoint stores {read.total:,} B ({difference:+.2f}%): "
                         "the checkpoint's format differs from the `weights` section, or tensors the dims do not "
                         "describe (a vision tower, extra heads)")  # fmt: skip
    if read is None:
        notes.append("no checkpoint: give a directory with safetensors files, a .gguf file or a Hub id to read "
                     "the stored sizes")  # fmt: skip
    return WeightsReport(read, dims, dtype, params, difference, tuple(notes))


__all__ = [
    "CheckpointWeights",
    "Tensor",
    "WeightsReport",
    "from_safetensors",
    "has_safetensors",
    "measured",
    "read_header",
    "summarise",
    "weights_report",
]
