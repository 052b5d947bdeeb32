"""Optional: cold start of the peers that install from the package index, against the same floor as cold_start.py
and against the mla-mem command that does the same job.

    uv run python benchmarks/peers.py [--runs 9] [--venv DIR]

The peers (versions as compared in docs and the shared PEERS notes: llm-mem-planner 0.2.2, hf-mem 0.5.6,
vllm-wizard 0.2.0, llm-analysis 0.2.2) are installed once into their own environment (DIR, by default
`mla-mem-peers` in the temporary directory; kept for the next run), which is byte-compiled like ours. Every run is
offline: the models are the DeepSeek-V3 config.json of tests/data/hf, copied into a folder as `config.json`. Each
line alternates its two commands (A B A B ...) and prints min / median / max of both and of their ratio.
Not part of the test suite: it needs the network once, to install the peers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _timing import compile_environment, pairs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("llm-mem-planner==0.2.2", "hf-mem==0.5.6", "vllm-wizard==0.2.0", "llm-analysis==0.2.2")


def peer_environment(folder: Path) -> Path:
    """The peers' environment (created and byte-compiled on first use); returns its bin directory."""
    binaries = folder / ("Scripts" if os.name == "nt" else "bin")
    marker = folder / "installed.txt"
    if not marker.is_file() or marker.read_text() != "\n".join(PEERS):
        uv = shutil.which("uv")
        if uv:
            subprocess.run([uv, "venv", "-q", "-p", sys.executable, str(folder)], check=True)
            subprocess.run([uv, "pip", "install", "-q", "--python", str(binaries / "python"), *PEERS], check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
            subprocess.run([str(binaries / "python"), "-m", "pip", "install", "-q", *PEERS], check=True)
        subprocess.run([str(binaries / "python"), "-m", "compileall", "-q", "-j", "0", str(folder)], check=False,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        marker.write_text("\n".join(PEERS))
    return binaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "mla-mem-peers")
    args = parser.parse_args()
    compile_environment()
    peers = peer_environment(args.venv)
    ours = str(Path(sys.executable).parent / "mla-mem")
    floor = [sys.executable, "-c", "import typer, yaml"]
    with tempfile.TemporaryDirectory() as work:
        model = Path(work) / "deepseek-v3"
        model.mkdir()
        config = model / "config.json"
        shutil.copyfile(ROOT / "tests" / "data" / "hf" / "deepseek-v3.config.json", config)
        planner = [str(peers / "llm-mem-planner"), "--config", str(config), "--seq-len", "131072"]
        wizard = [str(peers / "vllm-wizard"), "plan", "--model", str(model), "--max-model-len", "131072",
                  "--gpu", "H200", "--vram-gb", "141", "--gpus", "8", "--tensor-parallel-size", "8"]  # fmt: skip
        hf_mem = [str(peers / "hf-mem"), "--help"]
        analysis = [str(peers / "python"), "-m", "llm_analysis.analysis", "--help"]
        print(f"{args.runs} A/B pairs per line, min / median / max")
        print("the peers against the floor (python -c 'import typer, yaml' in mla-mem's environment):")
        for label, command in (("llm-mem-planner --config (128K)", planner), ("vllm-wizard plan (8 x H200)", wizard),
                               ("hf-mem --help", hf_mem), ("llm-analysis --help", analysis)):  # fmt: skip
            print(pairs(command, floor, args.runs, cwd=work).line(label))
        print("mla-mem against the peer doing the same job (ratio < 1: mla-mem is faster):")
        estimate = [ours, "estimate", str(config), "-c", "128K"]
        fit = [ours, "fit", str(config), "--gpu", "H200", "--gpus", "8", "--tp", "8", "-c", "128K"]
        for label, tool, peer in (("estimate config.json / planner", estimate, planner),
                                  ("fit config.json / vllm-wizard", fit, wizard),
                                  ("--help / hf-mem --help", [ours, "--help"], hf_mem)):  # fmt: skip
            print(pairs(tool, peer, args.runs, cwd=work).line(label))


if __name__ == "__main__":
    main()
