"""annotate_samples: draw a box and the character's name on every face of sample frames."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from charaid.atomic import atomic_dir, write_json
from charaid.config import DetectFacesParams, PredictParams
from charaid.detect import make_detector
from charaid.errors import CharaidError
from charaid.frames import read_index
from charaid.media import read_image, write_image
from charaid.predict import Recognizer
from charaid.visualize import draw_faces


def pick_samples(frame_rows: list[dict], face_rows: list[dict], count: int) -> list[dict]:
    """`count` frames that have faces, spread evenly over the whole input (deterministic)."""
    with_faces = {(r["video"], str(r["frame"])) for r in face_rows}
    candidates = [r for r in frame_rows if (r["video"], str(r["frame"])) in with_faces]
    if not candidates:
        raise CharaidError("annotate_samples: no frame has a detected face")
    count = min(count, len(candidates))
    step = len(candidates) / count
    return [candidates[int(i * step + step / 2)] for i in range(count)]


def annotate_samples(
    frames_dir: Path,
    faces_dir: Path,
    model_dir: Path,
    out_dir: Path,
    detect_params: DetectFacesParams,
    predict_params: PredictParams,
    count: int,
) -> dict:
    """Write annotated JPEGs and `annotations.json` (every face drawn: box, name, top-k)."""
    samples = pick_samples(
        read_index(frames_dir / "index.csv"), read_index(faces_dir / "index.csv"), count
    )
    rec = Recognizer.from_params(model_dir, predict_params)
    detector = make_detector(detect_params)
    record = []
    with atomic_dir(out_dir) as tmp:
        for row in tqdm(samples, desc="annotate_samples", unit="frame"):
            image = read_image(frames_dir / row["path"])
            faces = rec.recognize(
                image,
                detector,
                detect_params.margin,
                predict_params.unknown_threshold,
                predict_params.top_k,
            )
            name = f"{row['video']}_{row['frame']}.jpg"
            write_image(
                tmp / name,
                draw_faces(image, [(f.box, f.name, f.probability) for f in faces], rec.classes),
            )
            record.append(
                {
                    "image": name,
                    "source": row["path"],
                    "faces": [
                        {
                            "box": [round(v, 1) for v in f.box],
                            "name": f.name,
                            "probability": f.probability,
                            "top": [[n, p] for n, p in f.top],
                        }
                        for f in faces
                    ],
                }
            )
        write_json(tmp / "annotations.json", record)
    return {"images": len(record), "faces": sum(len(r["faces"]) for r in record)}
