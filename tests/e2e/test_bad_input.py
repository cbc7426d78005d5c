"""The bad-input catalogue: every kind runs the real stage script (or `charaid`) in a tmp project.

Each kind expects one of three answers:
- `error`: exit 1, stderr is exactly one line `error: ...` naming the file or key, no traceback,
  and the project tree is byte-for-byte what it was (no partial output, no temp leftovers);
- `warning`: the input is skipped with one `warning: ...` line naming it, the stage succeeds;
- `ok`: the input is legitimate if unusual (16-bit, grayscale, unicode names...) and just works.

Progress bars are switched off (TQDM_DISABLE) so stderr holds only what the stage says.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, make_crops, moving_square_frames, section_with, write_video

pytestmark = pytest.mark.slow  # ~50 subprocesses: end to end, a few minutes on 2 cores

TRAIN_1_EPOCH = {
    "model": "seed_cnn",
    "seed": 0,
    "epochs": 1,
    "batch_size": 10,
    "lr": 0.002,
    "fast": True,
}  # the train section's changes from params.yaml (tests.helpers.section_with)


def stage_env(extra: dict | None = None) -> dict:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": bindir + os.pathsep + os.environ["PATH"],
        "TQDM_DISABLE": "1",
        **(extra or {}),
    }


def tree(root: Path) -> dict[str, str]:
    """Every file and folder under root with its content hash: equal trees, equal projects."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if "__pycache__" in rel:
            continue
        out[rel] = hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


# ------------------------------------------------------------------------------- inputs


def write_params(project: Path, **changes) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))


def videos_dir(project: Path) -> Path:
    folder = project / "data" / "in"
    folder.mkdir(parents=True, exist_ok=True)
    write_params(project, extract_frames__input="data/in")
    return folder


def good_video(path: Path, n: int = 8, size=(160, 120)) -> Path:
    return write_video(path, moving_square_frames(n, size))


def png_bomb(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A valid-looking PNG header claiming width x height, with a tiny body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width * 3 + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat))


def picture(seed: int = 0, size=(64, 48)) -> np.ndarray:
    img = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), np.uint8)
    cv2.circle(img, (size[0] // 2, size[1] // 2), 10, (255, 255, 255), -1)
    return img


def truncated(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def frames_index(project: Path, frame_bytes: bytes | None = None) -> None:
    """A one-frame data/frames as extract_frames writes it."""
    frames = project / "data" / "frames"
    (frames / "v").mkdir(parents=True)
    if frame_bytes is None:
        cv2.imwrite(str(frames / "v" / "000000.jpg"), picture(1, (320, 240)))
    else:
        (frames / "v" / "000000.jpg").write_bytes(frame_bytes)
    (frames / "index.csv").write_text("video,frame,time,path\nv,0,0.0,v/000000.jpg\n")


def labeled(project: Path, classes: dict[str, int]) -> Path:
    root = project / "data" / "labeled"
    for name, n in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i}.png"), picture(i, (50, 50)))
    write_params(project, label__from="folders", label__path="data/labeled")
    return root


def drop(project: Path, rel: str) -> None:
    path = project / rel
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def edit_yaml(project: Path, fn: Callable[[dict], None]) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    fn(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def mismatched_npz(project: Path) -> None:
    import json

    meta_path = project / "models" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = meta["classes"] + ["Extra"]
    meta_path.write_text(json.dumps(meta))


def remote_with_truncated_object(project: Path) -> None:
    """A DVC project whose only tracked file's object in the local remote was cut short."""
    env = stage_env(
        {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@localhost",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@localhost",
        }
    )

    def sh(*args: str) -> None:
        subprocess.run(args, cwd=project, env=env, check=True, capture_output=True, timeout=120)

    remote = project.parent / f"{project.name}-remote"
    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    sh("dvc", "config", "core.analytics", "false")
    (project / "blob.bin").write_bytes(np.random.default_rng(0).bytes(200_000))
    sh("dvc", "add", "-q", "blob.bin")
    sh("dvc", "remote", "add", "-d", "store", str(remote))
    # without `verify`, DVC trusts a local/SSH remote and would check the cut object out as-is
    sh("dvc", "remote", "modify", "store", "verify", "true")
    sh("dvc", "push", "-q")
    [obj] = [p for p in remote.rglob("*") if p.is_file()]
    truncated(obj)
    shutil.rmtree(project / ".dvc" / "cache")
    (project / "blob.bin").unlink()


# ------------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Case:
    stage: str  # a script in stages/, "cli" (argv after `charaid`) or "dvc" (argv after dvc)
    setup: Callable[[Path], None]
    needles: tuple[str, ...] = ()  # text the error/warning line must contain
    expect: str = "error"  # error | warning | ok
    argv: tuple[str, ...] = ()
    env: dict = field(default_factory=dict)
    fsize_limit: int = 0  # RLIMIT_FSIZE in bytes (a write past it fails with EFBIG)
    check: Callable[[Path], None] | None = None  # extra assertions on a successful run
    # what a failed run may leave on purpose: train's per-epoch snapshots (to resume) and its
    # live training curves (train_log.csv, DVCLive), rewritten whole each epoch
    may_change: tuple[str, ...] = ()


def _frames_are(size: tuple[int, int], count: int | None = None):
    def check(project: Path) -> None:
        jpgs = sorted((project / "data" / "frames").rglob("*.jpg"))
        assert jpgs and (count is None or len(jpgs) == count)
        for path in jpgs:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert img.dtype == np.uint8 and img.shape == (size[1], size[0], 3), path

    return check


def _labels_are(expected: set[str]):
    def check(project: Path) -> None:
        text = (project / "data" / "dataset" / "labels.csv").read_text(encoding="utf-8")
        assert {line.split(",")[1] for line in text.splitlines()[1:]} == expected

    return check


def _video_setup(make: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda p: make(videos_dir(p))


def _image_file(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda p: make(videos_dir(p) / name)


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _truncated_video(folder: Path) -> None:
    truncated(good_video(folder / "cut.mp4", 20))


def _zero_frame_video(folder: Path) -> None:
    writer = cv2.VideoWriter(
        str(folder / "zero.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48)
    )
    writer.release()


def _resolution_change(folder: Path) -> None:
    """Two MJPEG AVIs of different sizes, joined: the stream's size changes mid-way."""
    parts = []
    for i, size in enumerate([(160, 120), (320, 240)]):
        path = folder / f".part{i}.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
        for frame in moving_square_frames(6, size):
            writer.write(frame)
        writer.release()
        parts.append(path.read_bytes())
        path.unlink()
    (folder / "joined.avi").write_bytes(b"".join(parts))


def _good_and_truncated(folder: Path) -> None:
    good_video(folder / "good.mp4")
    _truncated_video(folder)


def _truncated_png(path: Path) -> None:
    cv2.imwrite(str(path), picture(0, (160, 120)))
    truncated(path)


def _truncated_jpg(path: Path) -> None:
    cv2.imwrite(str(path), picture(0, (160, 120)))
    truncated(path, 0.4)


def _png16(path: Path) -> None:
    cv2.imwrite(str(path), picture(0, (160, 120)).astype(np.uint16) * 257)


def _gray(path: Path) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(picture(0, (160, 120)), cv2.COLOR_BGR2GRAY))


def _alpha(path: Path) -> None:
    img = cv2.cvtColor(picture(0, (160, 120)), cv2.COLOR_BGR2BGRA)
    img[..., 3] = 128
    cv2.imwrite(str(path), img)


def _with_junk(project: Path) -> None:
    root = labeled(project, {"Mio": 6, "Yui": 6})
    (root / "Mio" / "notes.txt").write_text("not a picture")
    (root / "Mio" / ".DS_Store").write_bytes(b"\0\1junk")
    (root / "Yui" / "._0.png").write_bytes(b"AppleDouble junk")
    (root / ".hidden_class").mkdir()
    (root / ".hidden_class" / "x.png").write_bytes(b"junk")


def _unicode_classes(project: Path) -> None:
    labeled(project, {"澪 san": 6, "Yui Hirasawa": 6})


def _unreadable_class(project: Path) -> None:
    root = labeled(project, {"Mio": 6, "Yui": 0})
    (root / "Yui" / "0.png").write_bytes(b"not really a png")


def _truth_faces(project: Path) -> None:
    faces = project / "data" / "faces"
    faces.mkdir(parents=True)
    (faces / "index.csv").write_text("crop,video,frame,x,y,w,h,score,crop_x,crop_y,crop_side\n")
    write_params(project, label__from="truth", label__path="data/no-truth")


def _one_class(project: Path) -> None:
    from charaid.labels import build_dataset

    labeled(project, {"Mio": 8})
    shutil.rmtree(project / "data" / "dataset")
    build_dataset(
        section_with("label", from_="folders", path=str(project / "data/labeled"), other_class="o"),
        50,
        project,
        project / "data" / "dataset",
    )


def _test_label_not_trained(project: Path) -> None:
    test_csv = project / "data" / "split" / "test.csv"
    lines = test_csv.read_text().splitlines()
    crop, _ = lines[1].split(",")
    test_csv.write_text("\n".join([lines[0], f"{crop},Nobody"] + lines[2:]) + "\n")


def _split_ghost_crop(project: Path) -> None:
    with open(project / "data" / "split" / "train.csv", "a") as f:
        f.write("ghost/0.png,Akari\n")


def _classes_renamed(project: Path) -> None:
    import json

    meta_path = project / "models" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = ["Mio", "Ritsu", "Yui"]  # same count, another cast
    meta_path.write_text(json.dumps(meta))


DETECT_EVAL = ("detect-eval", "data/scenes", "--params", "params.yaml")


def yolo_scenes(project: Path, box_lines: str | None = None, classes: str | None = None) -> Path:
    """data/scenes: one 64 x 48 picture with `box_lines` as its YOLO box file (and a
    classes.txt), detect_faces.backend animeface: no detector weights needed."""
    folder = project / "data" / "scenes"
    folder.mkdir(parents=True)
    if box_lines is not None:
        cv2.imwrite(str(folder / "a.png"), picture(0, (64, 48)))
        (folder / "a.txt").write_text(box_lines)
    if classes is not None:
        (folder / "classes.txt").write_text(classes)
    write_params(project, detect_faces__backend="animeface")
    return folder


def _not_a_charaid_detector(project: Path) -> None:
    """A good YOLO folder, and detect.yaml naming a detector folder of someone else's model."""
    yolo_scenes(project, "0 0.5 0.5 0.4 0.5\n")
    folder = project / "models" / "facedet"
    folder.mkdir()
    (folder / "detector.json").write_text('{"kind": "yolov8", "input_size": 640}')
    (folder / "detector.npz").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["detect_faces"].update(backend="learned", detector="models/facedet")
    (project / "detect.yaml").write_text(yaml.safe_dump(params))


CASES: dict[str, Case] = {
    # --- params.yaml
    "params_missing": Case("split", lambda p: drop(p, "params.yaml"), ("params.yaml",)),
    "params_not_yaml": Case(
        "split",
        lambda p: (p / "params.yaml").write_text("train: [\n"),
        ("params.yaml", "not valid YAML"),
    ),
    "params_unknown_section": Case(
        "split",
        lambda p: edit_yaml(p, lambda d: d.update(trian={"epochs": 1})),
        ("'trian'", "did you mean 'train'"),
    ),
    "params_misspelled_key": Case(
        "train",
        lambda p: edit_yaml(p, lambda d: d["train"].update(epohcs=3)),
        ("train.epohcs", "did you mean 'epochs'"),
    ),
    "params_mistyped_value": Case(
        "train", lambda p: write_params(p, train__epochs="ten"), ("train.epochs", "integer")
    ),
    "params_negative_epochs": Case(
        "train", lambda p: write_params(p, train__epochs=-3), ("train.epochs", ">= 1")
    ),
    "params_crop_size_0": Case(
        "detect_faces",
        lambda p: write_params(p, detect_faces__crop_size=0),
        ("detect_faces.crop_size", "[8, 512]"),
    ),
    "params_detector_patch_not_multiple_of_64": Case(
        "train_detector",
        lambda p: write_params(p, train_detector__patch=224),
        ("train_detector.patch", "a multiple of 64", "(got 224)"),
    ),
    "params_missing_key": Case(
        "split",
        lambda p: edit_yaml(p, lambda d: d["split"].pop("seed")),
        ("split", "missing seed"),
    ),
    "params_fractional_holdout_count": Case(
        "split", lambda p: write_params(p, split__test_per_class=2.5), ("split.test_per_class",)
    ),
    # --- extract_frames: videos
    "input_folder_missing": Case(
        "extract_frames",
        lambda p: write_params(p, extract_frames__input="data/raw/videos"),
        ("data/raw/videos", "no such folder"),
    ),
    "input_folder_empty_or_hidden_only": Case(
        "extract_frames",
        _image_file(".DS_Store", _write(b"\0\0junk")),
        ("data/in", "no videos or pictures"),
    ),
    "video_empty_file": Case("extract_frames", _image_file("ep1.mp4", _write(b"")), ("ep1.mp4",)),
    "video_truncated": Case("extract_frames", _video_setup(_truncated_video), ("cut.mp4",)),
    "video_zero_frames": Case("extract_frames", _video_setup(_zero_frame_video), ("zero.mp4",)),
    "video_extension_on_text": Case(
        "extract_frames", _image_file("ep2.mkv", _write(b"hello, not a video\n" * 50)), ("ep2.mkv",)
    ),
    "video_truncated_beside_good": Case(
        "extract_frames", _video_setup(_good_and_truncated), ("cut.mp4", "skipped"), "warning"
    ),
    # OpenCV's FFmpeg reader keeps the first size and repeats the last frame after the change
    # (it logs a scaler error we silence): no crash, no odd-sized frame, repeats deduplicated
    "video_resolution_changes_midway": Case(
        "extract_frames",
        _video_setup(_resolution_change),
        expect="ok",
        check=_frames_are((160, 120)),
    ),
    # --- extract_frames: pictures
    "image_random_bytes": Case(
        "extract_frames",
        _image_file("shot.png", _write(np.random.default_rng(0).bytes(5000))),
        ("shot.png",),
    ),
    "image_truncated_png": Case(
        "extract_frames", _image_file("cut.png", _truncated_png), ("cut.png",)
    ),
    "image_truncated_jpeg": Case(
        "extract_frames", _image_file("cut.jpg", _truncated_jpg), ("cut.jpg",)
    ),
    "image_huge_bomb_header": Case(
        "extract_frames", _image_file("huge.png", png_bomb), ("huge.png", "MP limit")
    ),
    "image_16_bit": Case(
        "extract_frames",
        _image_file("deep.png", _png16),
        expect="ok",
        check=_frames_are((160, 120)),
    ),
    "image_grayscale": Case(
        "extract_frames", _image_file("gray.png", _gray), expect="ok", check=_frames_are((160, 120))
    ),
    "image_alpha": Case(
        "extract_frames",
        _image_file("alpha.png", _alpha),
        expect="ok",
        check=_frames_are((160, 120)),
    ),
    # --- detect_faces
    "frames_not_extracted": Case("detect_faces", lambda p: None, ("data/frames/index.csv",)),
    "cascade_missing": Case(
        "detect_faces",
        lambda p: (frames_index(p), write_params(p, detect_faces__backend="lbp")),
        ("models/lbpcascade_animeface.xml", "cascade file not found"),
    ),
    "cascade_not_a_cascade": Case(
        "detect_faces",
        lambda p: (
            frames_index(p),
            (p / "bad.xml").write_text("<opencv_storage><x>1</x></opencv_storage>"),
            write_params(p, detect_faces__backend="lbp", detect_faces__cascade="bad.xml"),
        ),
        ("bad.xml", "not a valid OpenCV cascade"),
    ),
    "frame_file_damaged": Case(
        "detect_faces",
        lambda p: (
            frames_index(p, b"\xff\xd8\xffjunk"),
            write_params(p, detect_faces__backend="animeface"),
        ),
        ("000000.jpg",),
    ),
    "onnx_model_not_onnx": Case(
        "detect_faces",
        lambda p: (
            frames_index(p),
            (p / "models" / "face.onnx").write_text("not a model\n"),
            write_params(p, detect_faces__backend="onnx", detect_faces__onnx="models/face.onnx"),
        ),
        ("detect_faces.onnx", "models/face.onnx", "not an ONNX model"),
    ),
    # --- detect-eval: YOLO-annotated folders (every box file is checked before detecting)
    "yolo_line_malformed": Case(
        "cli",
        lambda p: yolo_scenes(p, "0 0.5 0.5 0.4 0.5\n0 0.5 0.5 0.4\n"),
        ("data/scenes/a.txt:2", "expected 'class cx cy w h'"),
        argv=DETECT_EVAL,
    ),
    "yolo_box_in_pixels": Case(
        "cli",
        lambda p: yolo_scenes(p, "0 32 24 20 20\n"),
        ("data/scenes/a.txt:1", "box outside the picture", "pixel coordinates"),
        argv=DETECT_EVAL,
    ),
    "yolo_class_beyond_classes_txt": Case(
        "cli",
        lambda p: yolo_scenes(p, "2 0.5 0.5 0.4 0.5\n", classes="Mio\nYui\n"),
        ("data/scenes/a.txt:1", "class 2", "classes.txt names 2"),
        argv=DETECT_EVAL,
    ),
    "yolo_folder_without_pictures": Case(
        "cli", lambda p: yolo_scenes(p), ("data/scenes", "no pictures found"), argv=DETECT_EVAL
    ),
    "yolo_folder_missing": Case(
        "cli",
        lambda p: write_params(p, detect_faces__backend="animeface"),
        ("data/scenes", "no such folder"),
        argv=DETECT_EVAL,
    ),
    "detector_not_charaid": Case(
        "cli",
        _not_a_charaid_detector,
        ("models/facedet/detector.json", "not a charaid face detector"),
        argv=("detect-eval", "data/scenes", "--params", "detect.yaml"),
    ),
    # --- label
    "labeled_folder_missing": Case(
        "label",
        lambda p: write_params(p, label__from="folders", label__path="data/labeled"),
        ("data/labeled", "not found"),
    ),
    "class_folder_empty": Case(
        "label", lambda p: labeled(p, {"Mio": 6, "Yui": 0}), ("data/labeled/Yui", "no pictures")
    ),
    "class_only_unreadable_pictures": Case(
        "label", _unreadable_class, ("data/labeled/Yui", "no readable pictures")
    ),
    "label_folder_junk_and_hidden_files": Case(
        "label",
        _with_junk,
        ("notes.txt", "not a picture"),
        "warning",
        check=_labels_are({"Mio", "Yui"}),
    ),
    "class_names_spaces_unicode": Case(
        "label", _unicode_classes, expect="ok", check=_labels_are({"澪 san", "Yui Hirasawa"})
    ),
    "truth_folder_missing": Case("label", _truth_faces, ("data/no-truth",)),
    "faces_not_detected": Case(
        "label", lambda p: write_params(p, label__from="truth"), ("data/faces/index.csv",)
    ),
    # --- split
    "holdout_not_below_class_size": Case(
        "split",
        lambda p: write_params(p, split__test_per_class=24),
        ("class 'Akari' has 24 crops", "split.test_per_class"),
    ),
    "single_class": Case("split", _one_class, ("at least 2 classes",)),
    "dataset_missing": Case("split", lambda p: drop(p, "data/dataset"), ("data/dataset",)),
    "dataset_npz_truncated": Case(
        "split", lambda p: truncated(p / "data/dataset/crops.npz"), ("crops.npz",)
    ),
    # --- train
    "split_missing": Case("train", lambda p: drop(p, "data/split"), ("data/split/train.csv",)),
    "split_lists_unknown_crop": Case("train", _split_ghost_crop, ("ghost/0.png",)),
    "test_label_not_in_training": Case("train", _test_label_not_trained, ("'Nobody'",)),
    # --- evaluate / predict: models
    "model_missing": Case(
        "evaluate",
        lambda p: drop(p, "models"),
        ("models", "no trained model", "run `dvc repro train`"),
    ),
    "model_json_corrupt": Case(
        "evaluate",
        lambda p: (p / "models" / "model.json").write_text('{"classes": ['),
        ("model.json",),
    ),
    "model_json_unknown_architecture": Case(
        "evaluate",
        lambda p: (p / "models" / "model.json").write_text(
            '{"model": "resnet9000", "classes": ["a", "b"], "input_size": 50}'
        ),
        ("model.json", "resnet9000"),
    ),
    "model_npz_other_class_count": Case("evaluate", mismatched_npz, ("model.npz", "model.json")),
    "model_from_other_class_set": Case(
        "evaluate", _classes_renamed, ("model.json", "Mio, Ritsu, Yui", "dvc repro train")
    ),
    "predict_model_other_class_count": Case(
        "cli",
        lambda p: (mismatched_npz(p), cv2.imwrite(str(p / "x.png"), picture())),
        ("model.npz",),
        argv=("predict", "x.png", "--out", "pred"),
    ),
    "predict_path_missing": Case(
        "cli", lambda p: None, ("nope.png", "no such file"), argv=("predict", "nope.png")
    ),
    "annotate_before_frames": Case("annotate_samples", lambda p: None, ("data/frames/index.csv",)),
    # --- writing
    "disk_full_writing_split": Case(
        "split",
        lambda p: None,
        ("data/split", "No space left"),
        env={"CHARAID_FAULT_ENOSPC": "split"},
    ),
    "disk_full_writing_model": Case(
        "train",
        lambda p: None,
        ("models/model.npz", "No space left"),
        env={"CHARAID_FAULT_ENOSPC": "model.npz"},
        may_change=("data/.train_snapshots", "metrics/train_log.csv", "metrics/live"),
    ),
    "file_size_limit_writing_dataset": Case(
        "label", lambda p: labeled(p, {"Mio": 40, "Yui": 40}), ("too large",), fsize_limit=100_000
    ),
    "blas_unknown": Case(
        "train",
        lambda p: None,
        ("CHARAID_BLAS='atlas'", "mkl, openblas"),
        env={"CHARAID_BLAS": "atlas"},
    ),
    # --- remote
    "remote_object_truncated": Case(
        "dvc", remote_with_truncated_object, ("blob.bin",), argv=("pull",)
    ),
}


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    """params.yaml, a tiny labelled dataset, its split and a 1-epoch model, for later stages."""
    from charaid.dataset import load_dataset
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split
    from charaid.train import train

    base = tmp_path_factory.mktemp("base")
    shutil.copy(ROOT / "params.yaml", base / "params.yaml")
    data = base / "data"
    make_crops(base / "crops", n=24)
    build_dataset(
        section_with("label", from_="folders", path=str(base / "crops"), other_class="other"),
        50,
        base,
        data / "dataset",
    )
    write_split(split_rows(load_dataset(data / "dataset")[1], 4, 0), data / "split")
    for name in ("models", "metrics"):
        (base / name).mkdir()
    train(
        section_with("train", **TRAIN_1_EPOCH),
        data / "dataset",
        data / "split",
        base / "models",
        base / "metrics",
        base / "snap",
    )
    shutil.rmtree(base / "crops")
    write_params(base, train__epochs=1, train__batch_size=10, split__test_per_class=4)
    return base


def run_case(case: Case, project: Path) -> subprocess.CompletedProcess:
    if case.stage == "cli":
        argv = [sys.executable, "-c", "from charaid.cli import main; main()", *case.argv]
    elif case.stage == "dvc":
        argv = [str(Path(sys.executable).parent / "dvc"), *case.argv]
    else:
        argv = [sys.executable, str(ROOT / "stages" / f"{case.stage}.py")]

    def limit() -> None:
        if case.fsize_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize_limit, case.fsize_limit))

    return subprocess.run(
        argv,
        cwd=project,
        env=stage_env(case.env),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, base_project: Path, tmp_path: Path) -> None:
    case = CASES[name]
    project = tmp_path / "project"
    shutil.copytree(base_project, project)
    case.setup(project)
    before = tree(project)
    result = run_case(case, project)
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout, err
    lines = err.strip().splitlines()
    if case.stage == "dvc":
        # DVC's own report: it must fail, name the file, and place nothing corrupt in the workspace
        assert result.returncode != 0, result.stdout + err
        assert any(n in err for n in case.needles) and "ERROR" in err, err
        assert not (project / "blob.bin").exists()
        return
    if case.expect == "error":
        assert result.returncode == 1, (result.returncode, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        for needle in case.needles:
            assert needle in lines[0], (needle, lines[0])
        after = tree(project)
        if case.may_change:
            before, after = (
                {k: v for k, v in t.items() if not k.startswith(case.may_change)}
                for t in (before, after)
            )
        assert after == before, "the project changed: partial output or temp leftovers"
        return
    assert result.returncode == 0, err
    if case.expect == "warning":
        assert lines and all(line.startswith("warning: ") for line in lines), err
        assert any(all(n in line for n in case.needles) for line in lines), err
    else:
        assert lines == [], err
    leftovers = [
        p for p in project.rglob(".*") if p.name not in {".DS_Store"} and "._" not in p.name
    ]
    assert not [p for p in leftovers if "labeled" not in str(p)], leftovers
    if case.check:
        case.check(project)


def test_catalogue_size() -> None:
    assert len(CASES) >= 25
