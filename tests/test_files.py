"""Output safety: one atomic-write helper; failures leave the old file and no temporary file behind."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from mla_mem import files
from mla_mem.errors import UsageError
from mla_mem.files import write_atomic

PACKAGE = Path(files.__file__).parent


def test_writes_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "out.txt"
    write_atomic(target, "one")
    assert target.read_text() == "one"
    with pytest.raises(UsageError, match="--force"):
        write_atomic(target, "two")
    assert target.read_text() == "one"
    write_atomic(target, b"two", force=True)
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failure_midway_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.xml"
    target.write_text("old")

    def renderer():
        raise RuntimeError("renderer failed midway")

    with pytest.raises(RuntimeError):
        write_atomic(target, renderer, force=True)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.xml"]


def test_failed_rename_and_unwritable_directory(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_text("old")

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(UsageError, match="No space left"):
        write_atomic(target, "new", force=True)
    monkeypatch.undo()
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(UsageError, match="Permission denied"):
        write_atomic(tmp_path / "b.png", "x")
    assert not (tmp_path / "b.png").exists()


def test_directory_targets_and_missing_parents(tmp_path):
    with pytest.raises(UsageError, match="is a directory"):
        write_atomic(tmp_path, "x", force=True)
    with pytest.raises(UsageError, match="does not exist"):
        write_atomic(tmp_path / "no" / "x.txt", "x")


def test_every_write_goes_through_the_helper():
    """No module but files.py opens files for writing."""
    pattern = re.compile(r"""open\([^)]*["'][wax]b?["']|write_text\(|write_bytes\(|\.savefig\(""")
    offenders = []
    for path in PACKAGE.glob("*.py"):
        if path.name == "files.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and "BytesIO" not in line and "buffer" not in line:
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


def test_dash_is_standard_output(capsys):
    from mla_mem.files import write_atomic

    write_atomic("-", "hello\n")
    assert capsys.readouterr().out == "hello\n"


def test_special_files_are_written_through_and_symlinks_followed(tmp_path):
    import threading

    from mla_mem.files import write_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, "through the pipe\n")  # no --force needed, and never replaced
    reader.join(timeout=10)
    assert got == [b"through the pipe\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    real = tmp_path / "real.yaml"
    real.write_text("old\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    with pytest.raises(UsageError, match="--force"):
        write_atomic(link, "new\n")
    write_atomic(link, "new\n", force=True)
    assert link.is_symlink() and real.read_text() == "new\n"
    with pytest.raises(UsageError, match="No space left"):
        write_atomic("/dev/full", "x", force=True)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # still the device
