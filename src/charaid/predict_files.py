"""`charaid predict`: name the faces in pictures and videos; annotated copies + one JSON record.

Pictures are decoded one at a time and grouped into chunks, so the faces of many pictures go
through the classifier in one forward pass while memory stays bounded.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from charaid.atomic import atomic_path, write_json
from charaid.errors import CharaidError
from charaid.frames import Sampling, iter_video
from charaid.media import IMAGE_EXTS, VIDEO_EXTS, list_media, read_image, write_image
from charaid.predict import Face, Predictor, face_record
from charaid.visualize import draw_faces

RECORD_FILE = "predictions.json"
CHUNK_PIXELS = 64_000_000  # bound on the decoded pixels held per chunk (~190 MB of BGR)


@dataclass(frozen=True)
class Picture:
    source: Path
    name: str  # output stem, unique within the run
    image: np.ndarray
    frame: int | None = None  # video frame number
    time: float | None = None
    last: bool = True  # the last picture of its input file (drives the progress bar)


def collect_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files named on the command line, folders expanded (pictures and videos), duplicates once."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = list_media(path, IMAGE_EXTS | VIDEO_EXTS)
        elif path.is_file():
            files = [path]
        else:
            raise CharaidError(f"{path}: no such file or folder")
        for file in files:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                found.append(file)
    if not found:
        raise CharaidError("no pictures or videos found in " + ", ".join(map(str, paths)))
    return found


class Names:
    """Output stems that never collide: `x` for a/x.png, then `x-<hash of path>` for b/x.png."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def claim(self, stem: str, source: Path) -> str:
        digest = hashlib.sha1(str(source.resolve()).encode("utf-8")).hexdigest()[:8]
        candidates = [stem, f"{stem}-{digest}"]
        candidates += (f"{stem}-{digest}-{n}" for n in range(2, 10_000))
        for name in candidates:
            # Case-folded: a/X.png and b/x.png would clash on macOS and Windows.
            if name.casefold() not in self._used:
                self._used.add(name.casefold())
                return name
        raise CharaidError(f"{source}: no free output name")  # pragma: no cover


def iter_pictures(
    files: list[Path], sampling: Sampling, skipped: Callable[[Path], None] = lambda _: None
) -> Iterator[Picture]:
    """Decoded pictures in input order; a video yields its sampled frames."""
    names = Names()
    for path in files:
        if path.suffix.lower() in VIDEO_EXTS:
            # Streamed, one frame ahead (to mark the video's last frame): memory stays bounded.
            frames = iter_video(path, sampling)
            ahead = next(frames, None)
            if ahead is None:
                warn(f"{path}: no decodable frames, skipped")
                skipped(path)
                continue
            count = 0
            while ahead is not None:
                (index, seconds, frame), ahead = ahead, next(frames, None)
                count += 1
                last = ahead is None
                if last and sampling.max_frames and count >= sampling.max_frames:
                    warn(f"{path}: stopped at {count} frames (--max-frames)")
                name = names.claim(f"{path.stem}.f{index:06d}", path)
                yield Picture(path, name, frame, index, seconds, last)
        else:
            image = read_image(path)
            if image is None:
                warn(f"{path}: not a readable picture, skipped")
                skipped(path)
                continue
            yield Picture(path, names.claim(path.stem, path), image)


def chunks(pictures: Iterable[Picture], size: int) -> Iterator[list[Picture]]:
    """Groups of up to `size` pictures, and at most CHUNK_PIXELS decoded pixels."""
    chunk: list[Picture] = []
    pixels = 0
    for pic in pictures:
        chunk.append(pic)
        pixels += pic.image.shape[0] * pic.image.shape[1]
        if len(chunk) >= size or pixels >= CHUNK_PIXELS:
            yield chunk
            chunk, pixels = [], 0
    if chunk:
        yield chunk


def picture_record(pic: Picture, faces: list[Face], annotated: str) -> dict:
    record: dict = {"image": str(pic.source), "annotated": annotated}
    if pic.frame is not None:
        record.update(frame=pic.frame, time=pic.time)
    height, width = pic.image.shape[:2]
    record.update(width=width, height=height, faces=[face_record(f) for f in faces])
    return record


def annotate(image: np.ndarray, faces: list[Face], classes: list[str]) -> np.ndarray:
    """The picture with a box, name and probability on each face, one colour per character."""
    return draw_faces(image, [(f.box, f.name, f.probability) for f in faces], classes)


def predict_files(
    predictor: Predictor,
    files: list[Path],
    out_dir: str | Path,
    sampling: Sampling,
    batch: int = 16,
    echo: bool = True,
) -> list[dict]:
    """Annotate every picture into `out_dir` and write `out_dir/predictions.json`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    faces_seen = 0
    bar = tqdm(total=len(files), desc="predict", unit="file", file=sys.stderr)
    pictures = iter_pictures(files, sampling, skipped=lambda _: bar.update())
    for chunk in chunks(pictures, batch):
        for pic, faces in zip(chunk, predictor.predict_many([p.image for p in chunk]), strict=True):
            annotated = f"{pic.name}.annotated.jpg"
            with atomic_path(out_dir / annotated) as tmp:
                write_image(tmp, annotate(pic.image, faces, predictor.classes))
            records.append(picture_record(pic, faces, annotated))
            faces_seen += len(faces)
            if echo:
                names = ", ".join(f"{f.name} ({f.probability:.2f})" for f in faces)
                where = f"{pic.source}" + (f" frame {pic.frame}" if pic.frame is not None else "")
                tqdm.write(f"{where}: {names or 'no faces'}", file=sys.stdout)
            if pic.last:
                bar.update()
        bar.set_postfix(faces=faces_seen, refresh=False)
    bar.close()
    if not records:
        raise CharaidError("none of the inputs could be read")
    write_json(out_dir / RECORD_FILE, records)
    return records


def warn(message: str) -> None:
    tqdm.write(f"warning: {message}", file=sys.stderr)
