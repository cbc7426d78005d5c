"""The `charaid` command: name the characters in pictures with the model the pipeline trained."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from charaid import __version__
from charaid.config import PARAMS_FILE, load_params
from charaid.stage import CLOSED_PIPE_EXIT, run

FACES = "data/faces"  # detect_faces' output: what export-crops and label read by default


def predict(args: argparse.Namespace) -> None:
    from charaid.frames import Sampling
    from charaid.predict import Predictor
    from charaid.predict_files import collect_inputs, predict_files

    params = load_params(args.params, "--params")
    files = collect_inputs(args.paths)  # before loading the model: a typo fails at once
    predictor = Predictor.load(args.model, params)
    sampling = Sampling(
        fps=args.fps,
        dedup_distance=params.extract_frames.dedup_distance,
        max_frames=args.max_frames,
    )
    records = predict_files(predictor, files, args.out, sampling, args.batch, echo=not args.json)
    if args.json:
        print(json.dumps(records, ensure_ascii=False, indent=2))


def serve(args: argparse.Namespace) -> None:
    from charaid.predict import Predictor
    from charaid.serve import Limits, run_server

    predictor = Predictor.load(args.model, load_params(args.params, "--params"))
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
    params = load_params(args.params, "--params")
    namer = Namer.load(args.model, params) if args.model else None
    result = score_folder(
        args.folder, params.detect_faces, args.errors, args.curve, args.fit_boxes, namer
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
    from charaid.detect_faces import export_crops as export

    count = export(args.faces, args.out)
    print(f"{count} crops written to {args.out}/<video>/; sort them into data/labeled/<character>/")


def label(args: argparse.Namespace) -> None:
    from charaid.label_helper import suggest

    model = Path(args.model) if args.model else None
    if model is None and (Path("models") / "model.json").is_file() and not args.no_model:
        model = Path("models")
    predict = None  # open-set settings: label_helper's own when the default params.yaml is absent
    if args.params != str(PARAMS_FILE) or Path(args.params).is_file():
        predict = load_params(args.params, "--params").predict
    summary = suggest(
        Path(args.faces),
        Path(args.out),
        model,
        args.clusters,
        args.seed,
        predict,
        Path(args.labeled),
        args.rounds,
    )
    if summary["note"]:  # a model that is not for these characters: why it was not used
        print(summary["note"])
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples kept as written; each option's default shown once, taken from
    the code, as "(default: X)"; none for flags and for options without a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default is None or default is False:
            return text
        if default is argparse.SUPPRESS:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with charaid's error shape: a mistyped command line prints its usage, then
    `error: <what>; see charaid <command> --help`, and exits 1 like every other error (plain
    argparse exits 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(1, f"error: {message}; see {self.prog} --help\n")


EXIT_STATUS = f"""\
exit status:
  0    done
  1    an error, a mistyped command line included: error: <what>; <what to do>
  130  interrupted (Ctrl-C)
  {CLOSED_PIPE_EXIT}  stdout closed by its reader (| head): the rest dropped, nothing printed"""


def _command(sub, name: str, summary: str, description: str, examples: str):
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog="examples:\n" + examples,
        formatter_class=HelpFormatter,
    )


def _faces_argument(parser: argparse.ArgumentParser) -> None:
    """FACES, positional in export-crops and label alike; `--faces` is the same, older spelling."""
    parser.add_argument(
        "faces",
        nargs="?",
        default=FACES,
        metavar="FACES",
        help="the detect_faces output folder: index.csv and the crop files",
    )
    parser.add_argument(
        "--faces", dest="faces_flag", metavar="FACES", help="the same as FACES (older spelling)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="charaid",
        description=__doc__,
        epilog="examples:\n"
        "  charaid predict data/demo/videos/ep03.mp4  # name the faces in a video -> predictions/\n"
        "  charaid serve                              # upload page, http://127.0.0.1:8000/\n"
        "  charaid predict --help                     # a command's options and examples\n\n"
        + EXIT_STATUS,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"charaid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    params_help = "the params file: detect_faces and predict settings"

    p = _command(
        sub,
        "predict",
        "detect and name the faces in pictures and videos",
        "Find the faces in pictures and videos and name them with the trained classifier.\n"
        "Writes an annotated copy of every picture (of every sampled video frame) and\n"
        "predictions.json into --out; prints one line per picture, or the record with --json.",
        "  charaid predict data/demo/videos/ep03.mp4      # -> predictions/\n"
        "  charaid predict shots/ episode.mkv --out predictions\n"
        "  charaid predict shots/ --json > faces.json     # the JSON record on stdout",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="pictures, videos, or folders of them")
    p.add_argument("--model", default="models", metavar="DIR", help="the trained classifier")
    p.add_argument("--params", default=str(PARAMS_FILE), metavar="FILE", help=params_help)
    p.add_argument("--out", default="predictions", metavar="DIR", help="where the outputs go")
    p.add_argument("--json", action="store_true", help="print the JSON record to stdout")
    p.add_argument(
        "--batch",
        type=_positive(int),
        default=16,
        metavar="N",
        help="pictures whose faces are classified together, in one forward pass",
    )
    p.add_argument(
        "--fps", type=_positive(float), default=1.0, help="video frames sampled per second"
    )
    p.add_argument(
        "--max-frames",
        type=_positive(int, zero=True),
        default=200,
        metavar="N",
        help="most frames sampled per video (read one at a time, not held in memory); 0 = all",
    )
    p.set_defaults(func=predict)

    s = _command(
        sub,
        "serve",
        "upload page and JSON API (waitress)",
        "Serve an upload page and a JSON API that name the faces in uploaded pictures, with\n"
        "the model and params predict uses. Stops on Ctrl-C.",
        "  charaid serve                                  # http://127.0.0.1:8000/\n"
        "  charaid serve --host 0.0.0.0 --port 8080\n"
        "  curl -s -F file=@shot.png http://127.0.0.1:8000/api/predict",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on")
    s.add_argument("--port", type=int, default=8000, help="port; 0 = any free one")
    s.add_argument("--model", default="models", metavar="DIR", help="the trained classifier")
    s.add_argument("--params", default=str(PARAMS_FILE), metavar="FILE", help=params_help)
    s.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=10.0,
        metavar="MB",
        help="largest upload accepted",
    )
    s.add_argument(
        "--max-megapixels",
        type=_positive(float),
        default=40.0,
        metavar="MP",
        help="largest picture accepted, in megapixels, checked before decoding",
    )
    s.add_argument(
        "--threads", type=_positive(int), default=8, metavar="N", help="waitress worker threads"
    )
    s.set_defaults(func=serve)

    d = _command(
        sub,
        "detect-eval",
        "score the face detector on YOLO-annotated pictures",
        "Score the face detector (the detect_faces settings of --params) on a folder of\n"
        "pictures with a YOLO box file (<picture>.txt) beside each: recall and precision at\n"
        "IoU 0.5 and 0.3, overall and per sub-folder. Every box file is checked first.",
        "  charaid detect-eval my_scenes/\n"
        "  charaid detect-eval my_scenes/ --errors misses.png --curve pr.csv\n"
        "  charaid detect-eval my_scenes/ --model models  # also score the names (classes.txt)\n"
        "  charaid detect-eval my_scenes/ --json > scores.json",
    )
    d.add_argument(
        "folder", metavar="FOLDER", help="pictures with a YOLO box file (<picture>.txt) beside each"
    )
    d.add_argument(
        "--params",
        default=str(PARAMS_FILE),
        metavar="FILE",
        help="the params file: detect_faces settings (with --model also predict, label)",
    )
    d.add_argument("--json", action="store_true", help="print the scores as JSON")
    d.add_argument(
        "--model",
        metavar="DIR",
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
        help="also write precision and recall (IoU 0.5) at every detection score threshold "
        "(learned and onnx: from 0.05 up, below the detector's own cuts, in a second pass)",
    )
    d.add_argument(
        "--fit-boxes",
        action="store_true",
        help="first fit one scale and offset from the detector's boxes to the folder's own "
        "(matched pairs at IoU 0.3), print it, and score with it: for sets that box whole heads",
    )
    d.set_defaults(func=detect_eval)

    e = _command(
        sub,
        "export-crops",
        "write detect_faces' crops out as pictures to sort",
        "Write every crop of detect_faces as a picture, <out>/<video>/<frame>_<k>.png, to sort\n"
        "by hand into data/labeled/<character>/. --out must be new or empty.",
        "  charaid export-crops                           # data/faces -> data/unsorted/\n"
        "  charaid export-crops data/faces --out ~/to-sort",
    )
    _faces_argument(e)
    e.add_argument(
        "--out", default="data/unsorted", metavar="DIR", help="a new or empty folder for them"
    )
    e.set_defaults(func=export_crops, parser=e)

    lb = _command(
        sub,
        "label",
        "suggest folders for unlabeled crops (clusters or model)",
        "Suggest folders for the crops of detect_faces not yet in --labeled: pre-sorted by a\n"
        "trained model that knows your characters, else clustered by look (a small network\n"
        "first learns the crops' own clusters: minutes). Open <out>/index.html, fix the\n"
        "folders, then copy them into data/labeled/.",
        "  charaid label                                  # -> data/suggested/index.html\n"
        "  charaid label --no-model --clusters 20\n"
        "  charaid label --rounds 0                       # image features only: seconds\n"
        "  charaid label data/faces --model models --out /tmp/suggested",
    )
    _faces_argument(lb)
    lb.add_argument("--out", default="data/suggested", metavar="DIR", help="where the folders go")
    lb.add_argument(
        "--model",
        metavar="DIR",
        help="the trained classifier to pre-sort with (without it: models/ when it holds one); "
        "used only when it knows every character folder in --labeled, else clusters",
    )
    lb.add_argument("--no-model", action="store_true", help="cluster, even with a model")
    lb.add_argument(
        "--rounds",
        type=_positive(int, zero=True),
        metavar="N",
        help="clustering without a model: rounds of a network learning the crops' own clusters "
        "first, 5 when not given (0 = image features only: seconds instead of minutes)",
    )
    lb.add_argument(
        "--clusters",
        type=_positive(int, zero=True),
        default=0,
        metavar="N",
        help="cluster into N folders; 0 = pre-sort with a matching model, else an automatic N",
    )
    lb.add_argument("--seed", type=int, default=0, metavar="N", help="clustering seed")
    lb.add_argument(
        "--labeled",
        default="data/labeled",
        metavar="DIR",
        help="crops already sorted here (matched by pixels) are not suggested again",
    )
    lb.add_argument(
        "--params",
        default=str(PARAMS_FILE),
        metavar="FILE",
        help="the params file: open-set settings (predict); skipped if the default is absent",
    )
    lb.set_defaults(func=label, parser=lb)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the command: errors exit 1 with one `error:` line, a
    stdout closed early exits 141 quietly (see `charaid.stage.run`)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "faces_flag", None) is not None:
        if args.faces not in (FACES, args.faces_flag):
            args.parser.error(
                f"FACES and --faces name different folders ({args.faces}, {args.faces_flag}): "
                "give one"
            )
        args.faces = args.faces_flag
    run(lambda: args.func(args))
