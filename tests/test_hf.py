"""Reading Hugging Face config.json and Mistral params.json (copies in tests/data/hf, no network)."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import pytest

import mla_mem
from mla_mem.cli import main
from mla_mem.configs import load_model_file
from mla_mem.errors import ConfigError
from mla_mem.hf import import_config, to_yaml

DATA = Path(__file__).parent / "data" / "hf"

# config file -> the shipped YAML it must reproduce
ROUND_TRIP = {
    "deepseek-v2.config.ASSEMBLED.json": "deepseek-v2",
    "deepseek-v3.config.json": "deepseek-v3",
    "deepseek-v3.2.config.json": "deepseek-v3.2",
    "gemma-3-27b-it.config.RECONSTRUCTED.json": "gemma-3-27b",
    "glm-5.config.json": "glm-5",
    "glm-5-fp8.config.json": "glm-5",
    "gpt-oss-120b.config.json": "gpt-oss-120b",
    "kimi-k2-instruct.config.json": "kimi-k2",
    "kimi-linear-48b-a3b-instruct.config.RECONSTRUCTED.json": "kimi-linear-48b-a3b",
    "llama-3.1-8b.config.json": "llama-3.1-8b",
    "llama-3.1-70b.config.json": "llama-3.1-70b",
    "llama-3.1-405b.config.json": "llama-3.1-405b",
    "mistral-7b-v0.1.config.json": "mistral-7b-v0.1",
    "mistral-7b-v0.3.config.json": "mistral-7b-v0.3",
    "mistral-large-3-675b-instruct-2512.params.json": "mistral-large-3",
    "qwen3-235b-a22b.config.json": "qwen3-235b-a22b",
    "qwen3-32b.config.json": "qwen3-32b",
    # DeepSeek's own inference configs carry no MTP layers: compared with MTP off
    "deepseek-v3.inference-config_671B.json": "deepseek-v3",
    "deepseek-v3.2-exp.inference-config_671B_v3.2.json": "deepseek-v3.2",
}


def load(path: Path) -> mla_mem.ModelSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mla_mem.load_model(str(path))


def breakdown(model, **options):
    result = mla_mem.estimate(model, 200_000, **options)
    return (
        result.bytes_per_token,
        result.fixed_bytes,
        result.total_bytes,
        [(c.name, c.layers, c.bytes_per_token, c.fixed_bytes) for c in result.components],
    )


@pytest.mark.parametrize("file,builtin", sorted(ROUND_TRIP.items()))
def test_import_matches_the_shipped_yaml(file, builtin, tmp_path):
    imported = load(DATA / file)
    shipped = mla_mem.load_model(builtin)
    assert imported.layer_kinds == shipped.layer_kinds
    assert imported.attention == shipped.attention
    assert imported.linear_attention == shipped.linear_attention
    assert imported.sliding_window == shipped.sliding_window
    assert (imported.indexer is None) == (shipped.indexer is None)
    if imported.weights is not None or "inference-config" not in file:
        expected = shipped.weights
        if file.startswith("glm-5-fp8"):
            expected = replace(expected, dtype="fp8")  # the FP8 release of GLM-5
        assert imported.weights == expected
    for runtime in ("ideal", "vllm", "transformers@5.17", "transformers@5.24"):
        assert breakdown(imported, runtime=runtime) == breakdown(shipped, runtime=runtime)
    if "inference-config" not in file:
        assert imported.mtp_layers == shipped.mtp_layers
        assert breakdown(imported, mtp=True) == breakdown(shipped, mtp=True)
    # the imported YAML loads back to the same spec
    model, notes, source = import_config(str(DATA / file))
    path = tmp_path / "imported.yaml"
    path.write_text(to_yaml(model, notes, source))
    reloaded = load_model_file(path)
    for field in (
        "layers",
        "attention",
        "layer_kinds",
        "sliding_window",
        "linear_attention",
        "indexer",
        "mtp_layers",
        "dtype",
        "max_context",
    ):
        assert getattr(reloaded, field) == getattr(imported, field), field


def test_mla_trap_deepseek_v3_with_128_kv_heads():
    data = json.loads((DATA / "deepseek-v3.config.json").read_text())
    assert data["num_key_value_heads"] == 128
    assert mla_mem.estimate(load(DATA / "deepseek-v3.config.json"), 1000).bytes_per_token == 70_272


def test_glm5_head_dim_is_not_the_head_size():
    model = load(DATA / "glm-5.config.json")
    assert model.attention.qk_nope_head_dim + model.attention.qk_rope_head_dim == 256
    mha = mla_mem.variant(model, "mha")
    assert mha.attention.head_dim == 256  # not the config's head_dim 64


def test_kimi_linear_kda_layers_are_linear_state():
    model = load(DATA / "kimi-linear-48b-a3b-instruct.config.RECONSTRUCTED.json")
    assert model.count("linear") == 20 and model.linear_attention.key_head_dim == 128  # not head_dim 72
    parts = {c.name for c in mla_mem.estimate(model, 1000).components}
    assert parts == {"mla_latent", "linear_state"}


@pytest.mark.filterwarnings("default")
def test_directory_and_warnings(tmp_path, capsys):
    folder = tmp_path / "DeepSeek-V3"
    folder.mkdir()
    (folder / "config.json").write_text((DATA / "deepseek-v3.config.json").read_text())
    assert main(["estimate", str(folder), "-c", "128K", "--format", "json"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)[0]
    assert row["model"] == "DeepSeek-V3" and row["total_bytes"] == 9210691584
    assert "num_key_value_heads (128) ignored" in captured.err


def test_kv_cache_scheme_sets_the_cache_dtype(tmp_path):
    data = json.loads((DATA / "llama-3.1-8b.config.json").read_text())
    data["quantization_config"] = {
        "quant_method": "compressed-tensors",
        "kv_cache_scheme": {"num_bits": 8, "type": "float"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    assert load(path).cache_dtype == "fp8_e4m3" and load(path).dtype == "bf16"  # the scheme is the attention cache's
    assert mla_mem.estimate(load(path), 1).kv_dtype == "fp8_e4m3"
    weights_only = json.loads((DATA / "deepseek-v3.config.json").read_text())  # fp8 weights, bf16 cache
    assert "quantization_config" in weights_only and load(DATA / "deepseek-v3.config.json").dtype == "bf16"


def test_generic_path_for_unknown_model_type(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "brand_new",
                "num_hidden_layers": 4,
                "num_attention_heads": 8,
                "num_key_value_heads": 2,
                "hidden_size": 512,
                "torch_dtype": "bfloat16",
            }
        )
    )
    with pytest.warns(UserWarning, match="unknown model_type 'brand_new'"):
        model = mla_mem.load_model(str(path))
    assert model.attention.kv_heads == 2 and model.attention.head_dim == 64
    mla = tmp_path / "mla" / "config.json"
    mla.parent.mkdir()
    mla.write_text(
        json.dumps(
            {
                "model_type": "x",
                "num_hidden_layers": 2,
                "num_attention_heads": 8,
                "num_key_value_heads": 8,
                "kv_lora_rank": 256,
                "qk_rope_head_dim": 32,
                "qk_nope_head_dim": 64,
                "v_head_dim": 64,
            }
        )
    )
    with pytest.warns(UserWarning, match="read as MLA"):
        assert mla_mem.estimate(mla_mem.load_model(str(mla)), 10).bytes_per_token == 2 * 288 * 2


def _write(tmp_path, content, name="config.json"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


LLAMA = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_size": 256,
}

HOSTILE = [
    ("invalid json", "{not json", "invalid JSON"),
    ("not an object", "[1, 2, 3]", "expected a JSON object"),
    ("missing layers", {k: v for k, v in LLAMA.items() if k != "num_hidden_layers"}, "num_hidden_layers"),
    ("zero heads", {**LLAMA, "num_attention_heads": 0}, "num_attention_heads"),
    ("layer_types wrong length", {**LLAMA, "layer_types": ["full_attention"]}, "has 1 entries"),
    ("unknown layer type", {**LLAMA, "layer_types": ["full_attention", "mamba_magic"]}, "unknown layer type"),
    ("string number", {**LLAMA, "num_hidden_layers": "2"}, "expected an integer"),
    ("NaN", '{"num_hidden_layers": NaN}', "num_hidden_layers: expected an integer, got nan"),
    ("huge layers", {**LLAMA, "num_hidden_layers": 10**15}, "larger than any real model"),
    ("bad hidden", {**{k: v for k, v in LLAMA.items()}, "hidden_size": 257}, "not a multiple"),
    ("deepseek v4 incomplete", {"model_type": "deepseek_v4", "num_hidden_layers": 2}, "num_attention_heads"),
    (
        "deepseek v4.1 incomplete",
        {"model_type": "deepseek_v41", "text_config": {"model_type": "deepseek_v41_text"}},
        "num_hidden_layers",
    ),
    (
        "deepseek v4.1 ratio 3",
        {
            "model_type": "deepseek_v41_text",
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "head_dim": 64,
            "qk_rope_head_dim": 16,
            "sliding_window": 8,
            "compress_ratios": [0, 3],
            "kv_source_layer_ids": [1],
        },
        "compress_ratios",
    ),
    (
        "deepseek v4.1 layer without a source",
        {
            "model_type": "deepseek_v41_text",
            "num_hidden_layers": 3,
            "num_attention_heads": 8,
            "head_dim": 64,
            "qk_rope_head_dim": 16,
            "sliding_window": 8,
            "compress_ratios": [2, 2, 2],
            "kv_source_layer_ids": [1],
        },
        "layer 0 (ratio 2) has no kv source",
    ),
    ("not utf-8", b"\xff\xfe{", "not UTF-8"),
]


@pytest.mark.parametrize("label,content,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_configs_exit_2(tmp_path, capsys, label, content, message):
    path = _write(tmp_path, content)
    assert main(["estimate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err


def test_huge_config_is_refused_quickly(tmp_path, capsys):
    path = tmp_path / "config.json"
    with path.open("wb") as handle:
        handle.write(b'{"pad": "')
        handle.truncate(100 * 1024 * 1024)
    assert main(["estimate", str(path)]) == 2
    assert "limited to" in capsys.readouterr().err


def test_import_command_writes_atomically_and_refuses_overwrite(tmp_path, capsys):
    out = tmp_path / "glm5.yaml"
    assert main(["import", str(DATA / "glm-5.config.json"), "-o", str(out), "--name", "GLM-5"]) == 0
    text = out.read_text()
    assert text.startswith("# Imported by mla-mem") and "head_dim 64 is the rope dim" in text
    assert mla_mem.estimate(load_model_file(out), 1000).bytes_per_token == 78 * (1152 + 256)
    out.write_text("keep me")
    assert main(["import", str(DATA / "glm-5.config.json"), "-o", str(out)]) == 2
    assert out.read_text() == "keep me" and "--force" in capsys.readouterr().err
    assert main(["import", str(DATA / "glm-5.config.json"), "-o", str(out), "--force"]) == 0
    assert "kv_lora_rank: 512" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["glm5.yaml"]  # no temporary file left


def test_import_to_stdout_and_errors(tmp_path, capsys):
    assert main(["import", str(DATA / "qwen3-32b.config.json")]) == 0
    assert "kv_heads: 8" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "nope.json")]) == 2
    assert main(["import", str(DATA / "glm-5.config.json"), "-o", str(tmp_path / "missing" / "x.yaml")]) == 2
    assert main(["import", str(tmp_path)]) == 2  # a directory without config.json


# Families without a config copy in the reference folder: configs constructed from MODELS.md dims, using the
# key names of the transformers configuration classes (defaults left out on purpose where the class has one).
CONSTRUCTED = {
    "qwen3-next-80b-a3b": {
        "model_type": "qwen3_next",
        "num_hidden_layers": 48,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "head_dim": 256,
        "hidden_size": 2048,
        "max_position_embeddings": 262144,
        "torch_dtype": "bfloat16",
    },
    "minimax-m2": {
        "model_type": "minimax_m2",
        "num_hidden_layers": 62,
        "num_attention_heads": 48,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "hidden_size": 3072,
        "torch_dtype": "bfloat16",
    },
    "glm-4.6": {
        "model_type": "glm4_moe",
        "num_hidden_layers": 92,
        "num_attention_heads": 96,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "hidden_size": 5120,
        "num_nextn_predict_layers": 1,
        "torch_dtype": "bfloat16",
    },
    "gpt-oss-20b": {
        "model_type": "gpt_oss",
        "num_hidden_layers": 24,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "sliding_window": 128,
        "hidden_size": 2880,
    },
    "mistral-small-3.1-24b": {
        "model_type": "mistral3",
        "text_config": {
            "model_type": "mistral",
            "num_hidden_layers": 40,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 5120,
            "sliding_window": None,
        },
        "torch_dtype": "bfloat16",
    },
}


@pytest.mark.parametrize("builtin,config", sorted(CONSTRUCTED.items()))
def test_constructed_family_configs(tmp_path, builtin, config):
    path = _write(tmp_path, config)
    imported = load(path)
    shipped = mla_mem.load_model(builtin)
    assert imported.layer_kinds == shipped.layer_kinds
    assert breakdown(imported) == breakdown(shipped)


def _glm(tmp_path, **keys):
    data = json.loads((DATA / "glm-5.config.json").read_text())
    data.update(keys)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return mla_mem.load_model(str(path))


def test_shared_indexers_by_frequency_pattern_or_list(tmp_path):
    # transformers configuration_glm_moe_dsa.py: layer i owns indexer keys when max(i - offset + 1, 0) % freq == 0,
    # offset 2 by default: layers 0, 1, 5, 9, ..., 77, i.e. 21 of 78
    by_freq = _glm(tmp_path, index_topk_freq=4)
    owners = [0, 1] + list(range(5, 78, 4))
    assert len(owners) == 21 and by_freq.indexer_layers == tuple(owners)
    # vLLM fp8: 656 B fp8_ds_mla records on every layer, 132 B indexer keys on the 21 owners (the public GLM-5.3
    # deployment's 53,940 B per token)
    fp8 = mla_mem.estimate(by_freq, 131072, runtime="vllm", kv_dtype="fp8")
    assert fp8.bytes_per_token == 78 * 656 + 21 * 132 == 53_940
    assert mla_mem.estimate(by_freq, 131072).bytes_per_token == 78 * 1152 + 21 * 256
    words = ["full" if i in owners else "shared" for i in range(78)]
    assert _glm(tmp_path, indexer_types=words).indexer_layers == tuple(owners)
    letters = "".join("F" if i in owners else "S" for i in range(78))
    assert _glm(tmp_path, index_topk_pattern=letters).indexer_layers == tuple(owners)
    with pytest.raises(ConfigError, match="index_topk_pattern"):
        _glm(tmp_path, index_topk_pattern="FX" * 39)


CONFIGS = sorted(p.name for p in DATA.iterdir() if p.suffix == ".json")


@pytest.mark.parametrize("name", CONFIGS)
def test_imported_yaml_answers_as_its_config_does(name, tmp_path, capsys):
    """`import CONFIG -o x.yaml` keeps everything `fit` needs: every command gives the same answer for both."""
    out = tmp_path / "x.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["import", str(DATA / name), "-o", str(out)])
    capsys.readouterr()
    if code == 2:  # a config mla-mem refuses (tested elsewhere) has nothing to import
        pytest.skip("refused")
    for command in (["fit", "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "32K", "--runtime", "vllm"],
                    ["estimate", "-c", "4K,128K", "--runtime", "sglang"], ["show", "--runtime", "llama.cpp"]):  # fmt: skip
        answers = []
        for model in (str(DATA / name), str(out)):
            code = main([command[0], model, *command[1:], "--format", "json"])
            captured = capsys.readouterr()
            answers.append((code, captured.out))
        assert answers[0] == answers[1], command[0]
