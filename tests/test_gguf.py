"""GGUF files as models: small files written here with the gguf package (llama.cpp's own writer), read back for
dims, cache bytes (equal to --runtime llama.cpp on the same dims) and weight bytes (the tensor table)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

import mla_mem
from mla_mem.cli import main

Q8_0_ROW = 256 // 32 * 34  # bytes of 256 q8_0 values: 8 blocks of 32 values in 34 bytes
Q4_K_ROW = 256 // 256 * 144  # bytes of 256 q4_K values: one super-block of 256 in 144 bytes


def write(path: Path, arch: str, fields: dict, tensors: dict[str, tuple[GGMLQuantizationType, int]]) -> int:
    """A GGUF file; tensors are (type, rows) of 256 values each. Returns the bytes of the tensor data."""
    writer = GGUFWriter(str(path), arch)
    writer.add_name(f"Tiny {arch}")
    for key, value in fields.items():
        if isinstance(value, list):
            writer.add_array(f"{arch}.{key}", value)
        else:
            writer.add_uint32(f"{arch}.{key}", value)
    total = 0
    for name, (kind, rows) in tensors.items():
        row = {GGMLQuantizationType.Q8_0: Q8_0_ROW, GGMLQuantizationType.Q4_K: Q4_K_ROW}[kind]
        writer.add_tensor(name, np.zeros((rows, row), np.uint8), raw_dtype=kind)
        total += rows * row
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return total


DEEPSEEK = {"block_count": 4, "context_length": 163840, "embedding_length": 256, "attention.head_count": 16,
            "attention.head_count_kv": 1, "attention.kv_lora_rank": 512, "attention.key_length": 576,
            "attention.value_length": 512, "attention.key_length_mla": 192, "attention.value_length_mla": 128,
            "rope.dimension_count": 64, "nextn_predict_layers": 1}  # fmt: skip
LLAMA = {"block_count": 2, "context_length": 131072, "embedding_length": 512, "attention.head_count": 8,
         "attention.head_count_kv": 2, "attention.key_length": 64, "attention.value_length": 64}  # fmt: skip
TENSORS = {
    "token_embd.weight": (GGMLQuantizationType.Q8_0, 8),
    "blk.0.attn_q.weight": (GGMLQuantizationType.Q8_0, 4),
    "blk.0.ffn_down_exps.weight": (GGMLQuantizationType.Q4_K, 16),
    "blk.1.ffn_down.weight": (GGMLQuantizationType.Q4_K, 4),
    "output.weight": (GGMLQuantizationType.Q8_0, 8),
}


def test_deepseek2_mla_dims_cache_and_weights(tmp_path, capsys):
    path = tmp_path / "tiny-deepseek.gguf"
    data = write(path, "deepseek2", DEEPSEEK, TENSORS)
    assert data == 20 * Q8_0_ROW + 20 * Q4_K_ROW == 8_320
    spec = mla_mem.load_model(str(path))
    assert (spec.name, spec.layers, spec.mtp_layers, spec.max_context) == ("Tiny deepseek2", 3, 1, 163840)
    yaml = tmp_path / "same.yaml"
    yaml.write_text("name: same\nlayers: 3\nattention: {kind: mla, heads: 16, kv_lora_rank: 512, qk_rope_head_dim: 64, "
                    "qk_nope_head_dim: 128, v_head_dim: 128}\n")  # fmt: skip
    for runtime in ("llama.cpp", "ideal", "vllm"):
        ours = mla_mem.estimate(str(path), 4096, runtime=runtime)
        assert ours.total_bytes == mla_mem.estimate(str(yaml), 4096, runtime=runtime).total_bytes
    # llama.cpp's current builds keep MLA's latent (512 + rope 64) as K only, per layer, in f16 (its default type)
    assert mla_mem.estimate(str(path), 4096, runtime="llama.cpp").bytes_per_token == 3 * 576 * 2
    assert (
        main(["fit", str(path), "--gpu", "RTX-4090", "--gpus", "1", "--runtime", "llama.cpp", "--format", "json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["weight_bytes"] == data  # every tensor of the table (no MTP tensor among them)
    assert out["params_total"] == 40 * 256 and out["params_source"] == "checkpoint"
    assert any("GGUF tensor table" in note for note in out["notes"])


def test_llama_gqa_and_per_layer_head_counts(tmp_path):
    path = tmp_path / "tiny-llama.gguf"
    write(path, "llama", LLAMA, {"token_embd.weight": (GGMLQuantizationType.Q8_0, 2)})
    # 2 layers x 2 KV heads x 64 x (K + V) x 2 B (f16)
    assert mla_mem.estimate(str(path), 1024, runtime="llama.cpp").bytes_per_token == 2 * 2 * 64 * 2 * 2
    uneven = tmp_path / "uneven.gguf"
    write(uneven, "llama", dict(LLAMA, **{"attention.head_count_kv": [2, 4]}), {})
    with pytest.raises(mla_mem.ConfigError, match="differs by layer"):
        mla_mem.load_model(str(uneven))


@pytest.mark.parametrize(
    ("arch", "fields", "message"),
    [
        ("deepseek2", {k: v for k, v in DEEPSEEK.items() if not k.endswith("_mla")}, "converted before"),
        ("llama", dict(LLAMA, **{"attention.sliding_window": 4096}), "attention.sliding_window"),
        (
            "rwkv7",
            {"block_count": 2, "context_length": 1, "embedding_length": 64, "attention.head_count": 1},
            "not read from GGUF yet",
        ),
    ],
)
def test_what_is_not_read_is_refused(tmp_path, capsys, arch, fields, message):
    path = tmp_path / "model.gguf"
    write(path, arch, fields, {})
    assert main(["estimate", str(path), "-c", "4K"]) == 2
    err = capsys.readouterr().err
    assert err.count("mla-mem: error") == 1 and message in err


def test_a_file_that_is_not_gguf(tmp_path, capsys):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    assert main(["estimate", str(path), "-c", "4K"]) == 2
    assert "not a readable GGUF file" in capsys.readouterr().err
