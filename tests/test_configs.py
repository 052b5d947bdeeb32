"""The YAML model format: built-ins resolve, mistakes are caught with the file and the key named."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import mla_mem
from mla_mem.configs import builtin_dir, load_model_file
from mla_mem.errors import ConfigError, UsageError

VALID = """\
name: Test
layers: 4
attention: {kind: gqa, heads: 8, kv_heads: 2, head_dim: 64}
"""


def test_builtins_resolve_case_insensitively_and_by_alias():
    assert mla_mem.load_model("DeepSeek-V3").name == "DeepSeek-V3"
    assert mla_mem.load_model("deepseek-r1").name == "DeepSeek-V3"
    assert mla_mem.load_model("DEEPSEEK-R1").name == "DeepSeek-V3"
    assert mla_mem.load_model("Kimi-K2-Instruct").name == "Kimi-K2"


def test_unknown_builtin_suggests():
    with pytest.raises(UsageError, match="did you mean 'deepseek-v3'"):
        mla_mem.load_model("deepseek-v33")


def test_every_builtin_has_a_source():
    for model in mla_mem.builtin_models():
        assert model.source and model.source.startswith("https://huggingface.co/")
        assert model.max_context


def test_layer_pattern_repeats_and_cuts():
    gemma = mla_mem.load_model("gemma-3-27b")
    assert gemma.count("full") == 10 and gemma.count("sliding") == 52
    assert gemma.layers_of("full") == tuple(range(5, 62, 6))
    qwen = mla_mem.load_model("qwen3-next-80b-a3b")
    assert qwen.layers_of("full") == tuple(range(3, 48, 4))
    kimi = mla_mem.load_model("kimi-linear-48b-a3b")
    assert kimi.layers_of("full") == (3, 7, 11, 15, 19, 23, 26)


def test_valid_file_loads(write):
    model = load_model_file(write(VALID))
    assert model.attention.kv_heads == 2 and model.layer_kinds == ("full",) * 4


def _mutated(**changes: str) -> str:
    text = VALID
    for old, new in changes.items():
        text = text.replace(old, new)
    return text


BAD = [
    ("unknown key", VALID + "colour: red\n", "colour", "unknown key"),
    (
        "typo with suggestion",
        VALID.replace("layers: 4", "layers: 4\nmtp_layer: 1"),
        "mtp_layer",
        "did you mean 'mtp_layers'",
    ),
    ("typo inside attention", VALID.replace("head_dim", "head_dimm"), "attention.head_dimm", "did you mean"),
    ("negative dim", VALID.replace("head_dim: 64", "head_dim: -64"), "attention.head_dim", ">= 1"),
    ("zero heads", VALID.replace("heads: 8", "heads: 0"), "attention.heads", ">= 1"),
    ("float layer count", VALID.replace("layers: 4", "layers: 4.0"), "layers", "the number 4.0"),
    ("string number", VALID.replace("layers: 4", "layers: '4'"), "layers", "the string '4'"),
    ("boolean number", VALID.replace("layers: 4", "layers: true"), "layers", "a boolean"),
    ("missing attention", "name: X\nlayers: 4\n", "attention", "is required"),
    ("missing layers", "name: X\nattention: {kind: mqa, heads: 8, head_dim: 64}\n", "layers", "is required"),
    ("missing name", "layers: 4\nattention: {kind: mqa, heads: 8, head_dim: 64}\n", "name", "is required"),
    (
        "MLA without kv_lora_rank",
        "name: X\nlayers: 2\nattention: {kind: mla, heads: 8, qk_rope_head_dim: 64, qk_nope_head_dim: 128, v_head_dim: 128}\n",
        "attention.kv_lora_rank",
        "is required",
    ),
    (
        "MLA with kv_heads",
        "name: X\nlayers: 2\nattention: {kind: mla, heads: 8, kv_heads: 8, kv_lora_rank: 512, qk_rope_head_dim: 64, "
        "qk_nope_head_dim: 128, v_head_dim: 128}\n",
        "attention.kv_heads",
        "does not apply to MLA",
    ),
    (
        "window without sliding layers",
        VALID + "sliding_window: 128\n",
        "sliding_window",
        "no layer is 'sliding'",
    ),
    (
        "sliding layers without window",
        VALID + "layer_pattern: [sliding, full]\n",
        "sliding_window",
        "is required",
    ),
    (
        "unknown attention kind",
        VALID.replace("kind: gqa", "kind: gqaa"),
        "attention.kind",
        "did you mean 'gqa'",
    ),
    (
        "kv heads not dividing heads",
        VALID.replace("kv_heads: 2", "kv_heads: 3"),
        "attention.kv_heads",
        "multiple",
    ),
    ("layer_types wrong length", VALID + "layer_types: [full, full]\n", "layer_types", "has 2 entries"),
    (
        "unknown layer kind",
        VALID + "layer_pattern: [full, slidng]\n",
        "layer_pattern",
        "did you mean 'sliding'",
    ),
    (
        "huge dims",
        VALID.replace("heads: 8", "heads: 1000000000000"),
        "attention.heads",
        "larger than any real",
    ),
    (
        "linear layers without linear_attention",
        VALID + "layer_pattern: [linear, full]\n",
        "linear_attention",
        "is required",
    ),
    ("duplicate key", VALID + "layers: 5\n", "", "duplicate key 'layers'"),
    ("bad yaml syntax", "name: [unclosed\nlayers: 4\n", "", "invalid YAML"),
    ("not a mapping", "- just\n- a list\n", "", "expected a YAML mapping"),
    ("empty file", "", "", "the file is empty"),
    ("whitespace only", "   \n\n", "", "the file is empty"),
    ("python tag", "name: !!python/object:os.system ls\nlayers: 4\n", "", "invalid YAML"),
    (
        "alias",
        "name: &n X\naliases: [*n]\nlayers: 4\nattention: {kind: mqa, heads: 8, head_dim: 64}\n",
        "",
        "anchors and aliases",
    ),
    ("bad dtype", VALID + "dtype: bf17\n", "dtype", "unknown cache dtype"),
    ("bad params", VALID + "params: {total: lots}\n", "params.total", "parameter count"),
    (
        "indexer layer out of range",
        VALID + "indexer: {heads: 4, head_dim: 64, topk: 8, layers: [9]}\n",
        "indexer.layers",
        "layer index",
    ),
]


@pytest.mark.parametrize("label,text,key,message", BAD, ids=[b[0] for b in BAD])
def test_invalid_configs_name_file_and_key(write, label, text, key, message):
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_model_file(path)
    error = info.value
    assert str(path) in str(error)
    assert error.key == key
    assert message in str(error)


def test_not_yaml_binary(write, tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_model_file(path)


def test_huge_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("# " + "x" * (2 << 20))
    with pytest.raises(ConfigError, match="limited to"):
        load_model_file(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_model_file(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_model_file(tmp_path)


def test_line_numbers_in_errors(write):
    path = write(VALID.replace("layers: 4", "layers: -4"))
    with pytest.raises(ConfigError) as info:
        load_model_file(path)
    assert info.value.line == 2 and f"{path}:2: layers:" in str(info.value)


@pytest.mark.slow
def test_builtins_from_an_installed_wheel(tmp_path):
    """Build the wheel, install it into a fresh venv, and load a built-in from outside the checkout."""
    root = Path(__file__).resolve().parent.parent
    dist = tmp_path / "dist"
    subprocess.run(["uv", "build", "--wheel", "--out-dir", str(dist), str(root)], check=True, capture_output=True)
    wheel = next(dist.glob("*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    subprocess.run(
        ["uv", "pip", "install", "--python", str(python), "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    # deps come from this interpreter's site-packages; the package itself from the wheel
    code = (
        "import sys; sys.path.append(sys.argv[1]); import mla_mem; m = mla_mem.load_model('deepseek-r1'); "
        "assert 'site-packages' in mla_mem.__file__, mla_mem.__file__; "
        "print(m.name, mla_mem.estimate(m, 131072).total_bytes)"
    )
    site = next(p for p in sys.path if p.endswith("site-packages"))
    result = subprocess.run([str(python), "-c", code, site], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DeepSeek-V3", "9210691584"]
    assert (builtin_dir() / "deepseek-v3.yaml").exists()


def test_the_disk_cache_of_built_ins_equals_fresh_parses(tmp_path, monkeypatch):
    import mla_mem.configs as configs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MLA_MEM_NO_CACHE", raising=False)
    monkeypatch.setattr(configs, "_DISK", {})
    monkeypatch.setattr(configs, "_LOADED", {})
    monkeypatch.setattr(configs, "_FILE_CACHE", {})
    first = configs.builtin_models()  # parses and writes the cache
    assert list(tmp_path.glob("mla-mem/builtins-*.marshal"))
    monkeypatch.setattr(configs, "_DISK", {})  # a new process: read back from disk
    monkeypatch.setattr(configs, "_LOADED", {})
    monkeypatch.setattr(configs, "_FILE_CACHE", {})
    cached = configs.builtin_models()
    fresh = [
        configs.parse_model(configs.load_yaml(configs.read_text(p), str(p)), str(p)) for p in configs._builtin_files()
    ]
    assert cached == first == fresh
    # a changed file is parsed again
    path = next(configs._builtin_files())
    entry = configs._DISK["builtins"][path.name]
    configs._DISK["builtins"][path.name] = (entry[0] - 1, entry[1], entry[2])
    configs._LOADED.clear()  # as a new process would see it
    assert configs.load_builtin(path) == fresh[0]
    assert configs._DISK["builtins"][path.name][0] == path.stat().st_mtime_ns


def test_the_disk_cache_rebuilds_only_the_models_asked_for_and_survives_damage(tmp_path, monkeypatch):
    import marshal

    import mla_mem.configs as configs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MLA_MEM_NO_CACHE", raising=False)
    for name in ("_DISK", "_LOADED", "_FILE_CACHE", "_RESOLVED"):
        monkeypatch.setattr(configs, name, {})
    configs.builtin_models()  # writes every built-in
    files = list(tmp_path.glob("mla-mem/builtins-*.marshal"))
    assert len(files) == 1
    for name in ("_DISK", "_LOADED", "_FILE_CACHE", "_RESOLVED"):
        setattr(configs, name, {})  # a new process
    glm = configs.load_builtin(configs.resolve_builtin("glm-5"))
    assert [key[1] for key in configs._LOADED] == ["glm-5.yaml"]  # one model unpickled, not the group
    assert glm == configs.load_model_file(configs.builtin_dir() / "glm-5.yaml")
    # an entry whose bytes are not a pickle, and a file that is not marshal data, are parsed again, never an error
    table = marshal.loads(files[0].read_bytes())
    table["glm-5.yaml"] = (*table["glm-5.yaml"][:2], b"\x80\x05garbage")
    files[0].write_bytes(marshal.dumps(table))
    for name in ("_DISK", "_LOADED", "_FILE_CACHE"):
        setattr(configs, name, {})
    assert configs.load_builtin(configs.resolve_builtin("glm-5")) == glm
    files[0].write_bytes(b"\x00not marshal")
    for name in ("_DISK", "_LOADED", "_FILE_CACHE"):
        setattr(configs, name, {})
    assert configs.load_builtin(configs.resolve_builtin("glm-5")) == glm


def test_a_byte_order_mark_is_read_as_nothing(tmp_path):
    # editors on Windows save UTF-8 with a BOM; the file is the same model (and a BOM inside a value is kept)
    import mla_mem.configs as configs

    text = (configs.builtin_dir() / "llama-3.1-8b.yaml").read_text()
    plain, marked = tmp_path / "plain.yaml", tmp_path / "marked.yaml"
    plain.write_text(text)
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    from dataclasses import replace

    assert replace(configs.load_model_file(marked), path=str(plain)) == configs.load_model_file(plain)
