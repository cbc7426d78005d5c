"""`charaid predict`: inputs, unique output names, batching, and a real model on demo frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from charaid.cli import main
from charaid.config import load_params
from charaid.errors import CharaidError
from charaid.predict import Face, Predictor, Recognizer
from charaid.predict_files import Names, Picture, annotate, chunks, collect_inputs
from tests.helpers import DemoModel, named_correctly

# ---------------------------------------------------------------- no model needed


def test_same_stem_in_different_folders_never_collides(tmp_path):
    names = Names()
    a, b, c = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png", tmp_path / "b" / "X.jpg"
    got = [names.claim("x", a), names.claim("x", b), names.claim("X", c)]
    assert got[0] == "x" and got[1].startswith("x-") and got[2].startswith("X-")
    assert len({g.casefold() for g in got}) == 3
    again = Names()  # the same inputs in the same order: the same names
    assert [again.claim("x", a), again.claim("x", b), again.claim("X", c)] == got


def test_inputs_expand_folders_once_and_refuse_missing_paths(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for rel in ("d/1.png", "d/sub/2.jpg", "d/clip.mp4", "d/notes.txt", "d/.hidden.png"):
        (tmp_path / rel).write_bytes(b"x")
    found = collect_inputs([tmp_path / "d", tmp_path / "d" / "1.png"])
    assert [p.name for p in found] == ["1.png", "clip.mp4", "2.jpg"]
    with pytest.raises(CharaidError, match="no such file or folder"):
        collect_inputs([tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CharaidError, match="no pictures or videos"):
        collect_inputs([tmp_path / "empty"])


def test_chunks_bound_count_and_pixels():
    small = [Picture(Path("a"), str(i), np.zeros((10, 10, 3), np.uint8)) for i in range(5)]
    assert [len(c) for c in chunks(small, 2)] == [2, 2, 1]
    huge = np.zeros((8000, 8001, 3), np.uint8)  # 64 MP: a chunk on its own
    pics = [Picture(Path("h"), "h", huge), *small[:2]]
    assert [len(c) for c in chunks(pics, 16)] == [1, 2]


@pytest.mark.parametrize("size", [(240, 320), (2160, 3840)])
def test_labels_are_legible_at_any_size(size):
    h, w = size
    image = np.full((h, w, 3), 255, np.uint8)
    side = h // 4
    face = Face((w / 2, h / 2, side, side), "Akari", 0.93, [("Akari", 0.93)])
    out = annotate(image, [face], ["Akari"])
    tag = np.argwhere((out[: h // 2 - 1] != 255).any(axis=2))  # ink above the box: the name tag
    tag_height = tag[:, 0].max() - tag[:, 0].min() + 1
    assert tag_height >= 12  # ~9 px letters at 320x240
    assert tag_height >= h / 60  # and they grow with the picture (~60 px at 4K)


# ---------------------------------------------------------------- with a trained demo model


@pytest.fixture(scope="module")
def model(demo_model: DemoModel) -> DemoModel:
    return demo_model


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_predict_folder_and_video_names_faces(model, tmp_path, capsys, monkeypatch):
    inputs = tmp_path / "in"
    for folder in ("a", "b"):  # the same file name in two folders
        (inputs / folder).mkdir(parents=True)
    shutil.copy(model.samples[0], inputs / "a" / "shot.jpg")
    shutil.copy(model.samples[1], inputs / "b" / "shot.jpg")
    shutil.copy(model.samples[2], inputs / "b" / "third.png")
    (inputs / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")

    calls = []
    real = Recognizer.probabilities

    def counted(self, crops, *args, **kwargs):
        calls.append(len(crops))
        return real(self, crops, *args, **kwargs)

    monkeypatch.setattr(Recognizer, "probabilities", counted)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys,
        "predict",
        str(inputs),
        str(model.video),
        "--model",
        str(model.models),
        "--params",
        str(model.params),
        "--out",
        str(out),
        "--fps",
        "1",
        "--max-frames",
        "3",
        "--json",
    )
    assert code == 0, err
    assert "broken.png: not a readable picture, skipped" in err
    assert "predict" in err and "file" in err  # the tqdm progress bar, on stderr
    records = json.loads(stdout)
    assert records == json.loads((out / "predictions.json").read_text())
    pictures = [r for r in records if "frame" not in r]
    frames = [r for r in records if "frame" in r]
    assert [Path(r["image"]).name for r in pictures] == ["shot.jpg", "shot.jpg", "third.png"]
    assert len(frames) == 3 and [r["frame"] for r in frames] == sorted(r["frame"] for r in frames)
    # one annotated picture per record, every name distinct, nothing half-written left over
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted([r["annotated"] for r in records] + ["predictions.json"])
    assert len({r["annotated"] for r in records}) == len(records)
    # 7 pictures, batch 16: the faces of all of them went through one forward pass
    assert len(calls) == 1 and calls[0] == sum(len(r["faces"]) for r in records)

    matched = right = 0
    for record, sample in zip(pictures, model.samples[:3], strict=True):
        image = cv2.imread(str(out / record["annotated"]))
        assert image.shape == (record["height"], record["width"], 3)
        m, r = named_correctly(record["faces"], model.truth[sample.name])
        matched, right = matched + m, right + r
        for face in record["faces"]:
            assert face["name"] in [*model.classes, "unknown"]
            assert len(face["top"]) == 3 and face["top"][0]["probability"] == face["probability"]
    assert matched >= 6 and right / matched >= 0.7, (matched, right)


@pytest.mark.slow
def test_batched_and_one_by_one_agree(model):
    predictor = Predictor.load(model.models, load_params(model.params))
    images = [cv2.imread(str(p)) for p in model.samples]
    batched = predictor.predict_many(images)
    single = [predictor.predict(image) for image in images]
    assert [[f.name for f in faces] for faces in batched] == [
        [f.name for f in faces] for faces in single
    ]
    for faces_b, faces_s in zip(batched, single, strict=True):
        for a, b in zip(faces_b, faces_s, strict=True):
            assert a.box == b.box and abs(a.probability - b.probability) < 1e-4


@pytest.mark.slow
def test_small_and_4k_pictures_are_annotated(model, tmp_path, capsys):
    image = cv2.imread(str(model.samples[0]))
    cv2.imwrite(str(tmp_path / "small.png"), cv2.resize(image, (320, 240), cv2.INTER_AREA))
    cv2.imwrite(str(tmp_path / "uhd.png"), cv2.resize(image, (3840, 2160), cv2.INTER_CUBIC))
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys,
        "predict",
        str(tmp_path / "small.png"),
        str(tmp_path / "uhd.png"),
        "--model",
        str(model.models),
        "--params",
        str(model.params),
        "--out",
        str(out),
    )
    assert code == 0, err
    records = {r["image"]: r for r in json.loads((out / "predictions.json").read_text())}
    uhd = records[str(tmp_path / "uhd.png")]
    # faces of ~300 px: found on a downscaled copy, boxes in 4K coordinates
    assert len(uhd["faces"]) >= 2 and max(f["box"][2] for f in uhd["faces"]) > 250
    assert cv2.imread(str(out / "small.annotated.jpg")).shape == (240, 320, 3)


@pytest.mark.slow
def test_user_errors_are_one_line(model, tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "predict", str(tmp_path / "nope.png"), "--params", str(model.params)
    )
    assert code == 1 and err.strip() == f"error: {tmp_path / 'nope.png'}: no such file or folder"
    code, _, err = run_cli(
        capsys,
        "predict",
        str(model.samples[0]),
        "--model",
        str(tmp_path),
        "--params",
        str(model.params),
    )
    assert code == 1 and err.count("\n") == 1 and "no trained model" in err
