"""`charaid label`: suggest folders for unlabeled face crops, so sorting them is quick.

- No model yet: crops are grouped into clusters (k-means) on simple image features: a hue /
  saturation / value histogram (hair and eye colours tell most characters apart) and a small
  grey thumbnail (face shape, hair outline), standardised and reduced by PCA.
- A model exists: crops are pre-sorted into one folder per predicted class, each file name
  starting with the confidence (sorting by name puts the doubtful ones together); faces the
  model finds unfamiliar (open-set check, see `charaid.openset`) go to `unknown/`. With
  `--clusters N` the model's features are clustered instead.

Each folder gets an HTML contact sheet (`index.html`, most typical crops first), and the output
folder an `index.html` linking them, so a person can rename, merge and move quickly, then copy
the folders into `data/labeled/`. Crops are read only through `charaid.faces.load_crops`.

Labeling goes in rounds: crops already in the labeled folder are left out of the next round's
suggestions. They are recognised by their pixels (a hash of the decoded picture), not by file
name, so renaming a file or moving it between character folders does not bring it back.
"""

from __future__ import annotations

import csv
import hashlib
import html
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from charaid.atomic import atomic_dir
from charaid.errors import CharaidError
from charaid.faces import load_crops
from charaid.frames import read_index
from charaid.media import IMAGE_EXTS, read_image, write_image
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


def simple_features(crops: np.ndarray) -> np.ndarray:
    """Colour histogram + grey thumbnail per uint8 BGR crop (no model needed)."""
    out = []
    for crop in crops:
        img = cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 4, 4], [0, 180, 0, 256, 0, 256])
        hist = np.sqrt(hist.ravel() / hist.sum())  # Hellinger: unit length, small bins count
        grey = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (12, 12), cv2.INTER_AREA)
        grey = grey.ravel().astype(np.float32)
        grey = (grey - grey.mean()) / max(float(np.linalg.norm(grey - grey.mean())), 1e-6)
        # colour weighs more than shape: hair and eyes are what tell characters apart
        out.append(np.concatenate([hist, grey * 0.5]))
    return np.array(out, np.float32)


def cluster(features: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (numbered by size, largest first) and each crop's distance to its centre."""
    if len(features) < k:
        raise CharaidError(f"label: {len(features)} crops cannot make {k} clusters; use fewer")
    x = features - features.mean(axis=0)
    dims = min(48, x.shape[1], len(x))
    x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    dist = np.linalg.norm(x - km.cluster_centers_[km.labels_], axis=1)
    sizes = Counter(km.labels_.tolist())
    rank = {c: i for i, (c, _) in enumerate(sorted(sizes.items(), key=lambda t: (-t[1], t[0])))}
    return np.array([rank[c] for c in km.labels_]), dist


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


def model_outputs(model_dir: Path, crops: np.ndarray, predict: dict | None):
    """Probabilities, open-set scores (or None) and features of the crops under a model."""
    from charaid.models import resize_crops
    from charaid.openset import features_of
    from charaid.predict import Recognizer
    from charaid.train import to_input

    rec = Recognizer.from_params(model_dir, predict) if predict else Recognizer(model_dir)
    probs, scores = rec.probabilities(crops, scores=True)
    feats = features_of(rec.model, to_input(resize_crops(crops, rec.input_size)))
    return rec, probs, scores, feats


def suggest(
    faces_dir: Path,
    out_dir: Path,
    model_dir: Path | None = None,
    clusters: int = 0,
    seed: int = 0,
    predict: dict | None = None,
    labeled_dir: Path | None = None,
) -> dict:
    """Write suggested folders for the crops listed in `faces_dir/index.csv`; return a summary.

    With a model and no `clusters`: pre-sort by predicted class; otherwise k-means clusters
    (`clusters` 0 = `auto_clusters`), on the model's features when there is a model. Crops
    whose pixels are already in `labeled_dir` are skipped (counted in the summary's `skipped`).
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
        feats = model_outputs(model_dir, crops, predict)[3] if has_model else None
        feats = simple_features(crops) if feats is None else feats
        k = clusters or auto_clusters(len(rows))
        ids, dist = cluster(feats, k, seed)
        width = len(str(k - 1))
        folders = [f"cluster{c:0{width}d}" for c in ids]
        notes = ["" for _ in rows]
        order = np.lexsort((dist, ids))  # by cluster, most typical first
        mode = "cluster"
    counts = write_suggestions(out_dir, rows, crops, folders, notes, order)
    return {"mode": mode, "crops": len(rows), "skipped": skipped, "folders": counts}


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
