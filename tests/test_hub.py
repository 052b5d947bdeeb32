"""Hub ids (org/name[@revision]) offline and online, without the real Hub: a cache laid out as huggingface_hub lays it
out (refs, snapshots, blobs) under HF_HOME, and a local HTTP server on 127.0.0.1 serving the Hub's resolve endpoint
(HF_ENDPOINT), including a gated repository (401), a missing revision (404) and a server too slow to answer."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mla_mem.hub import is_hub_id

DATA = Path(__file__).parent / "data" / "hf"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def run(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environment.update(HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1", NO_COLOR="1", MLA_MEM_NO_CACHE="1", **env)
    return subprocess.run([sys.executable, "-m", "mla_mem", *args], capture_output=True, text=True, env=environment,
                          timeout=120, check=False)  # fmt: skip


def cache(home: Path, repo: str, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """The huggingface_hub cache layout: models--org--name/{refs/main, blobs/<etag>, snapshots/<commit>/<file>}."""
    root = home / "hub" / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (root / "blobs").mkdir()
    for index, (name, content) in enumerate(files.items()):
        blob = root / "blobs" / f"{index:040x}"
        blob.write_bytes(content)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    return snapshot


def test_hub_ids_are_told_from_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_hub_id("deepseek-ai/DeepSeek-V3") and is_hub_id("moonshotai/Kimi-K2-Instruct@v1.0")
    assert not is_hub_id("configs/model.yaml") and not is_hub_id("./a/b") and not is_hub_id("deepseek-v3")
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_hub_id("org/name")  # a directory here wins


def test_offline_from_the_local_cache(tmp_path):
    cache(tmp_path, "deepseek-ai/DeepSeek-V3", {"config.json": (DATA / "deepseek-v3.config.json").read_bytes()})
    result = run(["estimate", "deepseek-ai/DeepSeek-V3", "-c", "128K", "--format", "json"], tmp_path,
                 HF_HUB_OFFLINE="1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["model"] == "DeepSeek-V3" and row["bytes_per_token"] == 61 * 576 * 2 == 70272
    shown = run(["show", "deepseek-ai/DeepSeek-V3", "--format", "json"], tmp_path, HF_HUB_OFFLINE="1")
    source = json.loads(shown.stdout)["architecture"]["source"]
    assert source.startswith(f"deepseek-ai/DeepSeek-V3@{COMMIT} (Hugging Face cache: ") and str(tmp_path) in source


def test_offline_and_not_cached_is_one_line(tmp_path):
    result = run(["estimate", "deepseek-ai/DeepSeek-V3", "-c", "4K"], tmp_path, HF_HUB_OFFLINE="1")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "not in the local Hugging Face cache" in result.stderr


# ---------------------------------------------------------------------------------------------------------
# A Hub on 127.0.0.1


def safetensors_bytes() -> bytes:
    header = {"model.embed_tokens.weight": {"dtype": "BF16", "shape": [100, 64], "data_offsets": [0, 12_800]},
              "model.layers.0.mlp.experts.0.up_proj.weight": {"dtype": "F8_E4M3", "shape": [64, 64],
                                                               "data_offsets": [12_800, 16_896]}}  # fmt: skip
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(16_896)


class Hub(BaseHTTPRequestHandler):
    files = {"config.json": (DATA / "llama-3.1-8b.config.json").read_bytes(), "model.safetensors": safetensors_bytes()}

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _answer(self, body: bool) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._error(404, "RepoNotFound")
        repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        if repo == "org/slow":
            time.sleep(30)
        if repo == "org/gated":
            return self._error(401, "GatedRepo")
        if repo != "org/model":
            return self._error(404, "RepoNotFound")
        if revision not in ("main", COMMIT):
            return self._error(404, "RevisionNotFound")
        if name not in self.files:
            return self._error(404, "EntryNotFound")
        content = self.files[name]
        status = 200
        if self.headers.get("Range", "").startswith("bytes="):
            first, _, last = self.headers["Range"][6:].partition("-")
            content = content[int(first) : int(last) + 1 if last else None]
            status = 206
        self.send_response(status)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", f'"{len(self.files[name]):x}{name}"')
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if body:
            self.wfile.write(content)

    def _error(self, status: int, code: str) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(body=True)


@pytest.fixture(scope="module")
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def online(args: list[str], home: Path, endpoint: str, deadline: str = "4") -> subprocess.CompletedProcess[str]:
    return run(
        args,
        home,
        HF_ENDPOINT=endpoint,
        HF_HUB_ETAG_TIMEOUT="1",
        HF_HUB_DOWNLOAD_TIMEOUT="1",
        MLA_MEM_HUB_TIMEOUT=deadline,
    )


def test_online_download_then_cached(tmp_path, hub):
    first = online(["estimate", "org/model", "-c", "4K", "--format", "json"], tmp_path, hub)
    assert first.returncode == 0, first.stderr
    [row] = json.loads(first.stdout)
    assert row["model"] == "model" and row["bytes_per_token"] == 32 * 8 * 128 * 2 * 2  # Llama-3.1-8B, bf16
    assert (tmp_path / "hub" / "models--org--model" / "snapshots" / COMMIT / "config.json").is_file()
    again = run(["estimate", "org/model@main", "-c", "4K", "--format", "json"], tmp_path, HF_HUB_OFFLINE="1")
    assert again.returncode == 0 and json.loads(again.stdout) == [row]


def test_online_weights_from_header_range_reads(tmp_path, hub):
    result = online(["fit", "org/model", "--gpu", "H100", "--gpus", "1", "--format", "json"], tmp_path, hub)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["weight_bytes"] == 12_800 + 4_096  # the two tensors' bytes, as their headers state
    assert any("safetensors headers of org/model@" in note and "on the Hub" in note for note in out["notes"])


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("org/gated", "a gated repository; accept its terms on the Hub and set HF_TOKEN"),
        ("org/model@nope", "no such revision"),
        ("org/missing", "no such repository on the Hub"),
        ("org/slow", "cannot reach the Hub"),
    ],
)
def test_online_errors_are_one_line_exit_2(tmp_path, hub, model, message):
    started = time.monotonic()
    # the stalled server is cut at 1.5 s; the others answer at once and must not be cut
    result = online(["estimate", model, "-c", "4K"], tmp_path, hub, "1.5" if model == "org/slow" else "4")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 25  # the slow server sleeps 30 s: the command gave up before


def test_import_a_hub_id_records_where_it_came_from(tmp_path):
    cache(tmp_path, "deepseek-ai/DeepSeek-V3", {"config.json": (DATA / "deepseek-v3.config.json").read_bytes()})
    out = tmp_path / "v3.yaml"
    result = run(["import", "deepseek-ai/DeepSeek-V3", "-o", str(out)], tmp_path, HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert "name: DeepSeek-V3" in text and f'source: "deepseek-ai/DeepSeek-V3@{COMMIT}"' in text
    assert f'checkpoint: "hf:deepseek-ai/DeepSeek-V3@{COMMIT}"' in text
    same = run(["estimate", str(out), "-c", "4K", "--format", "json"], tmp_path, HF_HUB_OFFLINE="1")
    assert json.loads(same.stdout)[0]["bytes_per_token"] == 70272
