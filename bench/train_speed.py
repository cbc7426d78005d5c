"""Training and inference speed of SeedCNN: raw Chainer vs charaid.fastops vs a PyTorch reference.

Each implementation runs in its own worker process (own allocator settings, own thread pools,
own peak-RSS counter); the parent interleaves them round by round (raw -> fast -> torch), so
all three see the same machine load. Run from the repository root:

    python bench/train_speed.py                 # default: 5 rounds x 20 training iterations
    python bench/train_speed.py --rounds 3 --iters 10 --no-torch

PyTorch is only the yardstick (requirements-bench.txt); without it the torch rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

LIMIT_IMG_S = 6000.0  # float32 throughput limit of the reference 2-core machine (issue)
BAR = 0.5  # required ours/torch ratio
IMPLS = ("raw", "fast", "torch")
EXTRAS = ("raw_malloc", "fast_nomalloc")  # --pieces: each change on its own
LABELS = {
    "raw": "chainer raw",
    "raw_malloc": "raw + malloc",
    "fast_nomalloc": "fastops - malloc",
    "fast": "chainer fastops",
    "torch": "pytorch",
}
MARK = "@@"  # prefix of protocol lines on a worker's stdout (anything else is ignored)


# ----------------------------------------------------------------------------- workers


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the process's peak resident set so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _data(args: argparse.Namespace) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((args.dataset, 3, args.size, args.size), dtype=np.float32)
    t = rng.integers(0, args.classes, args.dataset).astype(np.int32)
    return x, t


class ChainerWorker:
    """SeedCNN trained by chainer.training's StandardUpdater over a SerialIterator."""

    def __init__(self, args: argparse.Namespace, fast: bool, tune: bool) -> None:
        import chainer
        import chainer.links as L
        import numpy as np

        from charaid import fastops
        from charaid.models import SeedCNN

        self.chainer, self.fast = chainer, fast
        self.tuned = fastops.tune_allocator() if tune else False
        np.random.seed(0)
        x, t = _data(args)
        self.model = L.Classifier(SeedCNN(args.classes, fast=fast))
        # what train.fast picks: the one-pass Adam goes with the fast kernels
        optimizer = fastops.FastAdam() if fast else chainer.optimizers.Adam()
        optimizer.setup(self.model)
        it = chainer.iterators.SerialIterator(
            chainer.datasets.TupleDataset(x, t), args.batch, shuffle=True
        )
        self.updater = chainer.training.updaters.StandardUpdater(it, optimizer)
        self.xb = _tile(x, args)
        self.batch, self.infer_batch = args.batch, args.infer_batch

    def info(self) -> dict:
        import chainer
        import numpy as np

        from charaid import fastops

        info = {"chainer": chainer.__version__, "numpy": np.__version__, "malloc_tuned": self.tuned}
        if self.fast:  # fastops splits its kernels over this many threads (BLAS then uses 1)
            info["threads"] = fastops.get_num_threads()
        return info

    def train(self, iters: int) -> float:
        for _ in range(iters):
            self.updater.update()
        return iters * self.batch

    def infer(self, iters: int) -> float:
        chainer = self.chainer
        with chainer.using_config("train", False), chainer.no_backprop_mode():
            for _ in range(iters):
                self.model.predictor(self.xb)
        return iters * self.infer_batch


class TorchWorker:
    """The same network in PyTorch: plain training loop, Adam, batch from a shuffled tensor."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch
        from torch import nn

        self.torch = torch
        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        torch.manual_seed(0)
        x, t = _data(args)
        self.x, self.t = torch.from_numpy(x), torch.from_numpy(t).long()
        feat = 32 * _pooled(_pooled(args.size)) ** 2
        self.model = nn.Sequential(
            nn.Conv2d(3, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(5, 2, 2),
            nn.Conv2d(16, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(5, 2, 2),
            nn.Flatten(),
            nn.Linear(feat, 256),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(256, args.classes),
        )
        self.opt = torch.optim.Adam(self.model.parameters())
        self.loss = nn.CrossEntropyLoss()
        self.xb = torch.from_numpy(_tile(x, args))
        self.batch, self.infer_batch = args.batch, args.infer_batch
        self.order, self.pos = torch.randperm(len(x)), 0

    def info(self) -> dict:
        return {"torch": self.torch.__version__, "threads": self.torch.get_num_threads()}

    def _next_batch(self) -> tuple:
        if self.pos + self.batch > len(self.order):
            self.order, self.pos = self.torch.randperm(len(self.order)), 0
        idx = self.order[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return self.x[idx], self.t[idx]

    def train(self, iters: int) -> float:
        self.model.train()
        for _ in range(iters):
            xb, tb = self._next_batch()
            self.opt.zero_grad()
            self.loss(self.model(xb), tb).backward()
            self.opt.step()
        return iters * self.batch

    def infer(self, iters: int) -> float:
        self.model.eval()
        with self.torch.no_grad():
            for _ in range(iters):
                self.model(self.xb)
        return iters * self.infer_batch


def _pooled(n: int) -> int:
    return (n + 2 * 2 - 5) // 2 + 1  # k5 s2 p2, floor (cover_all=False)


def _tile(x: Any, args: argparse.Namespace) -> Any:
    import numpy as np

    reps = -(-args.infer_batch // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[: args.infer_batch])


def _reply(obj: dict) -> None:
    sys.stdout.write(MARK + json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_worker(args: argparse.Namespace) -> None:
    """Serve timed commands from the parent on stdin, one JSON object per line."""
    if args.worker == "torch":
        worker = TorchWorker(args)
    else:
        fast = args.worker.startswith("fast")
        tune = args.worker in ("fast", "raw_malloc")
        worker = ChainerWorker(args, fast=fast, tune=tune)
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
    def __init__(self, impl: str, args: argparse.Namespace) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl] + _forward_args(args)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
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
    keys = ("batch", "infer_batch", "classes", "size", "dataset", "warmup", "torch_threads")
    return [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in keys]


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_bench(args: argparse.Namespace) -> dict:
    impls = ["raw"] + (list(EXTRAS) if args.pieces else []) + ["fast"]
    if not args.no_torch and _have_torch():
        impls.append("torch")
    results: dict = {i: {"train": [], "infer": [], "rss": {}} for i in impls}
    workers = {}
    try:
        for impl in impls:  # start one at a time: warm-up runs alone
            workers[impl] = Worker(impl, args)
            results[impl]["info"] = workers[impl].hello["info"]
            results[impl]["rss"]["base"] = workers[impl].hello["rss_base_mib"]
        for r in range(args.rounds):
            for phase, iters in (("train", args.iters), ("infer", args.infer_iters)):
                for impl in impls:
                    time.sleep(args.gap)  # let the previous runner's spinning threads settle
                    res = workers[impl].ask(phase, iters)
                    results[impl][phase].append(res["img_s"])
                    results[impl]["rss"][phase] = res["maxrss_mib"]
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()
    return results


def _fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:6.2f}" if a and b else "     -"


def print_table(results: dict, args: argparse.Namespace, load: tuple) -> None:
    med = {i: {p: statistics.median(results[i][p]) for p in ("train", "infer")} for i in results}
    torch_med = med.get("torch", {})
    print(
        f"\nSeedCNN {args.size}x{args.size}x3, {args.classes} classes; train batch {args.batch} "
        f"(Adam), {args.rounds} rounds x {args.iters} iterations after {args.warmup} warm-up; "
        f"inference batch {args.infer_batch}, {args.rounds} x {args.infer_iters} passes"
    )
    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average before {load[0]:.2f}, after {load[1]:.2f}"
    )
    for impl in results:
        print(f"  {LABELS[impl]:16s} {results[impl]['info']}")
    head = (
        f"\n{'phase':6s} {'implementation':16s} {'median img/s':>12s} {'min..max':>15s} "
        f"{'/torch':>6s} {'/raw':>6s} {'/6000':>6s} {'peak RSS MiB':>12s}"
    )
    print(head)
    print("-" * len(head.strip("\n")))
    for phase in ("train", "infer"):
        for impl in results:
            runs = results[impl][phase]
            print(
                f"{phase:6s} {LABELS[impl]:16s} {med[impl][phase]:12.0f} "
                f"{min(runs):7.0f}..{max(runs):<7.0f} "
                f"{_fmt_ratio(med[impl][phase], torch_med.get(phase))} "
                f"{_fmt_ratio(med[impl][phase], med['raw'][phase])} "
                f"{med[impl][phase] / LIMIT_IMG_S:6.3f} "
                f"{results[impl]['rss'][phase]:12.0f}"
            )
    print(
        "\npeak RSS = ru_maxrss of each implementation's own worker process after the phase "
        "(monotone: the infer column includes training); baseline after imports + data: "
        + ", ".join(f"{LABELS[i]} {results[i]['rss']['base']:.0f}" for i in results)
        + " MiB"
    )
    if torch_med:
        for phase in ("train", "infer"):
            ratio = med["fast"][phase] / torch_med[phase]
            verdict = "meets" if ratio >= BAR else "misses"
            print(f"ours/torch {phase}: {ratio:.2f} ({verdict} the {BAR} bar)")


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
    import chainer
    import chainer.functions as F
    import numpy as np

    from charaid import fastops

    tuned = fastops.tune_allocator()
    rng = np.random.default_rng(0)
    n, s = args.batch, args.size
    layers = (("conv1", 3, 16, s, False), ("conv2", 16, 32, _pooled(s), True))
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--iters", type=int, default=20, help="training iterations per round")
    p.add_argument("--infer-iters", type=int, default=2, help="inference passes per round")
    p.add_argument("--warmup", type=int, default=3, help="untimed training iterations")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--infer-batch", type=int, default=256)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--size", type=int, default=50, help="square input side")
    p.add_argument("--dataset", type=int, default=500, help="synthetic images in the pool")
    p.add_argument("--gap", type=float, default=0.2, help="seconds of idle between runs")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument(
        "--torch-threads", type=int, default=0, help="torch.set_num_threads (0: its default)"
    )
    p.add_argument("--json", help="also write the raw per-round figures here")
    p.add_argument("--ops", action="store_true", help="print per-op forward/backward times only")
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
        op_table(args)
        return
    load_before = os.getloadavg()[0]
    results = run_bench(args)
    print_table(results, args, (load_before, os.getloadavg()[0]))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
