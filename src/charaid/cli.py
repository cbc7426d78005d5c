"""The `charaid` command: name the characters in pictures with the model the pipeline trained."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from charaid import __version__
from charaid.atomic import write_json
from charaid.config import load_params
from charaid.errors import CharaidError
from charaid.media import IMAGE_EXTS, list_media, read_image, write_image
from charaid.stage import run


def _pictures(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += list_media(path, IMAGE_EXTS)
        elif path.is_file():
            found.append(path)
        else:
            raise CharaidError(f"{path}: no such file or folder")
    return found


def predict(args: argparse.Namespace) -> None:
    from charaid.detect import make_detector
    from charaid.predict import Recognizer
    from charaid.visualize import draw_faces

    params = load_params(args.params)
    rec = Recognizer(args.model)
    detector = make_detector(params["detect_faces"])
    threshold = params["predict"]["unknown_threshold"]
    out = Path(args.out)
    records = []
    for path in _pictures(args.paths):
        image = read_image(path)
        if image is None:
            print(f"warning: {path}: not a readable picture, skipped", file=sys.stderr)
            continue
        faces = rec.recognize(image, detector, params["detect_faces"]["margin"], threshold,
                              params["predict"]["top_k"])
        drawn = draw_faces(image, [(f.box, f.name, f.probability) for f in faces])
        write_image(out / f"{path.stem}.annotated.jpg", drawn)
        records.append({"image": str(path), "faces": [
            {"box": [round(v, 1) for v in f.box], "name": f.name, "probability": f.probability,
             "top": f.top} for f in faces]})
        if not args.json:
            names = ", ".join(f"{f.name} ({f.probability:.2f})" for f in faces) or "no faces"
            print(f"{path}: {names}")
    write_json(out / "predictions.json", records)
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="charaid", description=__doc__)
    parser.add_argument("--version", action="version", version=f"charaid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="detect and name the faces in pictures")
    p.add_argument("paths", nargs="+", help="pictures or folders of pictures")
    p.add_argument("--model", default="models", help="folder with model.npz and model.json")
    p.add_argument("--params", default="params.yaml", help="detector and threshold settings")
    p.add_argument("--out", default="predictions", help="where annotated pictures go")
    p.add_argument("--json", action="store_true", help="print the JSON record to stdout")
    p.set_defaults(func=predict)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run(lambda: args.func(args))
