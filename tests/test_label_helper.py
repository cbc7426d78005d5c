"""charaid label: suggested folders for unlabeled crops, by clusters or by a trained model."""

import csv
import json

import cv2
import numpy as np
import pytest

from charaid.cli import main
from charaid.errors import CharaidError
from charaid.labelhelp import auto_clusters, quality, suggest

COLORS = {"Akari": (0, 0, 255), "Sora": (255, 0, 0), "Mio": (0, 200, 0)}


def make_faces(root, n=12):
    """A detect_faces-like folder: crops/ + index.csv; the truth is kept apart (not in it)."""
    rng = np.random.default_rng(1)
    (root / "crops").mkdir(parents=True)
    rows, truth = [], {}
    for k, (name, color) in enumerate(COLORS.items()):
        for i in range(n):
            img = rng.integers(0, 60, (50, 50, 3), dtype=np.uint8)
            cv2.circle(img, (25, 25), 10 + i % 6, color, -1)
            crop = f"crops/v{k}_{i}.png"  # names say nothing of the character
            cv2.imwrite(str(root / crop), img)
            rows.append({"crop": crop, "video": "v", "frame": str(i)})
            truth[crop] = name
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
    from charaid.labels import build_dataset, load_dataset
    from charaid.split import split_rows, write_split
    from charaid.train import train
    from tests.test_train_evaluate import CLASSES

    # a tiny model on the same colours (its own crops), then new crops to pre-sort
    labeled = tmp_path / "labeled"
    truth = make_faces(tmp_path / "faces")
    for crop, name in truth.items():
        if name in CLASSES:
            (labeled / name).mkdir(parents=True, exist_ok=True)
            pic = (tmp_path / "faces" / crop).read_bytes()
            (labeled / name / crop.split("/")[-1]).write_bytes(pic)
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
