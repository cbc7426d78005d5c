"""End to end: the README's "Your own show" steps, read from README.md itself and run in order
in a tiny project on a tiny show of its own, then "Predict and serve"'s `charaid predict`.

What is run comes from the README's text: the ```sh blocks and inline `charaid ...` / `dvc ...`
commands of the steps taken, and the `section.key: value` settings those steps tell the user
to put in params.yaml. Only the obvious placeholders are replaced (`~/episodes`, `shots/`,
`episode.mkv`). A person acts only where one must: naming the exported crops' folders in step 5
(here from the show's own ground truth). The test sets only what makes the project tiny
(`SIZE`), never a setting a step makes, so a README edit that breaks the flow breaks the test.

Steps taken: 1 and 2 whole; in 3 the classical detector (the learned one needs a person's
boxes, and tests/integration/test_detector.py trains it); 4; in 5 `charaid export-crops` then
`dvc add`; in 6 the labeled-folders sentence, ending in `dvc repro`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import pytest
import yaml

from charaid.frames import read_index
from charaid.truth import read_truth
from tests.helpers import (
    ROOT,
    TINY,
    named_correctly,
    new_project,
    render_show,
    sh,
    write_video,
)

pytestmark = pytest.mark.slow

# Sizing only. The demo still renders in `dvc repro` (train_detector reads its truth folder,
# which names none of the user's videos), so it is kept tiny as in test_pipeline.
SIZE = {
    "make_demo": TINY["make_demo"],
    "train_detector": TINY["train_detector"],
    "detect_faces": {"extra_scale": TINY["detect_faces"]["extra_scale"]},  # speed, as TINY's
    "split": {"test_per_class": 0.25},  # a fraction: the tiny show has a few dozen crops a class
    "train": {"epochs": 20, "batch_size": 10},
    "annotate_samples": {"count": 2},
}
# The user's show: three characters and some passers-by in two short episodes. Another seed
# than the demo's, and other file names: nothing of the demo can stand in for it.
SHOW = {
    "seed": 7,
    "characters": 3,
    "extras": 4,
    "episodes": 2,
    "seconds": 12,
    "fps": 2,
    "width": 640,
    "height": 360,
}
SHOW_NAME = "myshow-e"
CLIP = 8  # frames of the held-out episode that `charaid predict` gets as a video (4 s)

# ----------------------------------------------------------------------------- the README


def section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def steps(own_show: str) -> dict[int, str]:
    """The numbered steps, `1. **Episodes in.** ...`, by number."""
    parts = re.split(r"^(\d+)\. (?=\*\*)", own_show, flags=re.M)
    found = {int(n): body for n, body in zip(parts[1::2], parts[2::2], strict=True)}
    assert sorted(found) == list(range(1, 7)), f"README's own-show steps: {sorted(found)}"
    return found


def code_spans(text: str) -> list[str]:
    """Inline code (`...`, possibly wrapped over lines), whitespace collapsed; no code blocks."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", text)]


def sh_lines(text: str) -> list[str]:
    """The command lines of the ```sh blocks, comments dropped."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def commands(text: str) -> list[str]:
    return [c for c in code_spans(text) if re.match(r"(charaid|dvc)( |$)", c)]


def settings(text: str) -> dict[str, dict]:
    """`section.key: value` spans as {section: {key: value}}; a bare `key: value` belongs to the
    section named last (step 2: `fps: 2` after `extract_frames.input: ...`)."""
    found: dict[str, dict] = defaultdict(dict)
    last = None
    for span in code_spans(text):
        match = re.fullmatch(r"(?:([a-z_]+)\.)?([a-z_]+): (.+)", span)
        if not match:
            continue
        part, key, value = match.groups()
        last = part or last
        assert last, f"README: `{span}` names no params section"
        found[last][key] = yaml.safe_load(value)
    return dict(found)


def bullet(step: str, start: str) -> str:
    for item in re.split(r"^\s*- ", step, flags=re.M)[1:]:
        if item.startswith(start):
            return item
    raise AssertionError(f"README step has no bullet starting {start!r}:\n{step}")


def sentence(step: str, needle: str) -> str:
    for part in re.split(r"(?<=\.)\s+", " ".join(step.split())):
        if needle in part:
            return part
    raise AssertionError(f"README step has no sentence with {needle!r}:\n{step}")


# ----------------------------------------------------------------------------- the project


def run(project: Path, command: str, placeholders: dict[str, str] | None = None):
    for old, new in (placeholders or {}).items():
        command = command.replace(old, new)
    return sh(project, "bash", "-ec", command)  # the venv's bin first on PATH: "activated"


def set_params(project: Path, changes: dict[str, dict]) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    for part, values in changes.items():
        assert part in params, f"README sets {part}.*, not a params.yaml section"
        params[part].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def box(row: dict) -> tuple[float, float, float, float]:
    return tuple(float(row[c]) for c in "xywh")


def name_the_folders(project, unsorted, labeled, other, truth) -> Counter:
    """The person of step 5: every exported crop, `unsorted/<video>/<frame>_<k>.png`, moved into
    `labeled/<character>/<video>/` (anyone outside the cast: `labeled/<other>/`), or deleted
    when it is no face (no truth face overlaps it by IoU 0.5). The crop's box is looked up in
    data/faces/index.csv, as a person would look at the frame."""
    from charaid.boxes import iou

    index = {row["crop"]: row for row in read_index(project / "data" / "faces" / "index.csv")}
    counts: Counter = Counter()
    pictures = sorted(unsorted.rglob("*.png"))
    assert len(pictures) == len(index), "export-crops wrote one picture per crop"
    for picture in pictures:
        row = index[picture.relative_to(unsorted).with_suffix("").as_posix()]
        faces = truth.get((row["video"], row["frame"]), [])
        best = max(faces, key=lambda t: iou(box(row), box(t)), default=None)
        if best is None or iou(box(row), box(best)) < 0.5:
            picture.unlink()
            counts["(not a face)"] += 1
            continue
        name = best["character"] if best["role"] == "cast" else other
        (labeled / name / row["video"]).mkdir(parents=True, exist_ok=True)
        shutil.move(picture, labeled / name / row["video"] / picture.name)
        counts[name] += 1
    return counts


def truth_names(faces: list[dict], other: str) -> list[tuple[str, tuple]]:
    return [(f["character"] if f["role"] == "cast" else other, box(f)) for f in faces]


# ----------------------------------------------------------------------------- the test


def test_readme_own_show_commands_train_a_model_of_the_show(tmp_path: Path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    own = steps(section(readme, "Your own show"))
    episodes, truth_dir = render_show(tmp_path / "episodes", SHOW_NAME, ".mkv", **SHOW)
    truth = read_truth(truth_dir)
    cast = {f["character"] for faces in truth.values() for f in faces if f["role"] == "cast"}
    assert len(cast) == SHOW["characters"]
    project = new_project(tmp_path / "project", SIZE)

    # 1. Episodes in: copied and put under DVC, committed.
    lines = sh_lines(own[1])
    assert lines and any("~/episodes/*.mkv" in line for line in lines), lines
    for line in lines:
        run(project, line, {"~/episodes": str(tmp_path / "episodes")})
    videos = project / "data" / "raw" / "videos"
    assert sorted(p.name for p in videos.iterdir()) == sorted(p.name for p in episodes)
    assert sh(project, "git", "ls-files", "data/raw/videos.dvc").stdout.strip()
    assert sh(project, "git", "status", "--porcelain", "data/raw").stdout == ""

    # 2. Point params at them; 3. the classical detector.
    point = settings(own[2])
    assert point.get("extract_frames", {}).get("input") == "data/raw/videos", point
    set_params(project, point)
    classical = settings(bullet(own[3], "*Classical*"))
    assert classical.get("detect_faces", {}).get("backend"), classical
    set_params(project, classical)

    # 4. Cut the faces.
    (cut,) = commands(own[4])
    run(project, cut)
    faces = read_index(project / "data" / "faces" / "index.csv")
    assert {row["video"] for row in faces} == {p.stem for p in episodes}  # the show, not the demo

    # 5. Label them: export the crops; the person names the folders; dvc add.
    five = commands(own[5])
    (export,) = [c for c in five if c.startswith("charaid export-crops")]
    adds = [c for c in five if c.startswith("dvc add")]
    assert len(adds) == 1, five
    run(project, export)
    (unsorted,) = [s.split("/<video>")[0] for s in code_spans(own[5]) if "/<video>/" in s]
    (other,) = [s[:-1] for s in code_spans(own[5]) if re.fullmatch(r"\w+/", s)]
    labeled = project / adds[0].split()[-1]
    sorted_counts = name_the_folders(project, project / unsorted, labeled, other, truth)
    assert set(sorted_counts) - {"(not a face)"} == cast | {other}, sorted_counts
    run(project, adds[0])
    assert (labeled.parent / f"{labeled.name}.dvc").is_file()

    # 6. Train: the labeled-folders settings, then dvc repro.
    train = sentence(own[6], "`dvc repro`")
    six = settings(train)
    assert six.get("label", {}).get("from") == "folders", train
    set_params(project, six)
    (repro,) = commands(train)
    assert repro.startswith("dvc repro"), train
    run(project, repro)

    model = json.loads((project / "models" / "model.json").read_text())
    assert sorted(model["classes"]) == sorted(cast | {other})
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert any(d["path"] == "data/raw/videos" for d in lock["stages"]["extract_frames"]["deps"])
    label_deps = [d["path"] for d in lock["stages"]["label"]["deps"]]
    assert labeled.relative_to(project).as_posix() in label_deps, label_deps
    test_ids = (project / "data" / "split" / "test.csv").read_text().splitlines()[1:]
    held_out = {Path(line.split(",")[0]).parts[1] for line in test_ids}
    assert len(held_out) == 1, held_out  # split.by episode: one whole episode held out
    evaluation = json.loads((project / "metrics" / "eval.json").read_text())
    assert set(evaluation["per_class"]) == cast | {other}
    assert evaluation["accuracy"] >= 0.7, evaluation  # chance: 1 / 4

    # Predict and serve: `charaid predict shots/ episode.mkv --out predictions`, on the first
    # seconds of the held-out episode and two of its other frames as pictures.
    (predict,) = [c for c in sh_lines(section(readme, "Predict and serve")) if
                  c.startswith("charaid predict")]  # fmt: skip
    (episode,) = held_out
    capture = cv2.VideoCapture(str(videos / f"{episode}.mkv"))
    pictures = []
    while (picture := capture.read()[1]) is not None:
        pictures.append(picture)
    capture.release()
    clip = write_video(tmp_path / f"{episode}.mkv", pictures[:CLIP], SHOW["fps"])
    shots = tmp_path / "shots"
    shots.mkdir()
    richest = sorted(
        range(CLIP, len(pictures)),
        key=lambda i: -sum(f["role"] == "cast" for f in truth.get((episode, str(i)), [])),
    )[:2]
    for i in richest:
        cv2.imwrite(str(shots / f"frame{i:04d}.png"), pictures[i])
    run(project, predict, {"shots/": f"{shots}/", "episode.mkv": str(clip)})
    records = json.loads((project / "predictions" / "predictions.json").read_text())
    sampled = [r["frame"] for r in records if "frame" in r]
    assert len(records) - len(sampled) == 2 and sampled and max(sampled) < CLIP, records
    found = matched = right = 0  # truth faces found; of those named (not unknown), right
    for record in records:
        frame = record["frame"] if "frame" in record else int(Path(record["image"]).stem[5:])
        assert (project / "predictions" / record["annotated"]).is_file()
        faces = truth_names(truth.get((episode, str(frame)), []), other)
        found += named_correctly(record["faces"], faces)[0]
        known = [f for f in record["faces"] if f["name"] != "unknown"]
        m, r = named_correctly(known, faces)
        matched, right = matched + m, right + r
    assert {f["name"] for r in records for f in r["faces"]} & cast
    assert found >= 10 and matched >= found / 3, (found, matched)
    assert right / matched >= 0.8, (found, matched, right)
