"""End to end on real art: a small subset of holoen-faces as the user's labeled folders,
through label -> split -> train -> evaluate (bench/labeled_folder.py, the script that measured the
README's figures), then the label helper on crops whose labels are hidden from it."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, SHARED, need_shared

HOLOEN = SHARED / "holoen-faces"


def run_script(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_small_holoen_subset_end_to_end(tmp_path):
    need_shared(HOLOEN)
    out = tmp_path / "labeled_folder.json"
    run_script(
        "bench/labeled_folder.py", "--name", "tiny", "--classes", "4", "--per-class", "40",
        "--test-per-class", "10", "--out", str(out), "--work", str(tmp_path / "work"),
        "-S", "train.model=bn_cnn", "-S", "train.input_size=32", "-S", "train.augment=true",
        "-S", "train.epochs=8", "-S", "train.lr=0.003", "-S", "train.batch_size=10",
    )  # fmt: skip
    record = json.loads(out.read_text())["tiny"]
    assert record["classes"] == 4 and record["test_faces"] == 40 and record["train_faces"] == 120
    assert record["test_accuracy"] >= 0.6  # chance is 0.25 (measured: 0.8)
    assert (tmp_path / "work" / "models" / "gallery.npz").is_file()

    # the label helper on the same crops, labels hidden; the trained model pre-sorts them
    helper = tmp_path / "helper.json"
    for extra in ([], ["--model", str(tmp_path / "work" / "models"), "--presort"]):
        run_script(
            "bench/label_helper.py", "--name", "x", "--clusters", "8", "--out", str(helper),
            "--only-test", str(tmp_path / "work" / "split" / "test.csv"), "--folder",
            str(tmp_path / "work" / "labeled"), *extra,
        )  # fmt: skip
        q = json.loads(helper.read_text())["x"]
        assert q["crops"] == 40 and q["purity"] > 0.4
        assert q["moves"] == round(40 * (1 - q["purity"]))


@pytest.mark.slow
def test_other_show_characters_are_held_out_and_must_be_rejected(tmp_path):
    need_shared(HOLOEN)
    out = tmp_path / "other.json"
    base = (
        "bench/labeled_folder.py", "--name", "o", "--classes", "4", "--per-class", "30",
        "--test-per-class", "5", "--out", str(out), "--work", str(tmp_path / "work"),
        "-S", "train.epochs=2",
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    bad = subprocess.run(
        [sys.executable, *base, "--other-show", "3"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "--other-show 3: keep at least 2 of the 4 characters known" in bad.stderr
    assert not out.exists()
    run_script(*base, "--other-show", "1")
    record = json.loads(out.read_text())["o"]
    assert len(record["other_show_characters"]) == 1 and record["classes"] == 3
    assert record["other_show"]["faces"] == 30  # every crop of the held-out character
    assert 0.0 <= record["other_show"]["rejection_rate"] <= 1.0


@pytest.mark.slow
def test_other_faces_train_as_the_other_class_and_are_never_held_out(tmp_path):
    need_shared(HOLOEN)
    # a fifth character's crops stand in for a folder of faces from other shows
    faces = tmp_path / "faces"
    faces.mkdir()
    for pic in sorted((sorted(p for p in HOLOEN.iterdir() if p.is_dir())[4]).iterdir())[:30]:
        (faces / pic.name).symlink_to(pic)
    out = tmp_path / "other.json"
    base = (
        "bench/labeled_folder.py", "--name", "o", "--classes", "4", "--per-class", "30",
        "--test-per-class", "5", "--out", str(out), "--work", str(tmp_path / "work"),
        "-S", "train.epochs=2", "--other-show", "2",
    )  # fmt: skip
    run_script(*base, "--other-faces", str(faces))
    record = json.loads(out.read_text())["o"]
    assert record["classes"] == 3  # 2 characters known, and `other`
    assert "other" not in record["other_show_characters"]
    assert record["train_faces"] == 3 * 25 and record["other_show"]["faces"] == 60
    assert 0.0 <= record["known_accuracy"] <= 1.0
    labels = (tmp_path / "work" / "split" / "train.csv").read_text()
    assert labels.count(",other") == 25

    # a tree that has an other/ folder already: one clear line
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "other").mkdir()
    bad = subprocess.run(
        [sys.executable, *base, "--folder", str(tree), "--other-faces", str(faces)], cwd=ROOT,
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "already has an other/ folder" in bad.stderr
    missing = subprocess.run(
        [sys.executable, *base, "--other-faces", str(tmp_path / "nowhere")], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"--other-faces {tmp_path / 'nowhere'}: folder not found" in missing.stderr
