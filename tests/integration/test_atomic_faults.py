"""charaid.atomic under faults: killed runs' leftovers, full disks, reproducible npz bytes."""

import errno
import subprocess
import sys
import time

import numpy as np
import pytest

from charaid.atomic import FAULT_ENV, atomic_dir, npz_bytes, write_json, write_npz
from tests.helpers import ROOT


def test_leftovers_of_a_killed_run_are_cleared_on_the_next(tmp_path):
    # a writer SIGKILLed inside atomic_dir leaves its hidden temporary folder behind
    code = (
        "import os, time\n"
        "from charaid.atomic import atomic_dir\n"
        f"with atomic_dir({str(tmp_path / 'frames')!r}) as tmp:\n"
        "    (tmp / 'a.jpg').write_bytes(b'x')\n"
        "    print('ready', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.kill()
    proc.wait()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".frames.")]
    assert not (tmp_path / "frames").exists()
    with atomic_dir(tmp_path / "frames") as tmp:
        (tmp / "b.jpg").write_bytes(b"y")
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_disk_full_fault_keeps_the_old_output_and_names_it(tmp_path, monkeypatch):
    target = tmp_path / "eval.json"
    write_json(target, {"old": True})
    monkeypatch.setenv(FAULT_ENV, "eval.json")
    with pytest.raises(OSError) as info:
        write_json(target, {"new": True})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert '"old"' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_write_errors_name_the_output_not_its_temporary_twin(tmp_path):
    with pytest.raises(OSError) as info, atomic_dir(tmp_path / "split") as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "train.csv"))
    assert info.value.filename == str(tmp_path / "split" / "train.csv")


def test_npz_bytes_do_not_depend_on_time_or_key_order(tmp_path):
    arrays = {"b": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array(["x", "é"])}
    first = npz_bytes(arrays)
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    assert npz_bytes(dict(reversed(arrays.items()))) == first
    write_npz(tmp_path / "m.npz", arrays)
    with np.load(tmp_path / "m.npz") as data:
        assert sorted(data.files) == ["a", "b"]
        np.testing.assert_array_equal(data["b"], arrays["b"])
        np.testing.assert_array_equal(data["a"], arrays["a"])
