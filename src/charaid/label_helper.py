"""`charaid label`: suggest folders for unlabeled face crops, so sorting them is quick.

- No model yet: crops are grouped into clusters on image features (`simple_features`): where
  the colours are (a 3 x 3 grid of Lab histograms), the hair colour (Lab and HSV histograms
  weighted towards the top and sides of the crop), the eye colour (vivid hues across the eye
  band) and a HOG of the grey picture, each block weighing the same; then (`look_features`)
  a few rounds of a small network learning to tell those clusters apart, its features
  clustered again (`charaid.self_label`); PCA to 64 dimensions, then spectral clustering on
  the 15-nearest-neighbour graph (`cluster`). On the 11,679 real crops of holoen-faces (20
  characters; `bench/label_purity.py`, automatic 54 clusters) purity is 0.75 on the image
  features alone and 0.81-0.83 after the default 5 rounds (seeds 0-2, about 6 min).
- A model that knows the user's characters: crops are pre-sorted into one folder per predicted
  class, each file name starting with the confidence (sorting by name puts the doubtful ones
  together); faces the model finds unfamiliar (open-set check, see `charaid.openset`) go to
  `unknown/`. With `--clusters N` the model's features are clustered instead.
- Whose model it is: `make repro` leaves the demo cast's model in models/, and a new show's
  faces must not be filed under the demo's names. A model is used only when every character
  folder of the labeled folder (`--labeled`, default data/labeled/<character>/; `other` and
  `unknown` aside) is one of its classes, and there is at least one such folder. Otherwise
  `label` says so in one line ("label: models/ knows ...; not the characters in data/labeled/
  ...: clustering instead") and clusters on image features. This holds for an explicit
  `--model` too (pre-sorting under the wrong names costs a move for every crop, and a
  mismatched model's features were learned for other faces), and for `--clusters N` with a
  model. To use a model for a show, label a few crops per character first (or point
  `--labeled` at the folder the model was trained on).

Each folder gets an HTML contact sheet (`index.html`, most typical crops first), and the output
folder an `index.html` linking them, so a person can rename, merge and move quickly, then copy
the folders into `data/labeled/`. Crops are read only through `charaid.crops.load_crops`.

Labeling goes in rounds: crops already in the labeled folder are left out of the next round's
suggestions. They are recognised by their pixels (a hash of the decoded picture), not by file
name, so renaming a file or moving it between character folders does not bring it back.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import warnings
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from sklearn.cluster import SpectralClustering
from sklearn.decomposition import PCA

from charaid.atomic import atomic_dir
from charaid.config import PredictParams
from charaid.crops import load_crops
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.media import IMAGE_EXTS, read_image, write_image
from charaid.self_label import ROUNDS, learned_features
from charaid.visualize import UNKNOWN

SUGGESTIONS = "suggestions.csv"


def pixel_hash(image: np.ndarray) -> str:
    """Identifies a picture by its decoded pixels (shape included), whatever its file name."""
    h = hashlib.sha256(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


def labeled_hashes(labeled_dir: Path) -> set[str]:
    """`pixel_hash` of every readable picture under `labeled_dir` (any depth; none if missing).

    The suggestions are lossless PNGs, so a crop copied there keeps its pixels exactly.
    """
    if not labeled_dir.is_dir():
        return set()
    hashes = set()
    for path in sorted(labeled_dir.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(labeled_dir).parts)
        if hidden or path.suffix.lower() not in IMAGE_EXTS or not path.is_file():
            continue
        image = read_image(path)
        if image is not None:  # unreadable ones are `label`'s to report, not this helper's
            hashes.add(pixel_hash(image))
    return hashes


FEATURE_SIDE = 48  # crops are shrunk to this side first: features cost ~0.5 ms a crop
_Y, _X = np.mgrid[0:FEATURE_SIDE, 0:FEATURE_SIDE] / (FEATURE_SIDE - 1)
# Where hair is in a face crop: 0 in an ellipse over the face (a little below the centre),
# rising to 1 at the top and the sides.
_ELLIPSE = np.sqrt(((_X - 0.5) / 0.5) ** 2 + ((_Y - 0.6) / 0.55) ** 2)
HAIR_WEIGHT = np.clip((_ELLIPSE - 0.45) / 0.4, 0, 1).astype(np.float32).ravel()
EYE_BAND = ((_Y > 0.35) & (_Y < 0.7) & (_X > 0.1) & (_X < 0.9)).ravel()
_CELL = (np.minimum(_Y * 3, 2).astype(int) * 3 + np.minimum(_X * 3, 2).astype(int)).ravel()
_HOG = cv2.HOGDescriptor((FEATURE_SIDE,) * 2, (16, 16), (8, 8), (8, 8), 9)


def _lab_bins(lab: np.ndarray, bins: tuple[int, int, int]) -> np.ndarray:
    """Histogram bin of each pixel of an OpenCV Lab picture (a and b: their middle half)."""
    light = lab[..., 0].astype(int) * bins[0] // 256
    a = np.clip((lab[..., 1].astype(int) - 64) * bins[1] // 128, 0, bins[1] - 1)
    b = np.clip((lab[..., 2].astype(int) - 64) * bins[2] // 128, 0, bins[2] - 1)
    return ((light * bins[1] + a) * bins[2] + b).ravel()


def _hellinger(counts: np.ndarray) -> np.ndarray:
    """Square roots of a histogram's shares (unit length; a few pixels of a colour still count)."""
    return np.sqrt(counts / max(float(counts.sum()), 1e-9))


def _feature_blocks(crop: np.ndarray) -> list[np.ndarray]:
    img = cv2.resize(crop, (FEATURE_SIDE,) * 2, interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int64)
    # colour layout: a Lab histogram per cell of a 3 x 3 grid (hair frame, fringe, clothes)
    cells = np.bincount(_CELL * 108 + _lab_bins(lab, (3, 6, 6)), minlength=9 * 108)
    layout = np.concatenate([_hellinger(c) for c in cells.reshape(9, 108)]) / 3
    # hair colour: Lab and HSV histograms weighted towards the top and the sides
    hair_lab = np.bincount(_lab_bins(lab, (4, 8, 8)), weights=HAIR_WEIGHT, minlength=256)
    hsv_bin = ((hsv[:, 0] * 18 // 180) * 4 + hsv[:, 1] * 4 // 256) * 4 + hsv[:, 2] * 4 // 256
    hair_hsv = np.bincount(hsv_bin, weights=HAIR_WEIGHT, minlength=288)
    # eye colour: hues of the strongly coloured pixels across the eyes
    eye = hsv[EYE_BAND]
    vivid = (eye[:, 1] / 255.0) ** 2 * (eye[:, 2] / 255.0)
    eye_hue = np.bincount(eye[:, 0] * 24 // 180, weights=vivid, minlength=24)
    # shape: HOG of the grey picture (hair outline, face and eye shapes, drawing style)
    shape = _HOG.compute(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)).ravel()
    return [layout, _hellinger(hair_lab), _hellinger(hair_hsv), _hellinger(eye_hue), shape]


def simple_features(crops: np.ndarray) -> np.ndarray:
    """Image features of uint8 BGR crops for clustering without a model (see the module doc).

    Five blocks: a 3 x 3 grid of Lab histograms, hair-weighted Lab and HSV histograms, an
    eye-band hue histogram and a HOG. Each block is centred and scaled so that it weighs the
    same (its mean crop norm is 1), over the crops given: features of one batch, not absolute.
    """
    per_crop = [_feature_blocks(crop) for crop in crops]
    if not per_crop:
        return np.zeros((0, 0), np.float32)
    parts = []
    for block in zip(*per_crop, strict=True):
        f = np.array(block, np.float64)
        f -= f.mean(axis=0)
        parts.append(f / max(float(np.linalg.norm(f, axis=1).mean()), 1e-9))
    return np.hstack(parts).astype(np.float32)


def look_features(
    crops: np.ndarray, folders: int, rounds: int, seed: int, image: np.ndarray | None = None
) -> np.ndarray:
    """Features to cluster crops by without a model: `simple_features` (or `image`, already
    computed for these crops), then `rounds` of self-labelling (`charaid.self_label`) for the
    `folders` clusters to come."""
    image = simple_features(crops) if image is None else image
    return learned_features(crops, folders, rounds, seed, image)


def cluster(features: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (numbered by size, largest first) and each crop's distance to its centre.

    PCA to at most 64 dimensions, then spectral clustering on the graph of each crop's 15
    nearest neighbours: it follows the chains of look-alikes that k-means' round clusters cut
    (holoen-faces, 20 / 54 clusters: purity 0.70 / 0.75; k-means on the same features 0.64-0.66
    / 0.71). A cluster can come out empty, so there may be fewer than `k`.
    """
    if len(features) < k:
        raise CharaidError(f"label: {len(features)} crops cannot make {k} clusters; use fewer")
    x = features - features.mean(axis=0)
    if len(x) > 1:  # dims < crops: sklearn takes square data for a graph
        dims = min(64, x.shape[1], len(x) - 1)
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    if k == 1:
        labels = np.zeros(len(x), np.int64)
    else:
        spectral = SpectralClustering(
            n_clusters=k,
            affinity="nearest_neighbors",
            n_neighbors=min(15, len(x) - 1),
            eigen_solver="lobpcg",
            assign_labels="cluster_qr",
            random_state=seed,
        )
        with warnings.catch_warnings():
            # separate groups are what we are after; few crops: a dense solver, as it should
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            warnings.filterwarnings("ignore", message="The problem size")
            # lobpcg short of its tolerance: the embedding is still good enough to cluster
            warnings.filterwarnings("ignore", message="Exited")
            labels = spectral.fit_predict(x)
    centres = {c: x[labels == c].mean(axis=0) for c in np.unique(labels)}
    dist = np.linalg.norm(x - np.array([centres[c] for c in labels]), axis=1)
    sizes = Counter(labels.tolist())
    rank = {c: i for i, (c, _) in enumerate(sorted(sizes.items(), key=lambda t: (-t[1], t[0])))}
    return np.array([rank[c] for c in labels.tolist()]), dist


def auto_clusters(n: int) -> int:
    """A default cluster count: more clusters than characters is cheaper to fix (merging two
    folders is one action, moving crops out of a mixed one is many)."""
    return int(max(2, min(60, round(np.sqrt(n / 4)))))


def _file_name(crop_id: str, prefix: str = "") -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(crop_id).with_suffix("").as_posix())
    return f"{prefix}{stem}.png"


def _sheet(title: str, files: list[str], notes: list[str]) -> str:
    cells = "\n".join(
        f'<figure><img src="{html.escape(f)}" alt="" loading="lazy">'
        f"<figcaption>{html.escape(n)}</figcaption></figure>"
        for f, n in zip(files, notes, strict=True)
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif}figure{display:inline-block;margin:2px;text-align:center}"
        "img{width:72px;height:72px;image-rendering:pixelated}figcaption{font-size:9px}"
        f"</style><h1>{html.escape(title)} ({len(files)})</h1>\n{cells}\n"
    )


def write_suggestions(
    out_dir: Path, rows: list[dict], crops: np.ndarray, folders: list[str], notes: list[str],
    order: np.ndarray,
) -> dict[str, int]:  # fmt: skip
    """Folders of crops (in `order` within each), a contact sheet each, an index, a CSV."""
    counts = Counter(folders)
    with atomic_dir(out_dir) as tmp:
        per_folder: dict[str, list[tuple[str, str]]] = {f: [] for f in sorted(counts)}
        table = []
        for rank, i in enumerate(order):
            folder = folders[i]
            prefix = f"{notes[i]}_{rank:05d}_" if notes[i] else f"{rank:05d}_"
            name = _file_name(rows[i]["crop"], prefix)
            (tmp / folder).mkdir(exist_ok=True)
            write_image(tmp / folder / name, crops[i])
            per_folder[folder].append((name, notes[i]))
            table.append({"crop": rows[i]["crop"], "folder": folder, "file": f"{folder}/{name}"})
        for folder, items in per_folder.items():
            page = _sheet(folder, [n for n, _ in items], [t for _, t in items])
            (tmp / folder / "index.html").write_text(page, encoding="utf-8")
        links = "".join(
            f'<li><a href="{html.escape(f)}/index.html">{html.escape(f)}</a> ({counts[f]})</li>'
            for f in per_folder
        )
        (tmp / "index.html").write_text(
            "<!doctype html><meta charset=utf-8><title>suggested folders</title>"
            f"<h1>suggested folders</h1><ul>{links}</ul>\n",
            encoding="utf-8",
        )
        with open(tmp / SUGGESTIONS, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["crop", "folder", "file"])
            writer.writeheader()
            writer.writerows(sorted(table, key=lambda r: r["crop"]))
    return dict(sorted(counts.items()))


NOT_CHARACTERS = frozenset({"other", UNKNOWN})  # folders of faces outside the cast


def labeled_characters(labeled_dir: Path | None) -> list[str]:
    """The character folders of `labeled_dir`: sub-folders holding a picture, `other` and
    `unknown` aside (none if it is missing)."""
    if labeled_dir is None or not labeled_dir.is_dir():
        return []
    names = []
    for folder in sorted(p for p in labeled_dir.iterdir() if p.is_dir()):
        if folder.name.startswith(".") or folder.name in NOT_CHARACTERS:
            continue
        if any(f.suffix.lower() in IMAGE_EXTS and f.is_file() for f in folder.rglob("*")):
            names.append(folder.name)
    return names


def model_mismatch(model_dir: Path, labeled_dir: Path) -> str:
    """The one line saying why not to use the model; empty when it knows the user's characters.

    The user's characters are the folders of `labeled_dir`: the model must know every one of
    them (by name), and there must be at least one, or the model is somebody else's cast (the
    demo's, or an older show's) and pre-sorting would file the new show under its names.
    """
    meta = model_dir / "model.json"
    try:
        classes = [str(c) for c in json.loads(meta.read_text(encoding="utf-8"))["classes"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CharaidError(f"{meta}: damaged ({exc}); run dvc repro train") from None
    mine = labeled_characters(labeled_dir)
    strangers = [name for name in mine if name not in classes]
    if mine and not strangers:
        return ""
    cast = [c for c in classes if c not in NOT_CHARACTERS] or classes
    knows = ", ".join(cast[:6]) + (f", ... ({len(cast)} in all)" if len(cast) > 6 else "")
    where = f"{labeled_dir.as_posix().rstrip('/')}/"
    if not mine:
        why = f"{where} has no character folders yet to check them against"
    else:
        why = f"not the characters in {where} (it does not know {', '.join(strangers[:6])}"
        why += ", ...)" if len(strangers) > 6 else ")"
    return f"label: {model_dir.as_posix().rstrip('/')}/ knows {knows}; {why}: clustering instead"


def model_outputs(model_dir: Path, crops: np.ndarray, predict: PredictParams | None):
    """Probabilities, open-set scores (or None) and features of the crops under a model."""
    from charaid.predict import Recognizer

    rec = Recognizer.from_params(model_dir, predict) if predict else Recognizer(model_dir)
    probs, feats = rec.outputs(crops)  # one pass: the names and the features to cluster
    return rec, probs, rec.open_set_scores(feats), feats


def suggest(
    faces_dir: Path,
    out_dir: Path,
    model_dir: Path | None = None,
    clusters: int = 0,
    seed: int = 0,
    predict: PredictParams | None = None,
    labeled_dir: Path | None = None,
    rounds: int | None = None,
) -> dict:
    """Write suggested folders for the crops listed in `faces_dir/index.csv`; return a summary.

    With a model that knows the characters of `labeled_dir` (`model_mismatch`) and no
    `clusters`: pre-sort by predicted class; otherwise clusters (`clusters` 0 =
    `auto_clusters`), on that model's features, or on `look_features` (`rounds` of
    self-labelling, None = `self_label.ROUNDS`) when there is no model or it is another cast's
    (the summary's `note` then says so in one line). Crops whose pixels are already in
    `labeled_dir` are skipped (counted in the summary's `skipped`). Without a `labeled_dir`
    the caller vouches for the model (`charaid label` always gives one; a bench
    scoring a model on its own show need not).
    """
    index = faces_dir / "index.csv"
    if not index.is_file():
        raise CharaidError(f"{index}: missing; run detect_faces first (or give its folder)")
    rows = read_index(index)
    if not rows:
        raise CharaidError(f"{index}: lists no crops")
    crops = load_crops(faces_dir, rows)
    known = labeled_hashes(labeled_dir) if labeled_dir is not None else set()
    keep = [i for i, crop in enumerate(crops) if pixel_hash(crop) not in known]
    skipped = len(rows) - len(keep)
    rows, crops = [rows[i] for i in keep], crops[keep]
    has_model = model_dir is not None and (model_dir / "model.json").is_file()
    if model_dir is not None and not has_model:
        raise CharaidError(f"{model_dir}: no trained model; leave out --model to cluster")
    check = has_model and bool(rows) and labeled_dir is not None
    note = model_mismatch(model_dir, labeled_dir) if check else ""
    has_model = has_model and not note  # another cast's model: neither its names nor features
    if not rows:  # every crop is labeled already: an empty suggestion, not a stale one
        folders, notes, order, mode = [], [], np.zeros(0, np.int64), "none"
    elif has_model and not clusters:
        rec, probs, scores, _ = model_outputs(model_dir, crops, predict)
        top = probs.argmax(axis=1)
        conf = probs.max(axis=1)
        folders = []
        for i in range(len(rows)):
            name = rec.name(probs[i], 0.0, score=None if scores is None else scores[i])[0]
            folders.append(name if name == UNKNOWN else rec.classes[top[i]])
        notes = [f"{c:.2f}" for c in conf]
        order = np.argsort(-conf, kind="stable")
        mode = "presort"
    else:
        k = clusters or auto_clusters(len(rows))
        if has_model:
            feats = model_outputs(model_dir, crops, predict)[3]
        else:
            feats = look_features(crops, k, ROUNDS if rounds is None else rounds, seed)
        ids, dist = cluster(feats, k, seed)
        width = len(str(k - 1))
        folders = [f"cluster{c:0{width}d}" for c in ids]
        notes = ["" for _ in rows]
        order = np.lexsort((dist, ids))  # by cluster, most typical first
        mode = "cluster"
    counts = write_suggestions(out_dir, rows, crops, folders, notes, order)
    summary = {"mode": mode, "crops": len(rows), "skipped": skipped, "folders": counts}
    return {**summary, "note": note}


def quality(folders: list[str], truth: list[str]) -> dict:
    """How much work the suggestion leaves: purity, and the moves to fix it.

    Each folder is named after its majority character; every other crop in it needs one move.
    Folders sharing a majority need merging (one action each beyond the first).
    """
    by_folder: dict[str, Counter] = {}
    for f, t in zip(folders, truth, strict=True):
        by_folder.setdefault(f, Counter())[t] += 1
    majority = {f: c.most_common(1)[0] for f, c in by_folder.items()}
    right = sum(n for _, n in majority.values())
    names = Counter(name for name, _ in majority.values())
    return {
        "crops": len(truth),
        "folders": len(by_folder),
        "purity": round(right / len(truth), 4),
        "moves": len(truth) - right,
        "merges": sum(n - 1 for n in names.values()),
        "characters_without_folder": len(set(truth) - set(names)),
    }
