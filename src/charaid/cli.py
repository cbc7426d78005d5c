"""The `charaid` command: name the characters in pictures with the model the pipeline trained."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from charaid import __version__
from charaid.config import load_params
from charaid.stage import run


def predict(args: argparse.Namespace) -> None:
    from charaid.frames import Sampling
    from charaid.predict import Predictor
    from charaid.predict_files import collect_inputs, predict_files

    params = load_params(args.params)
    files = collect_inputs(args.paths)  # before loading the model: a typo fails at once
    predictor = Predictor.load(args.model, params)
    sampling = Sampling(
        fps=args.fps,
        dedup_distance=params["extract_frames"]["dedup_distance"],
        max_frames=args.max_frames,
    )
    records = predict_files(predictor, files, args.out, sampling, args.batch, echo=not args.json)
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))


def serve(args: argparse.Namespace) -> None:
    from charaid.predict import Predictor
    from charaid.serve import Limits, run_server

    predictor = Predictor.load(args.model, load_params(args.params))
    limits = Limits(
        max_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=int(args.max_megapixels * 1_000_000),
    )
    run_server(predictor, limits, args.host, args.port, args.threads)


def detect_eval(args: argparse.Namespace) -> None:
    from charaid.detect_eval import format_table, score_folder
    from charaid.errors import CharaidError

    if args.errors and args.errors.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise CharaidError(f"--errors {args.errors}: name a .png or .jpg picture")
    if args.model:
        from charaid.naming_eval import Namer, character_names

        character_names(args.folder)  # a set that names no characters stops before any work
    params = load_params(args.params)
    namer = Namer.load(args.model, params) if args.model else None
    result = score_folder(
        args.folder, params["detect_faces"], args.errors, args.curve, args.fit_boxes, namer
    )
    if "box_fit" in result and not args.json:
        fit = result["box_fit"]
        print(
            f"box fit on {fit['pairs']} matched faces (IoU 0.3): side x{fit['scale']:.3f}, "
            f"centre moved ({fit['dx']:+.3f}, {fit['dy']:+.3f}) detector sides"
        )
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    if namer is not None and not args.json:
        from charaid.naming_eval import format_naming

        print(format_naming(result))
    if args.errors:
        print(f"missed faces and false detections: {args.errors}", file=sys.stderr)
    if args.curve:
        print(f"precision-recall curve over detection scores: {args.curve}", file=sys.stderr)


def export_crops(args: argparse.Namespace) -> None:
    from charaid.faces import export_crops as export

    count = export(args.faces, args.out)
    print(f"{count} crops written to {args.out}/<video>/; sort them into data/labeled/<character>/")


def label(args: argparse.Namespace) -> None:
    from charaid.labelhelp import suggest

    model = Path(args.model) if args.model else None
    if model is None and (Path("models") / "model.json").is_file() and not args.no_model:
        model = Path("models")
    predict = load_params(args.params).get("predict") if Path(args.params).is_file() else None
    summary = suggest(
        Path(args.faces),
        Path(args.out),
        model,
        args.clusters,
        args.seed,
        predict,
        Path(args.labeled),
    )
    how = "pre-sorted by the model" if summary["mode"] == "presort" else "clustered"
    if summary["mode"] == "none":
        print(f"label: nothing new: all {summary['skipped']} crops are in {args.labeled}/ already")
        return
    print(
        f"label: {summary['crops']} crops {how} into {len(summary['folders'])} folders "
        f"({summary['skipped']} already in {args.labeled}/ skipped)"
    )
    print(f"open {args.out}/index.html, fix the folders, then copy them into data/labeled/")


def _positive(kind: Callable[[str], float], zero: bool = False) -> Callable[[str], float]:
    """An argparse type: a number > 0 (>= 0 with `zero`)."""

    def parse(text: str) -> float:
        value = kind(text)
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be {'>=' if zero else '>'} 0 (got {text})")
        return value

    parse.__name__ = getattr(kind, "__name__", "number")  # argparse names it in its errors
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="charaid", description=__doc__)
    parser.add_argument("--version", action="version", version=f"charaid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="detect and name the faces in pictures and videos")
    p.add_argument("paths", nargs="+", help="pictures, videos, or folders of them")
    p.add_argument("--model", default="models", help="folder with model.npz and model.json")
    p.add_argument("--params", default="params.yaml", help="detector and threshold settings")
    p.add_argument("--out", default="predictions", help="where annotated pictures go")
    p.add_argument("--json", action="store_true", help="print the JSON record to stdout")
    p.add_argument(
        "--batch",
        type=_positive(int),
        default=16,
        help="pictures whose faces are classified together (default 16)",
    )
    p.add_argument(
        "--fps",
        type=_positive(float),
        default=1.0,
        help="video frames sampled per second (default 1)",
    )
    p.add_argument(
        "--max-frames",
        type=_positive(int, zero=True),
        default=200,
        help="most frames kept per video, held in memory (default 200; 0 = all)",
    )
    p.set_defaults(func=predict)

    s = sub.add_parser("serve", help="upload page and JSON API (waitress)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free)")
    s.add_argument("--model", default="models", help="folder with model.npz and model.json")
    s.add_argument("--params", default="params.yaml", help="detector and threshold settings")
    s.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=10.0,
        help="largest upload accepted, in MB (default 10)",
    )
    s.add_argument(
        "--max-megapixels",
        type=_positive(float),
        default=40.0,
        help="largest picture accepted, checked before decoding (default 40)",
    )
    s.add_argument(
        "--threads", type=_positive(int), default=8, help="waitress worker threads (default 8)"
    )
    s.set_defaults(func=serve)

    d = sub.add_parser("detect-eval", help="score the face detector on YOLO-annotated pictures")
    d.add_argument("folder", help="pictures with a YOLO box file (<picture>.txt) beside each")
    d.add_argument(
        "--params",
        default="params.yaml",
        help="detector settings (detect_faces; with --model also predict, label)",
    )
    d.add_argument("--json", action="store_true", help="print the scores as JSON")
    d.add_argument(
        "--model",
        metavar="MODELS",
        help="also name each detection with this trained classifier (as predict does) and score "
        "the names against classes.txt: found and named, per character, confusion",
    )
    d.add_argument(
        "--errors",
        type=Path,
        metavar="PNG",
        help="also draw the missed faces and false detections (IoU 0.5) in a picture",
    )
    d.add_argument(
        "--curve",
        type=Path,
        metavar="CSV",
        help="also write precision and recall (IoU 0.5) at every detection score threshold",
    )
    d.add_argument(
        "--fit-boxes",
        action="store_true",
        help="first fit one scale and offset from the detector's boxes to the folder's own "
        "(matched pairs at IoU 0.3), print it, and score with it: for sets that box whole heads",
    )
    d.set_defaults(func=detect_eval)

    e = sub.add_parser("export-crops", help="write detect_faces' crops out as pictures to sort")
    e.add_argument("--faces", default="data/faces", help="detect_faces output (default data/faces)")
    e.add_argument("--out", default="data/unsorted", help="a new folder (default data/unsorted)")
    e.set_defaults(func=export_crops)
    lb = sub.add_parser("label", help="suggest folders for unlabeled crops (clusters or model)")
    lb.add_argument(
        "faces", nargs="?", default="data/faces", help="detect_faces output (default data/faces)"
    )
    lb.add_argument("--out", default="data/suggested", help="where the folders go")
    lb.add_argument(
        "--model", help="model folder (default: models/ if it has a model; else clusters)"
    )
    lb.add_argument("--no-model", action="store_true", help="cluster on image features only")
    lb.add_argument(
        "--clusters",
        type=_positive(int, zero=True),
        default=0,
        help="cluster into N folders (default: pre-sort when a model exists, else automatic N)",
    )
    lb.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    lb.add_argument(
        "--labeled",
        default="data/labeled",
        help="crops already sorted here (matched by pixels) are not suggested again "
        "(default data/labeled)",
    )
    lb.add_argument("--params", default="params.yaml", help="open-set settings (predict)")
    lb.set_defaults(func=label)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run(lambda: args.func(args))
