"""charaid label: suggested folders for unlabeled crops, by clusters or by a trained model."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from charaid.cli import main
from charaid.errors import CharaidError
from charaid.faces import crop_file, crop_key, load_crops
from charaid.labelhelp import auto_clusters, quality, suggest

COLORS = {"Akari": (0, 0, 255), "Sora": (255, 0, 0), "Mio": (0, 200, 0)}


def make_faces(root, n=12):
    """A detect_faces-like folder: crops/<video>.npz + index.csv; the truth is kept apart."""
    rng = np.random.default_rng(1)
    crop_file(root, "v").parent.mkdir(parents=True)
    rows, truth, crops = [], {}, []
    for k, (name, color) in enumerate(COLORS.items()):
        for i in range(n):
            img = rng.integers(0, 60, (50, 50, 3), dtype=np.uint8)
            cv2.circle(img, (25, 25), 10 + i % 6, color, -1)
            frame = str(k * n + i)
            crop = crop_key("v", frame, 0)  # keys say nothing of the character
            crops.append(img)
            rows.append({"crop": crop, "video": "v", "frame": frame})
            truth[crop] = name
    np.savez_compressed(crop_file(root, "v"), crops=np.stack(crops), keys=np.array(list(truth)))
    with open(root / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["crop", "video", "frame"])
        writer.writeheader()
        writer.writerows(rows)
    return truth


def read_suggestions(out):
    with open(out / "suggestions.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_clusters_without_model_are_pure_folders_with_contact_sheets(tmp_path):
    truth = make_faces(tmp_path / "faces")
    summary = suggest(tmp_path / "faces", tmp_path / "out", clusters=3)
    assert summary["mode"] == "cluster" and summary["crops"] == 36
    rows = read_suggestions(tmp_path / "out")
    q = quality([r["folder"] for r in rows], [truth[r["crop"]] for r in rows])
    assert q["purity"] == 1.0 and q["moves"] == 0 and q["merges"] == 0
    for folder in summary["folders"]:
        page = (tmp_path / "out" / folder / "index.html").read_text()
        pics = sorted(p.name for p in (tmp_path / "out" / folder).glob("*.png"))
        assert len(pics) == summary["folders"][folder]
        assert all(name in page for name in pics)
    assert all(f in (tmp_path / "out" / "index.html").read_text() for f in summary["folders"])
    # same input, same seed -> same folders
    suggest(tmp_path / "faces", tmp_path / "again", clusters=3)
    assert read_suggestions(tmp_path / "again") == rows


def test_crops_already_labeled_are_not_suggested_again(tmp_path, capsys, monkeypatch):
    """Round two: crops the user sorted into labeled/ (renamed, moved between character folders,
    next to non-pictures) are matched by pixels and left out; only the new ones are suggested."""
    truth = make_faces(tmp_path / "faces")
    suggest(tmp_path / "faces", tmp_path / "round1", clusters=3)
    first = read_suggestions(tmp_path / "round1")
    sorted_now = first[::3]  # the user sorts a third of them
    for n, row in enumerate(sorted_now):
        # renamed; every 4th one filed under the wrong character (a later move between folders)
        name = truth[row["crop"]] if n % 4 else "Mio"
        dest = tmp_path / "labeled" / name / f"face{n}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "round1" / row["file"]).rename(dest)
    (tmp_path / "labeled" / "Mio" / "notes.txt").write_text("not a picture")
    summary = suggest(
        tmp_path / "faces", tmp_path / "round2", clusters=3, labeled_dir=tmp_path / "labeled"
    )
    assert summary["skipped"] == len(sorted_now) == 12 and summary["crops"] == 24
    second = {r["crop"] for r in read_suggestions(tmp_path / "round2")}
    assert second == {r["crop"] for r in first} - {r["crop"] for r in sorted_now}
    # no labeled folder yet (the first round): nothing is skipped
    none = suggest(tmp_path / "faces", tmp_path / "x", clusters=3, labeled_dir=tmp_path / "no")
    assert none["skipped"] == 0 and none["crops"] == 36
    # the command says how many it skipped; with everything sorted, that there is nothing new
    monkeypatch.chdir(tmp_path)
    main(["label", "faces", "--out", "round3", "--clusters", "3", "--labeled", "labeled"])
    assert "24 crops clustered into 3 folders (12 already in labeled/ skipped)" in (
        capsys.readouterr().out
    )
    for row in read_suggestions(tmp_path / "round3"):
        dest = tmp_path / "labeled" / truth[row["crop"]] / Path(row["file"]).name
        (tmp_path / "round3" / row["file"]).rename(dest)
    main(["label", "faces", "--out", "round4", "--labeled", "labeled"])
    assert "nothing new: all 36 crops are in labeled/ already" in capsys.readouterr().out
    assert read_suggestions(tmp_path / "round4") == []  # not a stale earlier round


def test_quality_counts_moves_and_merges():
    q = quality(["a", "a", "a", "b", "b", "c"], ["X", "X", "Y", "X", "X", "Z"])
    assert q == {
        "crops": 6,
        "folders": 3,
        "purity": round(5 / 6, 4),
        "moves": 1,
        "merges": 1,
        "characters_without_folder": 1,
    }
    assert auto_clusters(10) >= 2 and auto_clusters(100_000) == 60


def test_presort_with_a_model_names_folders_by_class(tmp_path):
    from charaid.dataset import load_dataset
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split
    from charaid.train import train
    from tests.helpers import CLASSES

    # a tiny model on the same colours (its own crops), then new crops to pre-sort
    labeled = tmp_path / "labeled"
    truth = make_faces(tmp_path / "faces")
    for crop, name in truth.items():
        if name in CLASSES:
            (labeled / name).mkdir(parents=True, exist_ok=True)
            pic = load_crops(tmp_path / "faces", [{"crop": crop}])[0]
            cv2.imwrite(str(labeled / name / f"{crop.split('/')[-1]}.png"), pic)
    params = {"from": "folders", "path": str(labeled), "min_iou": 0.5, "other_class": "other"}
    build_dataset(params, 50, tmp_path, tmp_path / "dataset")
    write_split(split_rows(load_dataset(tmp_path / "dataset")[1], 2, 0), tmp_path / "split")
    train_params = {
        "model": "seed_cnn", "seed": 0, "epochs": 4, "batch_size": 8, "lr": 0.003, "fast": True,
    }  # fmt: skip
    for d in ("models", "metrics"):
        (tmp_path / d).mkdir()
    t = tmp_path
    train(train_params, t / "dataset", t / "split", t / "models", t / "metrics", t / "snap")

    predict = {"unknown_method": "knn", "unknown_quantile": 0.02, "unknown_threshold": 0.5}
    summary = suggest(tmp_path / "faces", tmp_path / "out", tmp_path / "models", predict=predict)
    assert summary["mode"] == "presort"
    classes = json.loads((tmp_path / "models" / "model.json").read_text())["classes"]
    assert set(summary["folders"]) <= set(classes) | {"unknown"}
    rows = read_suggestions(tmp_path / "out")
    known = [r for r in rows if truth[r["crop"]] in classes]
    assert np.mean([r["folder"] == truth[r["crop"]] for r in known]) >= 0.9
    # file names start with the confidence, so sorting by name groups the doubtful ones
    conf = [float(r["file"].split("/")[1].split("_")[0]) for r in rows]
    assert all(0.0 <= c <= 1.0 for c in conf)
    # clustering on the model's features instead
    summary = suggest(tmp_path / "faces", tmp_path / "clus", tmp_path / "models", clusters=3)
    assert summary["mode"] == "cluster" and sum(summary["folders"].values()) == 36


def test_cli_label_and_its_errors(tmp_path, capsys, monkeypatch):
    make_faces(tmp_path / "faces", n=6)
    monkeypatch.chdir(tmp_path)  # no params.yaml, no models/: clusters on image features
    main(["label", "faces", "--out", "sugg", "--clusters", "3"])
    out = capsys.readouterr().out
    assert "18 crops clustered into 3 folders" in out
    assert (tmp_path / "sugg" / "index.html").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["label", "nowhere", "--out", "sugg2"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: nowhere/index.csv: missing") and "Traceback" not in err
    assert not (tmp_path / "sugg2").exists()
    with pytest.raises(CharaidError, match="cannot make 30 clusters"):
        suggest(tmp_path / "faces", tmp_path / "x", clusters=30)
