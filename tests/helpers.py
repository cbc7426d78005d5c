"""What more than one test module uses, in one place: paths, small synthetic inputs, stage and
pipeline runners, the demo model's builder and a throwaway sshd. Test modules import from here
(and get fixtures from tests/conftest.py), never from one another; bench scripts use it too.

No charaid import at module level: helpers import what they need when called, so that
collecting the tests stays quick.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

# ----------------------------------------------------------------------------- paths

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CASCADE = SHARED / "lbpcascade_animeface.xml"
SAKURASOU = SHARED / "videos" / "sakurasou-1080p.mp4"


def need_shared(path: Path) -> None:
    """Skip, with the reason, when the real test data beside the project is absent."""
    if not path.exists():
        pytest.skip(f"real test data not found: {path} (../shared/data is absent)")


# ----------------------------------------------------------------------------- synthetic inputs


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def moving_square_frames(n: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    """Frames whose content changes enough every frame not to count as duplicates."""
    frames = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), 30, np.uint8)
        x = (i * 37) % (size[0] - 40)
        y = (i * 23) % (size[1] - 40)
        cv2.rectangle(img, (x, y), (x + 40, y + 40), (40 * (i % 6), 255 - 20 * (i % 10), 200), -1)
        cv2.circle(img, ((x * 3) % size[0], (y * 5) % size[1]), 15, (255, 255, 255), -1)
        frames.append(img)
    return frames


CLASSES = {"Akari": (0, 0, 255), "Sora": (255, 0, 0), "other": (0, 255, 0)}


def make_crops(root: Path, n: int = 24) -> None:
    """Labeled folders `root/<class>/<i>.png` of 50 px crops, one colour per class of CLASSES:
    separable enough for a tiny model to learn in a few epochs."""
    rng = np.random.default_rng(0)
    for name, color in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 60, (50, 50, 3), dtype=np.uint8)
            cv2.circle(img, (25, 25), 12 + i % 5, color, -1)
            cv2.imwrite(str(root / name / f"{i}.png"), img)


def make_folders(root: Path, classes: dict[str, int]) -> None:
    """Labeled folders `root/<class>/<i>.png` of plain grey 64 px pictures, as many as
    `classes` says for each class."""
    for name, n in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            img = np.full((64, 64, 3), (i * 10) % 255, np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), img)


def _yolo_line(box, w, h) -> str:
    x, y, s, _ = box
    return f"0 {(x + s / 2) / w:.6f} {(y + s / 2) / h:.6f} {s / w:.6f} {s / h:.6f}"


def _picture(path, designs, size=(400, 260)):
    """Draw characters side by side; return their canonical face boxes."""
    from charaid.demo.draw import Pose, draw_character

    img = np.full((size[1], size[0], 3), (200, 220, 235), np.uint8)
    boxes = [
        draw_character(img, d, Pose(100 + 200 * i, 110, 80)).box for i, d in enumerate(designs)
    ]
    cv2.imwrite(str(path), img)
    return boxes


def annotated_set(root: Path) -> None:
    """5 drawn faces, 6 annotated: one annotation has no face, one face has a wrong box."""
    from charaid.demo.cast import named_cast

    cast = named_cast(6)
    (root / "sub").mkdir(parents=True)
    a = _picture(root / "a.png", cast[:2])
    b = _picture(root / "b.png", cast[2:4])
    c = _picture(root / "sub" / "c.png", cast[4:5])
    _picture(root / "blank.png", [])  # no box file: a picture without faces
    (root / "a.txt").write_text("\n".join(_yolo_line(x, 400, 260) for x in a))
    wrong = (b[1][0] - 60, b[1][1] + 90, b[1][2], b[1][3])  # nowhere near the face
    (root / "b.txt").write_text("\n".join(_yolo_line(x, 400, 260) for x in (b[0], wrong)))
    missing = (290, 60, 80, 80)  # annotated, but nothing is drawn there
    (root / "sub" / "c.txt").write_text("\n".join(_yolo_line(x, 400, 260) for x in (c[0], missing)))


# ----------------------------------------------------------------------------- params


@cache
def repo_params() -> Any:
    """The project's params.yaml, typed (charaid.config.Params): what tests start from."""
    from charaid.config import load_params

    return load_params(ROOT / "params.yaml")


def section_with(name: str, **changes: Any) -> Any:
    """params.yaml's section `name`, typed, with some keys changed (attribute names: `from_`
    for label's `from`; a list is taken as the tuple a section holds). The one way tests build
    a section: every key present, as a stage gets it."""
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
    return dataclasses.replace(getattr(repo_params(), name), **changes)


# the seed blog's small CNN as tests train it (params.yaml ships bn_cnn at 64 px): fast and
# independent of the shipped recipe
SEED_CNN = {"model": "seed_cnn", "input_size": 50, "augment": False, "lr_decay": "none"}


def softmax_at(threshold: float) -> Any:
    """A predict section that calls a face unknown under `threshold` of top probability (no
    knn gallery): plain arg-max accuracy at 0."""
    return section_with(
        "predict", unknown_method="softmax", unknown_quantile=0.0, unknown_threshold=threshold
    )


# the preprocessing and fusion a detect_faces section can turn off, off: what tests of one bare
# detector use (params.yaml's values turn them on)
PLAIN_DETECT = {
    "white_balance": False,
    "dark_level": 0,
    "clahe_clip": 2.0,
    "sharpen": 0.0,
    "sharpen_sigma": 2.0,
    "extra_scale": 0.0,
    "eye_span": 0.0,
    "reject_text": False,
    "merge_iou": 0.4,
    "pad": 0.0,
}


def lbp_params(**extra: Any) -> Any:
    """detect_faces params for the LBP cascade backend (the shared cascade file), one worker,
    no preprocessing."""
    params = {
        **PLAIN_DETECT,
        "backend": "lbp",
        "cascade": str(CASCADE),
        "scale_factor": 1.1,
        "min_neighbors": 5,
        "min_size": 24,
        "min_score": 0.0,
        "margin": 0.2,
        "crop_size": 50,
        "workers": 1,
    }
    return section_with("detect_faces", **{**params, **extra})


# ----------------------------------------------------------------------------- real frames
# The hand-annotated real frames (tests/data/night_scene_boxes), cut from the shared clip.

ANNOTATIONS = Path(__file__).parent / "data" / "night_scene_boxes"


def annotated_sakurasou(out: Path) -> Path:
    """A YOLO folder `out/sakurasou` of the annotated frames (PNG) with their box files."""
    wanted = {int(p.stem.removeprefix("frame")): p for p in ANNOTATIONS.glob("frame*.txt")}
    folder = out / "sakurasou"
    folder.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(SAKURASOU))
    index = 0
    try:
        while wanted and index <= max(wanted):
            if index in wanted:
                ok, frame = capture.read()
                if not ok:
                    break
                cv2.imwrite(str(folder / f"frame{index:04d}.png"), frame)
                shutil.copy(wanted.pop(index), folder / f"frame{index:04d}.txt")
            elif not capture.grab():
                break
            index += 1
    finally:
        capture.release()
    if wanted:
        raise RuntimeError(f"{SAKURASOU}: frames {sorted(wanted)} could not be decoded")
    return folder


# ----------------------------------------------------------------------------- stage scripts


def run_stage(name: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python stages/<name>.py` of this project, run in `cwd` (a folder with a params.yaml)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def params_with(tmp_path: Path, sample_params: dict, **changes) -> None:
    """Write `tmp_path/params.yaml`: sample_params with `section__key=value` changes."""
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        sample_params[section][key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(sample_params))


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


# ----------------------------------------------------------------------------- dvc pipeline

TINY = {
    "make_demo": {
        "characters": 3,
        "extras": 4,
        "episodes": 1,
        "seconds": 12,
        "fps": 2,
        "width": 640,
        "height": 360,
        "other_show_episodes": 1,
    },
    # the detector trains for seconds here, too little to find faces: detect_faces runs a
    # classical backend (tests/integration/test_detector.py runs the learned one on what it
    # learned), in one pass: the tiny demo's faces need no enlarged search (137 of 137 found
    # at precision 1.0 either way, in a third of the time)
    "train_detector": {"epochs": 2, "samples_per_epoch": 32, "val_pictures": 4},
    "detect_faces": {"backend": "animeface", "extra_scale": 0.0},
    # one episode: crops are held out; the other show is then the one held-out video
    "split": {"test_per_class": 0.25, "by": "crop"},
    "train": {"epochs": 2},
    "annotate_samples": {"count": 2},
}


def env() -> dict:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ["PATH"],
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }


def sh(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def copy_pipeline(repo: Path, overrides: dict) -> None:
    """The project's tracked pipeline files into `repo`, params updated per section."""
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "src"):
        shutil.copytree(
            ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    (repo / "metrics").mkdir()
    (repo / "models").mkdir()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def new_project(repo: Path, overrides: dict) -> Path:
    """`copy_pipeline` into a new git + DVC repository, committed once (DVCLive needs a commit)."""
    repo.mkdir(parents=True, exist_ok=True)
    copy_pipeline(repo, overrides)
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny project")
    return repo


def render_show(folder: Path, name: str, ext: str = ".mkv", **make_demo) -> tuple[list, Path]:
    """A show of the user's own, drawn by the demo renderer (the make_demo stage, run in a scratch
    folder with the project's params and `make_demo` changes): its episodes re-encoded as
    `folder/<name>NN<ext>` (any container OpenCV writes) and its ground truth as
    `folder/truth/<name>NN.csv` (frame,character,role,x,y,w,h; see charaid.demo.render).
    The other show is left out. Returns (the videos, the truth folder)."""
    scratch = folder / "render"
    scratch.mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["make_demo"].update({"other_show_episodes": 0, **make_demo})
    (scratch / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    result = run_stage("make_demo", scratch)
    assert result.returncode == 0, result.stderr[-3000:]
    demo, truth, videos = scratch / "data" / "demo", folder / "truth", []
    truth.mkdir()
    for i, source in enumerate(sorted((demo / "videos").glob("ep*.mp4")), 1):
        stem = f"{name}{i:02d}"
        capture = cv2.VideoCapture(str(source))
        fps = capture.get(cv2.CAP_PROP_FPS)
        frames = []
        while (frame := capture.read()[1]) is not None:
            frames.append(frame)
        capture.release()
        videos.append(write_video(folder / f"{stem}{ext}", frames, round(fps)))
        shutil.copy(demo / "truth" / f"{source.stem}.csv", truth / f"{stem}.csv")
    shutil.rmtree(scratch)
    return videos, truth


# ----------------------------------------------------------------------------- demo model
# A small real model on the demo show, built once per test session (conftest's `demo_model`).

SMALL_DEMO = {
    "seed": 0,
    "characters": 4,
    "extras": 4,
    "episodes": 1,
    "seconds": 8,
    "fps": 6,
    "width": 960,
    "height": 540,
    "other_show_episodes": 0,
}
EPOCHS = 12


@dataclass(frozen=True)
class DemoModel:
    root: Path
    models: Path  # model.npz + model.json
    params: Path  # a params.yaml for `charaid predict/serve --params`
    classes: list[str]
    samples: list[Path]  # JPEG frames with the most named faces, most first
    truth: dict[str, list[tuple[str, tuple[float, float, float, float]]]]  # sample -> faces
    video: Path


def named_correctly(faces: list[dict], truth: list[tuple[str, tuple]]) -> tuple[int, int]:
    """(faces that overlap a truth face, of those how many got its name)."""
    from charaid.boxes import iou

    matched = right = 0
    for face in faces:
        best = max(truth, key=lambda t: iou(tuple(face["box"]), t[1]), default=None)
        if best and iou(tuple(face["box"]), best[1]) >= 0.4:
            matched += 1
            right += face["name"] == best[0]
    return matched, right


def build_demo_model(root: Path) -> DemoModel:
    """Render, crop, label, split and train in `root` (conftest's session fixture `demo_model`
    builds it once per test session).

    Training crops are cut at the ground-truth boxes (the detector's box convention), which
    skips the slow detect_faces pass; the detector only runs on the few pictures the tests
    predict on."""
    from charaid.boxes import square_crop
    from charaid.dataset import load_dataset
    from charaid.demo.render import render_demo
    from charaid.frames import Sampling, iter_video
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split
    from charaid.train import train

    detect, other_class = repo_params().detect_faces, repo_params().label.other_class
    render_demo(section_with("make_demo", **SMALL_DEMO), root / "demo")
    video = root / "demo" / "videos" / "ep01.mp4"
    truth: dict[int, list[dict]] = defaultdict(list)
    with open(root / "demo" / "truth" / "ep01.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            truth[int(row["frame"])].append(row)

    labeled, samples = root / "labeled", root / "samples"
    samples.mkdir()
    margin = detect.margin
    frames = list(iter_video(video, Sampling(every_n_frames=1, dedup_distance=-1)))
    for index, _, frame in frames:
        for k, row in enumerate(truth.get(index, [])):
            name = row["character"] if row["role"] == "cast" else other_class
            box = tuple(float(row[c]) for c in "xywh")
            crop = square_crop(frame, box, margin, detect.crop_size)[0]
            (labeled / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(labeled / name / f"{index:04d}_{k}.png"), crop)

    # Sample pictures: frames with the most named faces, from different shots.
    def named(index: int) -> int:
        return sum(r["role"] == "cast" for r in truth.get(index, []))

    picked: list[tuple[int, object]] = []
    for index, _, frame in sorted(frames, key=lambda f: -named(f[0])):
        if len(picked) < 4 and all(abs(index - i) >= 10 for i, _ in picked):
            picked.append((index, frame))
    sample_paths, sample_truth = [], {}
    for index, frame in picked:
        path = samples / f"frame{index:04d}.jpg"
        cv2.imwrite(str(path), frame)
        sample_paths.append(path)
        sample_truth[path.name] = [
            (r["character"] if r["role"] == "cast" else "other", tuple(float(r[c]) for c in "xywh"))
            for r in truth[index]
        ]

    label = section_with("label", from_="folders", path=str(labeled))
    build_dataset(label, detect.crop_size, root, root / "dataset")
    write_split(split_rows(load_dataset(root / "dataset")[1], 0.2, 0), root / "split")
    (root / "models").mkdir()
    (root / "metrics").mkdir()
    train(
        section_with("train", epochs=EPOCHS, batch_size=20),
        root / "dataset",
        root / "split",
        root / "models",
        root / "metrics",
        root / "snapshots",
    )
    shutil.rmtree(root / "snapshots", ignore_errors=True)

    params_path = root / "params.yaml"
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # This model learned from crops cut at the truth boxes, not the detector's, so its training
    # faces (the knn unknown check's reference) are not what the detector gives: 4 of 10 cast
    # faces came out unknown. These tests check naming, so they use the softmax threshold.
    params["predict"]["unknown_method"] = "softmax"
    params["detect_faces"]["backend"] = "animeface"  # no detector training in this fixture
    params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    classes = yaml.safe_load((root / "models" / "model.json").read_text())["classes"]
    return DemoModel(root, root / "models", params_path, classes, sample_paths, sample_truth, video)


# ----------------------------------------------------------------------------- throwaway sshd
# A throwaway OpenSSH server on 127.0.0.1 for DVC remote tests and the storage bench.
#
# Everything lives in one temporary folder: host and user keys, sshd_config, the pid file, and a
# HOME whose ~/.ssh/known_hosts trusts the host key (dvc-ssh has no known-hosts option; asyncssh
# reads ~/.ssh/known_hosts of the client process).

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """`with Sshd(folder) as server:` serves sftp and shell logins by key, as the current user."""

    def __init__(self, folder: Path, log_sftp: bool = False) -> None:
        self.folder = Path(folder)
        self.log_sftp = log_sftp
        self.home = self.folder / "home"
        self.key = self.folder / "user_key"
        self.user = getpass.getuser()
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Sshd:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _keygen(self, path: Path) -> str:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "charaid-test", "-f", str(path)],
            check=True,
            capture_output=True,
        )
        return (path.with_suffix(".pub")).read_text().strip()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        host_key = self.folder / "host_key"
        host_pub = self._keygen(host_key)
        user_pub = self._keygen(self.key)
        (self.folder / "authorized_keys").write_text(user_pub + "\n")
        self.port = free_port()
        subsystem = "internal-sftp"
        if self.log_sftp:
            # internal-sftp logs only to syslog; the standalone server logs requests to stderr.
            wrapper = self.folder / "sftp-logged"
            wrapper.write_text(
                f"#!/bin/sh\nexec {SFTP_SERVER} -e -l VERBOSE 2>>{self.folder / 'sftp.log'}\n"
            )
            wrapper.chmod(0o755)
            subsystem = str(wrapper)
        config = self.folder / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {host_key}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            f"PidFile {self.folder / 'sshd.pid'}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            # dvc-ssh talks sftp; without this line sshd refuses the subsystem.
            f"Subsystem sftp {subsystem}\n"
            "MaxSessions 64\n"
            "MaxStartups 64\n"
            "LogLevel ERROR\n"
        )
        # sshd refuses to start without its privilege-separation folder.
        with contextlib.suppress(PermissionError):
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True)
        (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        self.log = open(self.folder / "sshd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    if s.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("sshd did not start listening within 15 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()
        self.process = None

    def sftp_requests(self) -> dict[str, int]:
        """Counts, by kind, of the sftp requests served so far (with log_sftp): open, close,
        stat, lstat, mkdir, rename, opendir, ...; sftp-server does not log data reads/writes."""
        counts: dict[str, int] = {}
        log = self.folder / "sftp.log"
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            # e.g. 'open "/x" flags WRITE,CREATE,TRUNCATE mode 0666', 'mkdir name "/y" mode 0777'
            word = line.split(" ", 1)[0]
            if word not in ("session", "received", "sent"):
                counts[word] = counts.get(word, 0) + 1
        return counts

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{Path(path).resolve()}"

    def env(self) -> dict:
        """Environment for clients (dvc, ssh, rsync): HOME with known_hosts, no agent."""
        env = {**os.environ, "HOME": str(self.home)}
        env.pop("SSH_AUTH_SOCK", None)
        return env

    def ssh_command(self) -> list[str]:
        """An `ssh` command line (for rsync -e) that uses the throwaway key and known_hosts."""
        return [
            shutil.which("ssh") or "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.key),
            "-o",
            f"UserKnownHostsFile={self.home / '.ssh' / 'known_hosts'}",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
        ]
