"""plateau/cli.py: atomic outputs and the one-line error contract."""

import os
import subprocess
import sys

import pytest

from plateau.cli import UsageError, atomic_path, check_writable_dir, run, write_text_atomic


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "out.txt"
    write_text_atomic(p, "old")
    write_text_atomic(p, "new")
    assert p.read_text() == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "out.txt"
    write_text_atomic(p, "old")
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("crash mid-write")
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_killed_writer_keeps_old_file(tmp_path):
    p = tmp_path / "out.txt"
    write_text_atomic(p, "old")
    code = (
        "import os, signal\n"
        "from plateau.cli import atomic_path\n"
        f"with atomic_path({str(p)!r}) as tmp:\n"
        "    open(tmp, 'w').write('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode == -9
    assert p.read_text() == "old"


def test_usage_error_is_one_line_exit_2(capsys):
    def main(argv):
        raise UsageError("no training lines in out/log.txt")

    assert run(main, [], prog="diagnose.py") == 2
    assert capsys.readouterr().err == "diagnose.py: error: no training lines in out/log.txt\n"


def test_unwritable_dir_is_usage_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(UsageError, match="cannot create output directory"):
        check_writable_dir(f / "sub")
