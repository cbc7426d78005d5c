"""charaid label: suggested folders for unlabeled crops, by clusters or by a trained model."""

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from charaid import label_helper, self_label
from charaid.cli import main
from charaid.detect_faces import crop_file, crop_key, load_crops
from charaid.errors import CharaidError
from charaid.label_helper import auto_clusters, quality, suggest
from tests.helpers import SEED_CNN, section_with

COLORS = {"Akari": (0, 0, 255), "Sora": (255, 0, 0), "Mio": (0, 200, 0)}


def make_faces(root, n=12, seed=1):
    """A detect_faces-like folder: crops/<video>.npz + index.csv; the truth is kept apart."""
    rng = np.random.default_rng(seed)
    crops, names = [], []
    for name, color in COLORS.items():
        for i in range(n):
            img = rng.integers(0, 60, (50, 50, 3), dtype=np.uint8)
            cv2.circle(img, (25, 25), 10 + i % 6, color, -1)
            crops.append(img)
            names.append(name)
    return write_faces(root, crops, names)


def write_faces(root, crops, names):
    """crops/v.npz + index.csv as detect_faces writes them; returns crop key -> name."""
    crop_file(root, "v").parent.mkdir(parents=True)
    rows, truth = [], {}
    for frame, name in enumerate(names):
        crop = crop_key("v", str(frame), 0)  # keys say nothing of the character
        rows.append({"crop": crop, "video": "v", "frame": str(frame)})
        truth[crop] = name
    np.savez_compressed(crop_file(root, "v"), crops=np.stack(crops), keys=np.array(list(truth)))
    with open(root / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["crop", "video", "frame"])
        writer.writeheader()
        writer.writerows(rows)
    return truth


HAIR = {"Akari": (60, 60, 230), "Sora": (230, 120, 40), "Mio": (60, 190, 60)}
HAIR.update({"Rin": (200, 80, 200), "Yua": (90, 220, 240)})
BACKGROUNDS = [(245, 245, 245), (40, 40, 40), (180, 140, 90), (90, 150, 200), (150, 90, 160)]


def hair_faces(n, seed=0, side=50):
    """Cartoon faces told apart by hair colour only (BGR, +-25 per channel): skin, eye colour,
    position, background and its blobs are random and shared by all, as in real crops."""
    rng = np.random.default_rng(seed)
    crops, names = [], []
    for name, hair in HAIR.items():
        for _ in range(n):
            img = np.empty((side, side, 3), np.uint8)
            img[:] = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
            for _ in range(3):
                blob = tuple(int(v) for v in rng.integers(0, 256, 3))
                centre = (int(rng.integers(0, side)), int(rng.integers(0, side)))
                cv2.circle(img, centre, int(rng.integers(5, 15)), blob, -1)
            x, y = side // 2 + int(rng.integers(-4, 5)), side // 2 + int(rng.integers(-3, 4))
            h = tuple(int(np.clip(v + rng.integers(-25, 26), 0, 255)) for v in hair)
            skin = tuple(int(v) for v in np.array((190, 205, 245)) + rng.integers(-20, 10, 3))
            cv2.ellipse(img, (x, y - 4), (side * 45 // 100, side * 48 // 100), 0, 0, 360, h, -1)
            cv2.ellipse(img, (x, y + 5), (side * 3 // 10, side * 32 // 100), 0, 0, 360, skin, -1)
            cv2.ellipse(img, (x, y - 8), (side * 34 // 100, side // 8), 0, 180, 360, h, -1)
            eye = tuple(int(v) for v in rng.integers(0, 256, 3))
            for dx in (-8, 8):
                cv2.ellipse(img, (x + dx, y + 4), (3, 4), 0, 0, 360, eye, -1)
            noise = rng.integers(-12, 13, img.shape)
            crops.append(np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8))
            names.append(name)
    return crops, names


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


def test_clusters_follow_hair_colour_not_background_or_eyes(tmp_path):
    """Five characters that differ only in hair colour, on random backgrounds with random eye
    colours: the image features must group them by hair (the previous whole-crop HSV
    histogram + grey thumbnail with k-means scored purity 0.52-0.79 here, by seed)."""
    crops, names = hair_faces(30)
    truth = write_faces(tmp_path / "faces", crops, names)
    for clusters in (5, 0):  # the true count, then the automatic one (6 for 150 crops)
        out = tmp_path / f"out{clusters}"
        summary = suggest(tmp_path / "faces", out, clusters=clusters)
        assert len(summary["folders"]) == (clusters or auto_clusters(150))
        rows = read_suggestions(out)
        q = quality([r["folder"] for r in rows], [truth[r["crop"]] for r in rows])
        assert q["purity"] >= 0.95 and q["characters_without_folder"] == 0, q


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


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """(models folder, labeled folder): a seed_cnn of Akari and Sora trained on make_faces'
    colours, from crops of other pixels (seed 2) than the ones the tests suggest folders for."""
    from charaid.dataset import load_dataset
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split
    from charaid.train import train
    from tests.helpers import CLASSES

    root = tmp_path_factory.mktemp("tiny_model")
    labeled = root / "labeled"
    truth = make_faces(root / "faces", seed=2)
    for crop, name in truth.items():
        if name in CLASSES:
            (labeled / name).mkdir(parents=True, exist_ok=True)
            pic = load_crops(root / "faces", [{"crop": crop}])[0]
            cv2.imwrite(str(labeled / name / f"{crop.split('/')[-1]}.png"), pic)
    params = section_with("label", from_="folders", path=str(labeled), other_class="other")
    build_dataset(params, 50, root, root / "dataset")
    write_split(split_rows(load_dataset(root / "dataset")[1], 2, 0), root / "split")
    train_params = section_with(
        "train", **SEED_CNN, seed=0, epochs=4, batch_size=8, lr=0.003, fast=True
    )
    for d in ("models", "metrics"):
        (root / d).mkdir()
    train(
        train_params,
        root / "dataset",
        root / "split",
        root / "models",
        root / "metrics",
        root / "snap",
    )
    return root / "models", labeled


def test_presort_with_a_model_names_folders_by_class(tmp_path, tiny_model):
    models, labeled = tiny_model
    truth = make_faces(tmp_path / "faces")
    predict = section_with(
        "predict", unknown_method="knn", unknown_quantile=0.02, unknown_threshold=0.5
    )
    summary = suggest(
        tmp_path / "faces", tmp_path / "out", models, predict=predict, labeled_dir=labeled
    )
    assert summary["mode"] == "presort" and summary["note"] == "" and summary["crops"] == 36
    classes = json.loads((models / "model.json").read_text())["classes"]
    assert set(summary["folders"]) <= set(classes) | {"unknown"}
    rows = read_suggestions(tmp_path / "out")
    known = [r for r in rows if truth[r["crop"]] in classes]
    assert np.mean([r["folder"] == truth[r["crop"]] for r in known]) >= 0.9
    # file names start with the confidence, so sorting by name groups the doubtful ones
    conf = [float(r["file"].split("/")[1].split("_")[0]) for r in rows]
    assert all(0.0 <= c <= 1.0 for c in conf)
    # clustering on the model's features instead
    summary = suggest(
        tmp_path / "faces", tmp_path / "clus", models, clusters=3, labeled_dir=labeled
    )
    assert summary["mode"] == "cluster" and sum(summary["folders"].values()) == 36


def test_a_model_of_other_characters_is_not_used(tmp_path, tiny_model, capsys, monkeypatch):
    """models/ holds another cast's model (after `make repro`: the demo's): a new show's crops
    are clustered on image features, with one line saying why, whether models/ is the
    default or given with --model; a labeled folder of the model's own characters pre-sorts."""
    truth = make_faces(tmp_path / "faces")  # Akari, Sora and Mio: the model knows two
    shutil.copytree(tiny_model[0], tmp_path / "models")
    monkeypatch.chdir(tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    def label(*args):
        with monkeypatch.context() as m:
            m.setattr(label_helper, "model_outputs", no_model)
            main(["label", "faces", *args])
        return capsys.readouterr().out

    # a new show: nothing labeled yet
    out = label("--out", "new", "--labeled", "labeled")
    assert (
        "label: models/ knows Akari, Sora; labeled/ has no character folders yet to check them "
        "against: clustering instead\nlabel: 36 crops clustered into 3 folders"
    ) in out
    rows = read_suggestions(tmp_path / "new")
    q = quality([r["folder"] for r in rows], [truth[r["crop"]] for r in rows])
    assert q["purity"] == 1.0 and all(r["folder"].startswith("cluster") for r in rows)
    # folders that name no character do not make the model the user's
    for folder in ("other", "unknown", "Empty", ".hidden"):
        (tmp_path / "labeled" / folder).mkdir(parents=True)
    for folder in ("other", "unknown", ".hidden"):
        shutil.copy(next(tiny_model[1].glob("Akari/*.png")), tmp_path / "labeled" / folder)
    assert "labeled/ has no character folders yet" in label("--out", "o1", "--labeled", "labeled")
    # the user has labeled a character the model does not know: default model or --model
    shutil.copytree(tiny_model[1] / "Akari", tmp_path / "labeled" / "Akari")
    shutil.copytree(tiny_model[1] / "Sora", tmp_path / "labeled" / "Mio")
    why = "knows Akari, Sora; not the characters in labeled/ (it does not know Mio): clustering"
    assert f"label: models/ {why}" in label("--out", "o2", "--labeled", "labeled")
    out = label("--out", "o3", "--labeled", "labeled/", "--model", str(tmp_path / "models"))
    assert f"label: {(tmp_path / 'models').as_posix()}/ {why}" in out
    assert "36 crops clustered into 3 folders" in out
    assert f"label: models/ {why}" in label(
        "--out", "o4", "--labeled", "labeled", "--clusters", "4"
    )
    assert len(read_suggestions(tmp_path / "o4")) == 36
    # its own characters (a part of them is enough): pre-sorted, no note
    shutil.rmtree(tmp_path / "labeled" / "Mio")
    main(["label", "faces", "--out", "o5", "--labeled", "labeled"])
    out = capsys.readouterr().out
    assert "knows" not in out and "36 crops pre-sorted by the model into" in out


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


def test_self_labelling_learns_features_of_the_crops_own_clusters(tmp_path):
    """Without a model, `rounds` of a network trained on the crops' own clusters give the
    features clustered: unit vectors of the network's width, the same for the same seed, and
    folders as pure as the image features' on a cast told apart by hair colour."""
    crops, names = hair_faces(50)  # 250 crops: enough to learn from (MIN_CROPS)
    start = label_helper.simple_features(crops)
    feats = self_label.learned_features(np.stack(crops), 5, 1, 0, start, epochs=2)
    assert feats.shape == (250, self_label.WIDTHS[-1])
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-4)
    again = self_label.learned_features(np.stack(crops), 5, 1, 0, start, epochs=2)
    assert np.array_equal(feats, again)
    ids, _ = label_helper.cluster(feats, 5, 0)
    q = quality([str(i) for i in ids], names)
    assert q["purity"] >= 0.95 and q["characters_without_folder"] == 0, q
    # no rounds, or too few crops to learn from: the image features as they were
    assert self_label.learned_features(np.stack(crops), 5, 0, 0, start) is start
    few = self_label.MIN_CROPS - 1
    assert self_label.learned_features(np.stack(crops[:few]), 5, 2, 0, start[:few]).shape == (
        few,
        start.shape[1],
    )


def test_label_learns_from_its_own_clusters_by_default(tmp_path, capsys, monkeypatch):
    """`charaid label` with no model: the default rounds train (a progress bar says so); with
    --rounds 0 it clusters on image features alone, and a negative count is one error line."""
    crops, names = hair_faces(42)  # 210 crops
    truth = write_faces(tmp_path / "faces", crops, names)
    monkeypatch.chdir(tmp_path)
    main(["label", "faces", "--out", "learned", "--clusters", "5"])
    captured = capsys.readouterr()
    assert "label: learning features" in captured.err
    assert "210 crops clustered into 5 folders" in captured.out
    rows = read_suggestions(tmp_path / "learned")
    q = quality([r["folder"] for r in rows], [truth[r["crop"]] for r in rows])
    assert q["purity"] >= 0.95, q
    main(["label", "faces", "--out", "plain", "--clusters", "5", "--rounds", "0"])
    assert "learning features" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["label", "faces", "--out", "bad", "--rounds", "-1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "--rounds" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_label_help_states_the_default_rounds(capsys):
    with pytest.raises(SystemExit):
        main(["label", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"clusters first, {self_label.ROUNDS} when not given" in help_text


def test_self_labelling_trains_only_on_crops_their_neighbours_agree_with():
    """A crop labelled with the other cluster while it sits among this one's is left out of
    training (its label is the likely mistake); every crop of a clean cluster is kept."""
    rng = np.random.default_rng(0)
    blobs = np.vstack([rng.normal(0, 0.1, (30, 8)), rng.normal(5, 0.1, (30, 8))])
    labels = np.array([0] * 30 + [1] * 30)
    labels[3] = 1  # a misfit inside cluster 0
    keep = self_label.agreeing(blobs.astype(np.float32), labels)
    assert not keep[3] and keep.sum() == 59
