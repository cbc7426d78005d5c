"""Face detection and frame extraction speed at 1280x720: raw detectors vs the pipeline's stages.

Rows, each the median of interleaved rounds (every round runs every row once, so all rows see
the same machine load):

- `raw 1 thread`: the bare detector call per frame, one thread, frames already decoded
  (`cv2.CascadeClassifier.detectMultiScale` on the equalised grey frame; `animeface.detect`;
  `LearnedDetector.detect`, with params.yaml's `detect_faces.detector` weights, or untrained
  weights of the shipped architecture when there are none: the time is the same);
- `stage, same work`: `detect_faces`' code path (`charaid.detect_faces.find_faces`: process pool,
  JPEG decoding, crops) with the preprocessing switched off, i.e. the raw row's work on
  `workers` processes: its ratio to the raw row is the parallel speed-up (bar: >= 1.8x on 2
  cores);
- `raw, N at once`: the raw row's frames split over one forked process per core, no decoding,
  no IPC: the speed-up this machine allows for the work at all (memory and cache are shared),
  i.e. the ceiling of the stage's ratio;
- `stage, params.yaml`: the same with the shipped preprocessing (CLAHE on dark frames, unsharp
  mask, border padding, ...): what `dvc repro` runs;
- extraction: `extract_frames`' decoder (`charaid.frames.iter_video`, streamed to disk by
  extract_frames) vs a bare `cv2.VideoCapture.read()` loop over the same video, in input frames
  per second (bar: >= 0.9x).

Run from the repository root (renders a one-episode demo into a temporary folder first):

    python bench/detect_speed.py                      # 64 frames, 3 rounds, every backend
    python bench/detect_speed.py --backends learned,animeface   # the learned detector's bar
    python bench/detect_speed.py --frames 32 --rounds 5 --backends animeface
    python bench/detect_speed.py --video ../shared/data/videos/sakurasou-1080p.mp4   # decode only
"""

from __future__ import annotations

# first: importing charaid picks OpenBLAS's kernels for this CPU (charaid.blas_core), which
# only works before numpy loads
import charaid  # noqa: F401

# isort: split

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import cv2

from charaid.config import DetectFacesParams, load_params, parse_section
from charaid.demo.render import render_demo
from charaid.detect_faces import find_faces, worker_count
from charaid.frames import Sampling, extract_frames, iter_video, read_index

ROOT = Path(__file__).resolve().parents[1]
CASCADE = ROOT.parent / "shared" / "data" / "lbpcascade_animeface.xml"
OFF = {
    "white_balance": False,
    "dark_level": 0,
    "sharpen": 0.0,
    "extra_scale": 0.0,
    "eye_span": 0.0,
    "reject_text": False,
    "pad": 0.0,
}
BAR_STAGE, BAR_DECODE, BAR_LEARNED = 1.8, 0.9, 20.0
DECODE_BASE = "decode: bare VideoCapture.read loop"
DECODE_ROUNDS = 10  # decode rounds per detection round


def make_inputs(tmp: Path, frames: int) -> tuple[Path, list[Path]]:
    """A 1280x720 demo episode of `frames` frames, and every frame of it as a JPEG."""
    seconds = frames / 8
    demo = {"seed": 0, "characters": 6, "extras": 16, "episodes": 1, "seconds": seconds,
            "fps": 8, "width": 1280, "height": 720, "other_show_episodes": 0}  # fmt: skip
    render_demo(parse_section("make_demo", demo), tmp / "demo")
    video = tmp / "demo" / "videos" / "ep01.mp4"
    extract_frames(
        tmp / "demo" / "videos", tmp / "frames", Sampling(every_n_frames=1, dedup_distance=-1)
    )
    rows = read_index(tmp / "frames" / "index.csv")
    return video, [tmp / "frames" / row["path"] for row in rows]


# ----------------------------------------------------------------------------- detection rows


def raw_lbp(cascade: Path, params: DetectFacesParams) -> Callable[[list], None]:
    classifier = cv2.CascadeClassifier(str(cascade))
    size = (params.min_size, params.min_size)

    def run(images: list) -> None:
        for image in images:
            gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
            classifier.detectMultiScale(
                gray, params.scale_factor, params.min_neighbors, minSize=size
            )

    return run


def raw_animeface() -> Callable[[list], None]:
    import animeface
    from PIL import Image

    def run(images: list) -> None:
        for image in images:
            animeface.detect(Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)))

    return run


def raw_learned(folder: str) -> Callable[[list], None]:
    """charaid's own CNN (`LearnedDetector.detect`: resize, network, decoding), one thread."""
    import threadpoolctl

    from charaid import fastops
    from charaid.detector.backend import LearnedDetector

    detector = LearnedDetector(folder, 0.3, 8)

    def run(images: list) -> None:
        fastops.set_num_threads(1)
        try:
            with threadpoolctl.threadpool_limits(1, user_api="blas"):
                for image in images:
                    detector.detect(image)
        finally:
            fastops.set_num_threads(None)

    return run


def detector_folder(params: DetectFacesParams, tmp: Path) -> str:
    """detect_faces.detector if it holds trained weights; else the shipped architecture with
    untrained weights, read with train_detector.mirror's views (the time per frame does not
    depend on the weights' values)."""
    from charaid.config import load_params
    from charaid.detector import backend
    from charaid.detector.net import FaceNet

    folder = Path(params.detector)
    if (folder / backend.WEIGHTS).is_file():
        return str(folder)
    p = load_params(ROOT / "params.yaml").train_detector
    print(f"note: no weights in {folder}: timing untrained weights", file=sys.stderr)
    backend.save(FaceNet(p.widths, p.neck), tmp / "detector", p.input_size, {"mirror": p.mirror})
    return str(tmp / "detector")


def one_thread(raws: list[Callable], images: list) -> None:
    """Run the raw detectors with OpenCV on one thread, as each stage worker runs."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for run in raws:
            run(images)
    finally:
        cv2.setNumThreads(threads)


def all_cores(raws: list[Callable], images: list) -> None:
    """The raw detectors on every core at once: one forked process per core, a slice each."""
    import multiprocessing

    n = os.cpu_count() or 1
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=one_thread, args=(raws, images[i::n])) for i in range(n)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()


def detection_rows(
    backends: list[str], params: DetectFacesParams, paths: list[Path]
) -> dict[str, Callable]:
    """Row name -> a function that processes every frame once."""
    images = [cv2.imread(str(p)) for p in paths]
    names = [str(p) for p in paths]
    rows: dict[str, Callable] = {}
    for backend in backends:
        raws = []
        if backend == "learned":
            raws.append(raw_learned(params.detector))
        if backend in ("animeface", "ensemble"):
            raws.append(raw_animeface())
        if backend in ("lbp", "ensemble"):
            raws.append(raw_lbp(CASCADE, params))
        rows[f"{backend}: raw 1 thread"] = lambda raws=raws: one_thread(raws, images)
        ceiling = f"{backend}: raw, {os.cpu_count()} at once"
        rows[ceiling] = lambda raws=raws: all_cores(raws, images)
        same = replace(params, **OFF, backend=backend, cascade=str(CASCADE))
        shipped = replace(params, backend=backend, cascade=str(CASCADE))
        rows[f"{backend}: stage, same work"] = lambda p=same: find_faces(names, p)
        rows[f"{backend}: stage, params.yaml"] = lambda p=shipped: find_faces(names, p)
    return rows


# ----------------------------------------------------------------------------- decoding rows


def bare_read(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def drain(frames: Iterator) -> None:
    for _ in frames:
        pass


def decode_rows(video: Path) -> dict[str, Callable]:
    every = Sampling(every_n_frames=1, dedup_distance=-1)
    return {
        DECODE_BASE: lambda: bare_read(video),
        "decode: iter_video, every frame": lambda: drain(iter_video(video, every)),
        "decode: iter_video, default sampling": lambda: drain(iter_video(video, Sampling())),
    }


# ----------------------------------------------------------------------------- timing


def interleave(rows: dict[str, Callable], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(rounds):
        for name, fn in rows.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return times


def table(times: dict[str, list[float]], frames: int, base_of: Callable[[str], str]) -> str:
    lines = [f"{'row':40s} {'median s':>9} {'frames/s':>9} {'vs base':>8}"]
    for name, ts in times.items():
        med = statistics.median(ts)
        base = statistics.median(times[base_of(name)])
        lines.append(f"{name:40s} {med:9.3f} {frames / med:9.1f} {base / med:7.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=64, help="frames of the test episode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="learned,animeface,lbp,ensemble")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--video", type=Path, help="only the decode rows, on this video")
    args = parser.parse_args()
    if args.video:
        times = interleave(decode_rows(args.video), args.rounds)
        print(f"{args.video}, rounds: {args.rounds} (medians)")
        print(table(times, bare_read(args.video), lambda name: DECODE_BASE))
        return
    params = load_params(args.params).detect_faces
    backends = args.backends.split(",")
    if not CASCADE.is_file():
        print(f"note: {CASCADE} absent: lbp and ensemble rows skipped", file=sys.stderr)
        backends = [b for b in backends if b in ("learned", "animeface")]
    with tempfile.TemporaryDirectory() as tmp:
        if "learned" in backends:
            params = replace(params, detector=detector_folder(params, Path(tmp)))
        video, paths = make_inputs(Path(tmp), args.frames)
        print(
            f"{len(paths)} frames of 1280x720, {os.cpu_count()} cores, "
            f"stage workers: {worker_count(params)}, rounds: {args.rounds} "
            f"(decode: {args.rounds * DECODE_ROUNDS}), medians"
        )
        times = interleave(detection_rows(backends, params, paths), args.rounds)
        # a decode row takes a fraction of a second: many more rounds for a steady median
        times.update(interleave(decode_rows(video), args.rounds * DECODE_ROUNDS))

    def base_of(name: str) -> str:
        if name.startswith("decode"):
            return DECODE_BASE
        return name.split(":")[0] + ": raw 1 thread"

    print(table(times, len(paths), base_of))
    shipped = "{}: stage, params.yaml"
    if {shipped.format("learned"), shipped.format("animeface")} <= set(times):
        ratio = statistics.median(times[shipped.format("animeface")]) / statistics.median(
            times[shipped.format("learned")]
        )
        print(f"learned vs animeface, stage with params.yaml: {ratio:.1f}x (bar: >= 10x)")
    print(
        f"bars: stage, same work >= {BAR_STAGE}x raw 1 thread; "
        f"iter_video >= {BAR_DECODE}x the bare read loop; learned stage >= {BAR_LEARNED:g} "
        "frames/s"
    )


if __name__ == "__main__":
    main()
