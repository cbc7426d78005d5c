"""split: stratified train/test manifests with a fixed test holdout per class, seeded.

`by` says what is held out whole:
- `crop`: single crops. Each class is shuffled by its own generator (seeded from the split seed
  and the class name) after sorting by crop id, so the split does not depend on input order and
  adding a class leaves the others' splits unchanged. Near-identical neighbouring frames of one
  shot can land on both sides, which flatters the test score.
- `shot`: runs of consecutive frames of one video (or pictures of one folder, in name order)
  whose faces look alike: two neighbouring frames are one shot when a face of one and a face of
  the other with the same label have 64-bit dHashes (of their crops) within SHOT_DISTANCE.
- `episode`: whole videos (scenes: whole picture folders; labeled folders:
  `<character>/<video>/` sub-folders), so that no video has crops on both sides. Crops that
  come from fewer than two videos (pictures of one folder, labeled folders without video
  sub-folders) are split by shot instead, with a line that says so.

For `shot` and `episode`, groups are drawn in a seeded order and held out while they bring a
class still short of its test count and leave every class of theirs some training crops; a
group that would give a class more than twice its count is taken only when nothing else does.
So each class gets at least its count when the groups allow (usually a few more); a class
that cannot is named in a warning.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from charaid.atomic import atomic_dir
from charaid.dataset import OTHERSHOW, SCENE_ROLES
from charaid.errors import CharaidError
from charaid.frames import dhash, hamming

FIELDS = ["id", "label"]
SHOT_DISTANCE = 10  # of 64 bits: unrelated face crops differ by ~24-32, a held pose by a few


def holdout_size(label: str, n: int, test_per_class: float) -> int:
    """Test crops for a class of `n`; at least one crop must stay for training."""
    if test_per_class >= 1:
        if test_per_class != int(test_per_class):
            raise CharaidError(
                f"params.yaml: split.test_per_class must be a whole count >= 1 or a fraction in "
                f"(0, 1) (got {test_per_class})"
            )
        k = int(test_per_class)
    else:
        k = max(1, int(round(n * test_per_class))) if test_per_class > 0 else 0
    if k >= n:
        raise CharaidError(
            f"split: class {label!r} has {n} crops, not enough to hold out {k} for testing and "
            "keep some for training; lower split.test_per_class or add crops"
        )
    return k


def _class_rng(seed: int, label: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{label}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _natural(text: str) -> tuple:
    """Sort key that puts frame 9 before frame 10 and `a_2.jpg` before `a_10.jpg`."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text))


def origin(row: dict) -> tuple[str | None, str]:
    """(video, frame) a dataset row's crop was cut from, from its `source` (and `id`); video
    None where the row does not say (a picture directly in a labeled `<character>/` folder)."""
    role, source = row.get("role", ""), row.get("source", "")
    if role == "folder":  # id `<character>/<video>/.../<frame>_<k>.png` (export-crops' names)
        path = PurePosixPath(row["id"])
        return "/".join(path.parts[1:-1]) or None, re.sub(r"_\d+$", "", path.stem)
    if role in SCENE_ROLES:  # source: the picture; its folder is the episode
        path = Path(source)
        return str(path.parent), path.name
    video, sep, frame = source.rpartition("#")  # truth: `<video>#<frame>`
    if sep:
        return video, frame
    return None, source or row["id"]


def episode_keys(rows: list[dict]) -> list[str]:
    """The video (episode) of each row; "" for rows that carry none (a picture directly in a
    labeled `<character>/` folder)."""
    return ["" if key is None else str(key) for key, _ in map(origin, rows)]


def _shots_instead(
    rows: list[dict],
    test_per_class: float,
    seed: int,
    images: list[np.ndarray] | np.ndarray | None,
    keys: list[str],
) -> dict[str, list[dict]]:
    """split.by episode where the crops do not come from two or more known videos: whole
    shots are the next best thing, said in one line."""
    why = "carry no video" if keys and not any(keys) else f"come from one video ({keys[0]})"
    parts = split_rows(rows, test_per_class, seed, "shot", images)  # an error: its line alone
    print(
        f"split.by episode: the crops {why}, so whole shots are held out instead (keep "
        "labeled crops in <character>/<video>/ folders for episodes)"
    )  # stdout: a note on what was done, not a warning (stderr keeps errors to one line)
    return parts


def shot_keys(rows: list[dict], images: list[np.ndarray]) -> list[str]:
    """The shot of each row: `<video>#<n>`, n counting runs of look-alike neighbouring frames."""
    hashes = [dhash(image) for image in images]
    frames: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, row in enumerate(rows):
        video, frame = origin(row)
        # without a video, the folder the crop is stored in is its sequence
        video = video if video is not None else f"?{PurePosixPath(row['id']).parent}"
        frames[video][frame].append(i)
    keys = [""] * len(rows)
    for video, by_frame in frames.items():
        shot, previous = 0, None
        for frame in sorted(by_frame, key=_natural):
            members = by_frame[frame]
            alike = previous is not None and any(
                rows[a]["label"] == rows[b]["label"]
                and hamming(hashes[a], hashes[b]) <= SHOT_DISTANCE
                for a in previous
                for b in members
            )
            if previous is not None and not alike:
                shot += 1
            for i in members:
                keys[i] = f"{video}#{shot}"
            previous = members
    return keys


def _group_holdout(
    items: list[dict], keys: list[str], test_per_class: float, seed: int, by: str
) -> tuple[list[dict], list[dict]]:
    """(train, test) with every group (shot or episode) wholly on one side."""
    n = Counter(row["label"] for row in items)
    want = {label: holdout_size(label, n[label], test_per_class) for label in sorted(n)}
    groups: dict[str, list[dict]] = defaultdict(list)
    for row, key in zip(items, keys, strict=True):
        groups[key].append(row)
    names = sorted(groups)
    digest = hashlib.sha256(f"{seed}:split.by {by}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    order = [names[i] for i in rng.permutation(len(names))]
    counts = {g: Counter(row["label"] for row in groups[g]) for g in names}
    got: Counter = Counter()
    held: set[str] = set()
    for bounded in (True, False):
        for g in order:
            c = counts[g]
            if g in held or not any(got[label] < want[label] for label in c):
                continue
            if any(n[label] - got[label] - m < 1 for label, m in c.items()):
                continue  # every class keeps some training crops
            if bounded and any(got[label] + m > 2 * want[label] for label, m in c.items()):
                continue
            held.add(g)
            got.update(c)
    unit = "episode" if by == "episode" else "shot"
    if not held and any(want.values()):
        raise CharaidError(
            f"split.by {by}: no {unit} can be held out whole ({len(groups)} {unit}s; each "
            "holds the last training crops of some class); add videos, lower "
            "split.test_per_class, or use split.by: crop"
        )
    for label in sorted(want):
        if got[label] < want[label]:
            spread = sum(1 for g in names if counts[g][label])
            print(
                f"warning: split.by {by}: class {label!r} gets {got[label]} test crops of the "
                f"{want[label]} asked for (its {n[label]} crops lie in {spread} {unit}s)",
                file=sys.stderr,
            )
    test = [row for g in names if g in held for row in groups[g]]
    train = [row for g in names if g not in held for row in groups[g]]

    def order_key(row: dict) -> tuple[str, str]:
        return row["label"], row["id"]

    return sorted(train, key=order_key), sorted(test, key=order_key)


def split_rows(
    rows: list[dict],
    test_per_class: float,
    seed: int,
    by: str = "crop",
    images: list[np.ndarray] | np.ndarray | None = None,
) -> dict[str, list[dict]]:
    """{'train', 'test', 'reject'}: rows of each part; other-show faces go to 'reject' only.

    `by` is what is held out whole (crop, shot, episode; see the module); `shot` needs the
    rows' crops (`images`, in the order of `rows`); params.yaml's schema checks `by`."""
    by_class: dict[str, list[dict]] = defaultdict(list)
    reject = []
    kept: list[tuple[dict, np.ndarray | None]] = []
    for i, row in enumerate(rows):
        if row["label"].startswith(f"{OTHERSHOW}:"):
            reject.append({"id": row["id"], "label": row["label"]})
        else:
            by_class[row["label"]].append({"id": row["id"], "label": row["label"]})
            kept.append((row, None if images is None else images[i]))
    if len(by_class) < 2:
        raise CharaidError(
            f"split: need at least 2 classes to train a classifier, found {len(by_class)} "
            f"({', '.join(by_class) or 'none'})"
        )
    reject = sorted(reject, key=lambda r: r["id"])
    if by != "crop":
        kept.sort(key=lambda pair: pair[0]["id"])  # the result must not depend on input order
        source = [row for row, _ in kept]
        if by == "shot":
            if images is None:
                raise ValueError("split.by shot needs the crops (images)")
            keys = shot_keys(source, [image for _, image in kept])
        elif by == "episode":
            keys = episode_keys(source)
            if len(set(keys)) < 2:  # pictures of one folder, or crops sorted without videos
                return _shots_instead(rows, test_per_class, seed, images, keys)
        else:
            raise ValueError(f"split.by {by!r}: not crop, shot or episode")
        items = [{"id": row["id"], "label": row["label"]} for row in source]
        train, test = _group_holdout(items, keys, test_per_class, seed, by)
        return {"train": train, "test": test, "reject": reject}
    train, test = [], []
    for label in sorted(by_class):
        items = sorted(by_class[label], key=lambda r: r["id"])
        k = holdout_size(label, len(items), test_per_class)
        order = _class_rng(seed, label).permutation(len(items))
        test += [items[i] for i in sorted(order[:k])]
        train += [items[i] for i in sorted(order[k:])]
    return {"train": train, "test": test, "reject": reject}


def write_split(parts: dict[str, list[dict]], out_dir: Path) -> dict:
    with atomic_dir(out_dir) as tmp:
        for name, rows in parts.items():
            with open(tmp / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=FIELDS)
                writer.writeheader()
                writer.writerows(rows)
    return {name: len(rows) for name, rows in parts.items()}
