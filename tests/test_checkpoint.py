"""Exact weights from a checkpoint's safetensors headers: small real files written here in the format's own layout
(8-byte little-endian header length, JSON header, data), mixed dtypes, a sharded index, malformed headers."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from mla_mem.checkpoint import DTYPE_BITS, from_safetensors, read_header
from mla_mem.cli import main
from mla_mem.errors import ConfigError

DATA = Path(__file__).parent / "data" / "hf"


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]], header_pad: int = 0) -> int:
    """A .safetensors file with zero-filled data; returns the size of its data section."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        size = -(-count * DTYPE_BITS[dtype] // 8)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8 + header_pad)  # the format pads the header with spaces to 8 bytes
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return offset


# A mix as real checkpoints store it: bf16 embeddings and norms, FP8 attention with block scales (DeepSeek-V3's
# weight_scale_inv, one fp32 per 128 x 128 block), NVFP4-packed experts (two values per U8, one F8_E4M3 scale per 16
# values), a GPTQ int4 projection (eight values per I32, fp16 scales and packed zero points), an MTP layer.
MIXED = {
    "model.embed_tokens.weight": ("BF16", [1000, 64]),  # 128,000 B
    "model.layers.0.self_attn.q_proj.weight": ("F8_E4M3", [256, 64]),  # 16,384 B
    "model.layers.0.self_attn.q_proj.weight_scale_inv": ("F32", [2, 1]),  # 8 B
    "model.layers.0.mlp.experts.0.down_proj.weight": ("U8", [64, 128]),  # 8,192 B = 16,384 FP4 values
    "model.layers.0.mlp.experts.0.down_proj.weight_scale": ("F8_E4M3", [64, 16]),  # 1,024 B
    "model.layers.0.mlp.shared_experts.up_proj.qweight": ("I32", [8, 256]),  # 8,192 B = 16,384 int4 values
    "model.layers.0.mlp.shared_experts.up_proj.scales": ("F16", [1, 256]),  # 512 B
    "model.layers.0.mlp.shared_experts.up_proj.qzeros": ("I32", [1, 32]),  # 128 B
    "model.layers.1.input_layernorm.weight": ("BF16", [64]),  # 128 B: layer 1 is the MTP layer (1 main layer)
    "lm_head.weight": ("BF16", [1000, 64]),  # 128,000 B
}
SIZES = {"BF16": 128_000 + 128 + 128_000, "F8_E4M3": 16_384 + 1_024, "F32": 8, "U8": 8_192, "I32": 8_192 + 128,
         "F16": 512}  # fmt: skip


def test_header_sums_by_dtype_and_component(tmp_path):
    data = write_safetensors(tmp_path / "model.safetensors", MIXED)
    read = from_safetensors(tmp_path, layers=1)
    assert read.total == data == sum(SIZES.values()) == 290_568
    assert read.by_dtype == SIZES
    assert read.expert == 8_192 + 1_024  # routed expert and its scales; the shared expert is dense
    assert read.attention == 16_384 + 8
    assert read.mtp == 128 and read.mtp_expert == 0
    assert read.by_component["embeddings"] == 256_000
    # values: 64,000 + 16,384 + 16,384 (FP4, two per byte) + 16,384 (int4, eight per I32) + 64 + 64,000; scales,
    # zero points aside
    assert read.params == 64_000 + 16_384 + 16_384 + 16_384 + 64 + 64_000
    assert read.mtp_params == 64 and read.expert_params == 16_384


def test_sharded_index(tmp_path):
    first = dict(list(MIXED.items())[:4])
    second = dict(list(MIXED.items())[4:])
    size = write_safetensors(tmp_path / "model-00001-of-00002.safetensors", first)
    size += write_safetensors(tmp_path / "model-00002-of-00002.safetensors", second)
    weight_map = {name: "model-00001-of-00002.safetensors" for name in first}
    weight_map |= {name: "model-00002-of-00002.safetensors" for name in second}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    read = from_safetensors(tmp_path, layers=1)
    assert read.total == size == 290_568 and "(2 files)" in read.source


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(struct.pack("<Q", 100_000_001) + b"{}"), "at most 100,000,000"),
        (lambda p: p.write_bytes(struct.pack("<Q", 64) + b"{}"), "runs past the end of the file"),
        (lambda p: p.write_bytes(struct.pack("<Q", 8) + b"not json"), "not JSON"),
        (lambda p: p.write_bytes(b"abc"), "shorter than its 8-byte header"),
    ],
)
def test_malformed_headers_are_refused(tmp_path, damage, message):
    path = tmp_path / "model.safetensors"
    damage(path)
    with pytest.raises(ConfigError, match=message):
        read_header(path)


def test_offsets_past_the_data_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    write_safetensors(path, {"w": ("BF16", [4])})
    raw = path.read_bytes()
    path.write_bytes(raw[:-4])  # the data section is cut short
    with pytest.raises(ConfigError, match="point past the data"):
        read_header(path)


def llama_checkpoint(tmp_path: Path) -> tuple[Path, int]:
    """A directory holding a real Llama-3.1-8B config.json beside a small safetensors file."""
    folder = tmp_path / "llama"
    folder.mkdir()
    shutil.copy(DATA / "llama-3.1-8b.config.json", folder / "config.json")
    size = write_safetensors(folder / "model.safetensors", MIXED)
    return folder, size


def test_fit_uses_the_headers_and_says_so(tmp_path, capsys):
    folder, size = llama_checkpoint(tmp_path)
    assert main(["fit", str(folder), "--gpu", "H100", "--gpus", "2", "--tp", "2", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the checkpoint's own bytes (Llama-3.1-8B has 32 layers: layer 1 is a main layer here): dense (everything but
    # the routed expert) over tp 2, the routed expert over tp 2 too (no expert parallelism)
    dense, expert = size - 9_216, 9_216
    assert out["weight_bytes"] == -(-dense // 2) + -(-expert // 2) == 145_284
    assert out["params_source"] == "checkpoint" and out["params_total"] == 177_216
    assert any("safetensors headers of" in note and f"{size:,} B" in note for note in out["notes"])
    # --weight-dtype asks for the dims instead
    assert main(["fit", str(folder), "--gpu", "H100", "--gpus", "2", "--tp", "2", "--weight-dtype", "bf16",
                 "--format", "json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["weight_bytes"] > 7_000_000_000


def test_import_records_the_checkpoint_and_fit_reads_it_again(tmp_path, capsys):
    folder, _ = llama_checkpoint(tmp_path)
    out = tmp_path / "llama.yaml"
    assert main(["import", str(folder), "-o", str(out)]) == 0
    assert f"checkpoint: {folder}" in out.read_text()
    answers = []
    for model in (str(folder), str(out)):
        assert main(["fit", model, "--gpu", "H100", "--gpus", "1", "--format", "json"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0]["weight_bytes"] == answers[1]["weight_bytes"] < 300_000


def test_a_malformed_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    folder, _ = llama_checkpoint(tmp_path)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 8) + b"not json")
    assert main(["fit", str(folder), "--gpu", "H100", "--gpus", "1"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("mla-mem: note:")]
    assert len(errors) == 1 and errors[0].endswith("model.safetensors: safetensors header is not JSON")


def test_show_weights_compares_the_dims_with_the_headers(tmp_path, capsys):
    folder, size = llama_checkpoint(tmp_path)
    assert main(["show", str(folder), "--weights", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)["weights"]
    assert report["checkpoint"]["total_bytes"] == size
    # Llama-3.1-8B's dims in bf16: 8,030,261,248 parameters x 2 B
    assert report["dims"] == {"total_bytes": 8_030_261_248 * 2, "dtype": "bf16", "params": 8_030_261_248}
    assert report["difference_percent"] == pytest.approx((8_030_261_248 * 2 - size) * 100 / size)
    assert any("the dims count" in note for note in report["notes"])  # beyond 1%: reported
    assert main(["show", str(folder), "--weights"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint, as stored" in text and f"{size:,}" in text and "counted from the dims (bf16)" in text
