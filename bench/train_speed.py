"""Training and inference speed of charaid's networks: Chainer + charaid.fastops vs PyTorch twins.

Models (`--models`, default all three): `seed_cnn` (50 px, batch 50), `bn_cnn` (64 px, batch 50)
and the face detector `detector` (FaceNet with params.yaml's train_detector widths and neck, on
square patches of train_detector.patch, train_detector.batch_size per step, the stage's loss).
Each implementation of each model runs in its own worker process (own allocator settings, own
thread pools, own peak-RSS counter); the parent interleaves them round by round (every model,
phase and implementation once per round), so all see the same machine load. Run from the
repository root:

    python bench/train_speed.py                       # 5 rounds, every model
    python bench/train_speed.py --models bn_cnn --rounds 3 --raw none
    python bench/train_speed.py --rounds 1 --iters 2 --infer-iters 1   # a smoke run

The PyTorch twins (bench/twins.py) are only the yardstick (requirements-bench.txt); without torch
the torch rows are skipped. The output ends with one `<model> <phase> ours/torch <ratio>` line per
model and phase.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import flops

ROOT = Path(__file__).resolve().parents[1]
PEAK_GFLOPS = 400.0  # float32 limit of the reference 2-core machine (issue 18)
BAR = 1.0  # required ours/torch ratio, every model and phase
MODELS = ("seed_cnn", "bn_cnn", "detector")
PHASES = ("train", "infer")
IMPLS = ("raw", "fast_openblas", "fast", "torch")
EXTRAS = ("raw_malloc", "fast_nomalloc")  # --pieces: each change on its own
LABELS = {
    "raw": "chainer raw",
    "raw_malloc": "raw + malloc",
    "fast_nomalloc": "fastops - malloc",
    "fast_openblas": "fastops openblas",
    "fast": "chainer fastops",
    "torch": "pytorch",
}
# the old backend's row: the same kernels on numpy's OpenBLAS (its CPU's own kernels, as
# charaid.blas_core picks them) instead of MKL
OLD_BLAS = "openblas"
MARK = "@@"  # prefix of protocol lines on a worker's stdout (anything else is ignored)


@dataclass(frozen=True)
class Spec:
    """What one model's rows run: shapes, batches, iterations, optimiser step."""

    name: str
    size: tuple[int, int]  # training input (H, W)
    batch: int
    infer_size: tuple[int, int]
    infer_batch: int
    iters: int  # training steps per round
    infer_iters: int  # inference passes per round
    dataset: int  # synthetic samples in the pool the training batches are drawn from
    lr: float  # Adam's alpha, as the stage sets it
    classes: int = 0  # classifiers
    widths: tuple[int, ...] = ()
    neck: int = 0  # detector

    def forward_flops(self, height: int, width: int) -> int:
        if self.name == "seed_cnn":
            return flops.seed_cnn(height, width, self.classes)
        if self.name == "bn_cnn":
            return flops.bn_cnn(height, width, self.classes, self.widths)
        return flops.detector(height, width, self.widths, self.neck)

    def flops(self, phase: str) -> int:
        """FLOPs per image of one training step or one inference pass."""
        if phase == "train":
            return flops.TRAIN_FACTOR * self.forward_flops(*self.size)
        return self.forward_flops(*self.infer_size)

    def describe(self) -> str:
        (h, w), (ih, iw) = self.size, self.infer_size
        if self.name == "detector":
            return (
                f"FaceNet widths {list(self.widths)}, neck {self.neck}; train: {h}x{w} patches, "
                f"{self.batch} per step, Adam, heat-map focal + L1 loss; infer: {ih}x{iw} "
                f"(a 16:9 frame letterboxed as detect_faces does), batch {self.infer_batch}"
            )
        what = "SeedCNN" if self.name == "seed_cnn" else f"BNCNN widths {list(self.widths)}"
        return (
            f"{what}, {self.classes} classes; train: {h}x{w}x3, batch {self.batch}, Adam, "
            f"softmax cross-entropy; infer: batch {self.infer_batch}"
        )


def _letterboxed(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(H, W) of the network input for a width x height frame: detect_faces' own letterbox."""
    import numpy as np

    from charaid.detector.backend import letterbox

    x, _ = letterbox(np.zeros((height, width, 3), np.uint8), long_side)
    return x.shape[2], x.shape[3]


def model_specs(args: argparse.Namespace) -> dict[str, Spec]:
    """The specs of `args.models`: shapes from params.yaml, command-line overrides applied."""
    from charaid.config import load_params
    from charaid.models import BNCNN

    params = load_params(args.params, "--params")
    det, demo, train = params.train_detector, params.make_demo, params.train
    bn_widths = tuple(inspect.signature(BNCNN).parameters["widths"].default)

    def classifier(name: str, side: int, iters: int, widths: tuple[int, ...] = ()) -> Spec:
        side = args.size or side
        return Spec(
            name,
            (side, side),
            args.batch or 50,
            (side, side),
            args.infer_batch or 256,
            args.iters or iters,
            args.infer_iters or 2,
            args.dataset or 500,
            train.lr,
            classes=args.classes,
            widths=widths,
        )

    patch = det.patch
    every = {
        "seed_cnn": classifier("seed_cnn", 50, 20),
        "bn_cnn": classifier("bn_cnn", 64, 10, bn_widths),
        "detector": Spec(
            "detector",
            (patch, patch),
            det.batch_size,
            _letterboxed(demo.width, demo.height, det.input_size),
            1,  # detect_faces runs one frame at a time (one process per core)
            args.iters or 8,
            args.infer_iters or 16,
            64,
            det.lr,
            widths=det.widths,
            neck=det.neck,
        ),
    }
    return {m: every[m] for m in args.models}


# ----------------------------------------------------------------------------- workers


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak resident set so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classifier_data(spec: Spec) -> tuple[Any, Any]:
    """Synthetic float32 NCHW images in [0, 1] and int32 labels, seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((spec.dataset, 3, *spec.size), dtype=np.float32)
    t = rng.integers(0, spec.classes, spec.dataset).astype(np.int32)
    return x, t


def detector_data(spec: Spec) -> list[tuple[Any, dict]]:
    """(patch, targets) pairs as train_detector's dataset yields them: uint8 HWC patches with
    1-4 square faces each (sides 10-50% of the patch), encoded by charaid's heatmap.encode."""
    import numpy as np

    from charaid.detector import heatmap

    rng = np.random.default_rng(0)
    side = spec.size[0]
    data = []
    for _ in range(spec.dataset):
        patch = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        boxes = []
        for _ in range(int(rng.integers(1, 5))):
            s = float(rng.uniform(0.1, 0.5)) * side
            cx, cy = rng.uniform(0, side, 2)
            boxes.append((float(cx) - s / 2, float(cy) - s / 2, s, s))
        data.append((patch, heatmap.encode(boxes, side, side)))
    return data


def infer_input(spec: Spec) -> Any:
    import numpy as np

    rng = np.random.default_rng(1)
    return rng.random((spec.infer_batch, 3, *spec.infer_size), dtype=np.float32)


class ChainerWorker:
    """The shipped Chainer model, trained by chainer.training's StandardUpdater over a
    SerialIterator (as the train / train_detector stages do, with the stage's converter)."""

    def __init__(self, spec: Spec, fast: bool, tune: bool) -> None:
        import chainer
        import chainer.links as L
        import numpy as np

        from charaid import fastops

        self.chainer, self.fast, self.spec = chainer, fast, spec
        self.tuned = fastops.tune_allocator() if tune else False
        np.random.seed(0)
        if spec.name == "detector":
            from charaid.detector.net import FaceNet
            from charaid.train_detector import DetectorLoss, convert

            self.net = FaceNet(spec.widths, spec.neck, fast=fast)
            model: chainer.Chain = DetectorLoss(self.net)
            data: Any = detector_data(spec)
            converter: Any = convert
        else:
            from charaid.models import build_model

            self.net = build_model(spec.name, spec.classes, fast=fast)
            model = L.Classifier(self.net)
            data = chainer.datasets.TupleDataset(*classifier_data(spec))
            converter = chainer.dataset.concat_examples
        # what the stages pick: the one-pass Adam goes with the fast kernels
        optimizer = (
            fastops.FastAdam(alpha=spec.lr) if fast else chainer.optimizers.Adam(alpha=spec.lr)
        )
        optimizer.setup(model)
        it = chainer.iterators.SerialIterator(data, spec.batch, shuffle=True)
        self.updater = chainer.training.updaters.StandardUpdater(it, optimizer, converter=converter)
        self.xb = infer_input(spec)

    def info(self) -> dict:
        import chainer
        import numpy as np
        from threadpoolctl import threadpool_info

        from charaid import fastops
        from charaid.fastops.blas import blas_name

        info = {"chainer": chainer.__version__, "numpy": np.__version__, "malloc_tuned": self.tuned}
        # OpenBLAS's kernels (charaid.blas_core picks them for the CPU when charaid is imported)
        info["blas"] = [
            lib.get("architecture") for lib in threadpool_info() if lib["user_api"] == "blas"
        ]
        if self.fast:  # fastops splits its kernels over this many threads (BLAS then uses 1)
            info["threads"] = fastops.get_num_threads()
            info["gemm"] = blas_name()  # the BLAS fastops' GEMMs run on (mkl | openblas)
        # after the warm-up: SeedCNN's fc3 gets its size from the first batch
        info["params"] = int(sum(p.size for p in self.net.params()))
        return info

    def train(self, iters: int) -> float:
        for _ in range(iters):
            self.updater.update()
        return iters * self.spec.batch

    def infer(self, iters: int) -> float:
        chainer = self.chainer
        if self.fast and self.spec.name == "detector":
            from charaid.detector.folded import fold

            run = fold(self.net)  # as detect_faces runs it (the folding timed too)
            for _ in range(iters):
                run(self.xb)
            return iters * self.spec.infer_batch
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            for _ in range(iters):
                self.net(self.xb)
        return iters * self.spec.infer_batch


class TorchWorker:
    """The PyTorch twin: plain training loop, Adam, batches drawn from a reshuffled pool."""

    def __init__(self, spec: Spec, threads: int) -> None:
        import torch
        import twins

        self.torch, self.twins, self.spec = torch, twins, spec
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(0)
        if spec.name == "detector":
            # the stage's own converter (numpy), so both sides pay the same per-step data work
            from charaid.train_detector import convert

            self.model: Any = twins.FaceTwin(spec.widths, spec.neck)
            self.data, self.convert = detector_data(spec), convert
            n = len(self.data)
        else:
            if spec.name == "seed_cnn":
                self.model = twins.SeedTwin(spec.classes, spec.size[0])
            else:
                self.model = twins.BNTwin(spec.classes, spec.widths)
            x, t = classifier_data(spec)
            self.x, self.t = torch.from_numpy(x), torch.from_numpy(t).long()
            n = len(x)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=spec.lr)
        self.xb = torch.from_numpy(infer_input(spec))
        self.order, self.pos = torch.randperm(n), 0

    def info(self) -> dict:
        count = self.twins.count_flops
        return {
            "torch": self.torch.__version__,
            "threads": self.torch.get_num_threads(),
            "params": self.twins.count_params(self.model),
            "flop_counter": {
                "train": count(self.model, (3, *self.spec.size)),
                "infer": count(self.model, (3, *self.spec.infer_size)),
            },
        }

    def _next_batch(self) -> Any:
        if self.pos + self.spec.batch > len(self.order):
            self.order, self.pos = self.torch.randperm(len(self.order)), 0
        idx = self.order[self.pos : self.pos + self.spec.batch]
        self.pos += self.spec.batch
        return idx

    def _loss(self) -> Any:
        idx = self._next_batch()
        if self.spec.name != "detector":
            return self.torch.nn.functional.cross_entropy(self.model(self.x[idx]), self.t[idx])
        batch = self.twins.to_torch(self.convert([self.data[i] for i in idx.tolist()]))
        return self.twins.detector_loss(self.model(batch.pop("x")), batch)

    def train(self, iters: int) -> float:
        self.model.train()
        for _ in range(iters):
            self.opt.zero_grad()
            self._loss().backward()
            self.opt.step()
        return iters * self.spec.batch

    def infer(self, iters: int) -> float:
        self.model.eval()
        with self.torch.no_grad():
            for _ in range(iters):
                self.model(self.xb)
        return iters * self.spec.infer_batch


def _reply(obj: dict) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_worker(args: argparse.Namespace) -> None:
    """Serve timed commands from the parent on stdin, one JSON object per line."""
    spec = model_specs(args)[args.models[0]]
    if args.worker == "torch":
        worker: ChainerWorker | TorchWorker = TorchWorker(spec, args.torch_threads)
    else:
        fast = args.worker.startswith("fast")
        tune = args.worker in ("fast", "fast_openblas", "raw_malloc")
        worker = ChainerWorker(spec, fast=fast, tune=tune)
    base = _maxrss_mib()
    worker.train(args.warmup)
    worker.infer(1)
    _reply({"ready": True, "info": worker.info(), "rss_base_mib": base})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        fn = worker.train if cmd["cmd"] == "train" else worker.infer
        t0 = time.perf_counter()
        images = fn(cmd["iters"])
        seconds = time.perf_counter() - t0
        _reply({"img_s": images / seconds, "seconds": seconds, "maxrss_mib": _maxrss_mib()})


# ----------------------------------------------------------------------------- parent


class Worker:
    def __init__(self, model: str, impl: str, args: argparse.Namespace) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--models", model]
        env = dict(os.environ)
        if impl == "fast_openblas":
            env["CHARAID_BLAS"] = OLD_BLAS
        self.proc = subprocess.Popen(
            cmd + _forward_args(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.hello = self._read()

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(f"worker exited with {self.proc.wait()}")

    def ask(self, cmd: str, iters: int) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, "iters": iters}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
        self.proc.wait()


def _forward_args(args: argparse.Namespace) -> list[str]:
    keys = ("batch", "infer_batch", "size", "dataset", "classes", "warmup", "torch_threads")
    out = [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys if getattr(args, k)]
    return out + [f"--params={args.params}"]


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def implementations(model: str, args: argparse.Namespace, torch: bool) -> list[str]:
    impls = ["raw"] if model in args.raw else []
    if args.pieces:
        impls += list(EXTRAS)
    return impls + ["fast_openblas", "fast"] + (["torch"] if torch else [])


def check_twins(model: str, spec: Spec, res: dict) -> None:
    """Parameter counts equal on every row, FlopCounterMode = the analytic count: else stop."""
    counts = {LABELS[i]: r["info"]["params"] for i, r in res.items()}
    if len(set(counts.values())) != 1:
        raise SystemExit(f"{model}: parameter counts differ: {counts}")
    if "torch" in res:
        for phase in PHASES:
            counted = res["torch"]["info"]["flop_counter"][phase]
            ours = spec.flops(phase) // (flops.TRAIN_FACTOR if phase == "train" else 1)
            if counted != ours:
                raise SystemExit(
                    f"{model} {phase}: analytic {ours:,} FLOPs/image, FlopCounterMode {counted:,}"
                )


def run_bench(args: argparse.Namespace, specs: dict[str, Spec]) -> dict:
    torch = not args.no_torch and _have_torch()
    results: dict = {
        m: {i: {"train": [], "infer": [], "rss": {}} for i in implementations(m, args, torch)}
        for m in specs
    }
    workers: dict = {}
    try:
        for model, rows in results.items():  # start one at a time: warm-up runs alone
            for impl, res in rows.items():
                print(f"starting {model} {LABELS[impl]}", file=sys.stderr, flush=True)
                workers[model, impl] = w = Worker(model, impl, args)
                res["info"], res["rss"]["base"] = w.hello["info"], w.hello["rss_base_mib"]
            check_twins(model, specs[model], rows)
        for r in range(args.rounds):
            for model, spec in specs.items():
                for phase, iters in (("train", spec.iters), ("infer", spec.infer_iters)):
                    for impl, res in results[model].items():
                        time.sleep(args.gap)  # let the previous runner's spinning threads settle
                        reply = workers[model, impl].ask(phase, iters)
                        res[phase].append(reply["img_s"])
                        res["rss"][phase] = reply["maxrss_mib"]
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()
    return results


def _fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:6.2f}" if a and b else "     -"


def medians(results: dict) -> dict:
    return {
        m: {i: {p: statistics.median(r[p]) for p in PHASES} for i, r in rows.items()}
        for m, rows in results.items()
    }


def print_report(
    results: dict, specs: dict[str, Spec], args: argparse.Namespace, load: tuple
) -> dict:
    """Per-model tables, then the bar and one `<model> <phase> ours/torch <ratio>` line each.
    Returns the summary figures (for --json)."""
    med = medians(results)
    print(
        f"\ntrain and inference speed, {args.rounds} interleaved rounds after {args.warmup} "
        f"warm-up steps; img/s = images (detector: patches, frames) per second, median over "
        f"rounds and min..max; GFLOP/s from the analytic FLOPs (bench/flops.py, training = 3x "
        f"forward) against the machine's {PEAK_GFLOPS:.0f}"
    )
    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average before {load[0]:.2f}, after {load[1]:.2f}"
    )
    first = {}
    for rows in results.values():
        for impl, res in rows.items():
            info = {k: v for k, v in res["info"].items() if k not in ("params", "flop_counter")}
            first.setdefault(impl, info)
    for impl, info in first.items():
        print(f"  {LABELS[impl]:16s} {info}")
    summary: dict = {}
    for model, spec in specs.items():
        rows, m = results[model], med[model]
        params = " = ".join(f"{r['info']['params']:,} ({LABELS[i]})" for i, r in rows.items())
        print(f"\n{model}: {spec.describe()}")
        print(f"  parameters {params}")
        counted = "torch FlopCounterMode agrees" if "torch" in rows else "no torch to cross-check"
        shapes = [spec.size] + ([spec.infer_size] if spec.infer_size != spec.size else [])
        fwd = ", ".join(f"{spec.forward_flops(*hw) / 1e6:,.1f} at {hw[0]}x{hw[1]}" for hw in shapes)
        print(
            f"  forward MFLOP/image {fwd} ({counted}), training step 3x; per round "
            f"{spec.iters} training steps, {spec.infer_iters} inference passes"
        )
        head = (
            f"{'phase':6s} {'implementation':16s} {'median img/s':>12s} {'min..max':>16s} "
            f"{'/torch':>6s} {'/raw':>6s} {'GFLOP/s':>8s} {'/400':>6s} {'peak RSS MiB':>12s}"
        )
        print(head)
        print("-" * len(head))
        for phase in PHASES:
            for impl, res in rows.items():
                runs, value = res[phase], m[impl][phase]
                gflops = value * spec.flops(phase) / 1e9
                print(
                    f"{phase:6s} {LABELS[impl]:16s} {value:12.1f} "
                    f"{min(runs):7.1f}..{max(runs):<7.1f} "
                    f"{_fmt_ratio(value, m.get('torch', {}).get(phase))} "
                    f"{_fmt_ratio(value, m.get('raw', {}).get(phase))} "
                    f"{gflops:8.1f} {gflops / PEAK_GFLOPS:6.3f} {res['rss'][phase]:12.0f}"
                )
        for phase in PHASES:
            ours = m["fast"][phase]
            torch = m.get("torch", {}).get(phase)
            summary[model, phase] = {
                "ours_img_s": ours,
                "torch_img_s": torch,
                "ratio": ours / torch if torch else None,
                "ours_gflops": ours * spec.flops(phase) / 1e9,
                "ours_fraction_of_peak": ours * spec.flops(phase) / 1e9 / PEAK_GFLOPS,
            }
    print(
        "\npeak RSS = ru_maxrss of each worker process after the phase (monotone: the infer "
        "column includes training; the detector's pytorch worker also imports Chainer, for "
        "charaid's target encoding)"
    )
    share = ", ".join(f"{m} {p} {s['ours_fraction_of_peak']:.3f}" for (m, p), s in summary.items())
    print(f"ours, share of the machine's {PEAK_GFLOPS:.0f} GFLOP/s: {share}")
    gains = ", ".join(
        f"{m} {p} {med[m]['fast'][p] / med[m]['fast_openblas'][p]:.2f}x"
        for m, p in summary
        if "fast_openblas" in med[m]
    )
    if gains:
        print(f"ours vs the same kernels on numpy's OpenBLAS (the old backend): {gains}")
    met = sum(1 for s in summary.values() if s["ratio"] is not None and s["ratio"] >= BAR)
    print(f"bar: ours/torch >= {BAR} for every model and phase; met by {met} of {len(summary)}")
    for (model, phase), s in summary.items():
        ratio = f"{s['ratio']:.2f}" if s["ratio"] is not None else "-"
        print(f"{model} {phase} ours/torch {ratio}")
    return {f"{m} {p}": s for (m, p), s in summary.items()}


# ----------------------------------------------------------------------------- per-op table


def _time_op(fn: Any, reps: int) -> float:
    """Best of `reps` wall-clock runs, in ms (min: least disturbed by other load)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _fwd_bwd(forward: Any, inputs: list, reps: int) -> tuple[float, float]:
    """(forward ms, backward ms) of forward(*inputs); backward from a ones gradient."""
    import chainer
    import numpy as np

    def fwd() -> Any:
        return forward(*inputs)

    def bwd() -> None:
        for v in inputs:
            if isinstance(v, chainer.Variable):
                v.cleargrad()
        y = fwd()
        y.grad = np.ones_like(y.array)
        y.backward()

    t_fwd = _time_op(fwd, reps)
    return t_fwd, max(0.0, _time_op(bwd, reps) - t_fwd)


def op_table(args: argparse.Namespace) -> None:
    """Per-layer forward/backward times at the model's shapes: Chainer's functions vs fastops."""
    import charaid  # noqa: F401  (first: it picks OpenBLAS's kernels before numpy loads them)

    # isort: split
    import chainer
    import chainer.functions as F
    import numpy as np

    from charaid import fastops

    tuned = fastops.tune_allocator()
    rng = np.random.default_rng(0)
    n, s = args.batch, args.size
    layers = (("conv1", 3, 16, s, False), ("conv2", 16, 32, flops.out_len(s, 5, 2, 2), True))
    print(f"\nper-op ms, batch {n}, best of {args.op_reps} (malloc tuned: {tuned})")
    print(f"{'layer':6s} {'op':34s} {'forward':>8s} {'backward':>9s}")
    for name, c, o, size, x_grad in layers:
        x = rng.random((n, c, size, size), dtype=np.float32)
        w = chainer.Parameter((rng.standard_normal((o, c, 5, 5)) * 0.1).astype(np.float32))
        b = chainer.Parameter(np.zeros(o, np.float32))
        xv = chainer.Variable(x, requires_grad=x_grad)
        xc = chainer.Variable(np.ascontiguousarray(x.transpose(1, 3, 2, 0)), requires_grad=x_grad)
        h = F.relu(F.convolution_2d(x, w, b, pad=2)).array
        hv = chainer.Variable(h)
        hc = chainer.Variable(np.ascontiguousarray(h.transpose(1, 3, 2, 0)))
        rows = [
            ("chainer convolution_2d", _chainer_conv, [xv, w, b]),
            ("chainer relu", F.relu, [hv]),
            ("chainer max_pooling_2d", _chainer_pool, [hv]),
            ("fastops convolution_2d_relu", _fast_conv, [xc, w, b]),
            ("fastops max_pooling_2d", _fast_pool, [hc]),
            ("fastops conv+relu+pool (fused)", _fast_fused, [xc, w, b]),
        ]
        for label, fn, inputs in rows:
            t_f, t_b = _fwd_bwd(fn, inputs, args.op_reps)
            print(f"{name:6s} {label:34s} {t_f:8.1f} {t_b:9.1f}")


def _chainer_conv(a: Any, w: Any, b: Any) -> Any:
    import chainer.functions as F

    return F.convolution_2d(a, w, b, pad=2)


def _chainer_pool(a: Any) -> Any:
    import chainer.functions as F

    return F.max_pooling_2d(a, 5, stride=2, pad=2, cover_all=False)


def _fast_conv(a: Any, w: Any, b: Any) -> Any:
    from charaid import fastops

    return fastops.convolution_2d_relu(a, w, b, pad=2, layout="CWHN")


def _fast_pool(a: Any) -> Any:
    from charaid import fastops

    return fastops.max_pooling_2d(a, 5, 2, 2, layout="CWHN")


def _fast_fused(a: Any, w: Any, b: Any) -> Any:
    from charaid import fastops

    return fastops.convolution_2d_relu_max_pooling_2d(a, w, b, 2, 5, 2, 2, layout="CWHN")


def _models(text: str) -> list[str]:
    names = [m for m in text.split(",") if m]
    bad = [m for m in names if m not in MODELS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"models are {', '.join(MODELS)}; got {text!r}")
    return names


def _raw(text: str) -> list[str]:
    if text in ("all", "none"):
        return list(MODELS) if text == "all" else []
    return _models(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--models", type=_models, default=list(MODELS), help="comma-separated (default: all)"
    )
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument(
        "--iters", type=int, help="training steps per round (default 20 / 10 / 8 per model)"
    )
    p.add_argument(
        "--infer-iters", type=int, help="inference passes per round (default 2 / 2 / 16)"
    )
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps")
    p.add_argument(
        "--raw",
        type=_raw,
        default=["seed_cnn"],
        help="models that also get the plain-Chainer row (fast=False): a list, all or none "
        "(default seed_cnn: bn_cnn and the detector take minutes per round that way)",
    )
    # classifiers only: the detector's shapes and batch come from params.yaml
    p.add_argument("--batch", type=int, help="classifiers' training batch (default 50)")
    p.add_argument("--infer-batch", type=int, help="classifiers' inference batch (default 256)")
    p.add_argument("--size", type=int, help="classifiers' input side (default 50 / 64)")
    p.add_argument("--dataset", type=int, help="classifiers' synthetic pool (default 500)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="train_detector's shapes")
    p.add_argument("--gap", type=float, default=0.2, help="seconds of idle between runs")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument(
        "--torch-threads", type=int, default=0, help="torch.set_num_threads (0: its default)"
    )
    p.add_argument("--json", help="also write every figure (per round, medians, ratios) here")
    p.add_argument("--ops", action="store_true", help="SeedCNN's per-op forward/backward times")
    p.add_argument("--op-reps", type=int, default=5, help="repetitions per op (--ops)")
    p.add_argument(
        "--pieces",
        action="store_true",
        help="also run raw Chainer with the malloc tuning and fastops without it",
    )
    p.add_argument("--worker", choices=IMPLS + EXTRAS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    if args.ops:
        args.batch, args.size = args.batch or 50, args.size or 50
        op_table(args)
        return
    specs = model_specs(args)
    load_before = os.getloadavg()[0]
    results = run_bench(args, specs)
    load = (load_before, os.getloadavg()[0])
    figures = print_report(results, specs, args, load)
    if args.json:  # written silently: the summary lines stay the last output
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "args": vars(args),
                    "load_average": load,
                    "peak_gflops": PEAK_GFLOPS,
                    "specs": {m: asdict(s) for m, s in specs.items()},
                    "flops_per_image": {
                        m: {p: s.flops(p) for p in PHASES} for m, s in specs.items()
                    },
                    "medians": medians(results),
                    "summary": figures,
                    "results": results,
                },
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
