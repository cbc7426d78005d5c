"""Many small files vs one file per video: what DVC costs for each, next to rsync.

Writes N items in two layouts, each as the output of a one-stage DVC project:

- crops (default 12,000, 50x50; real demo crops when label's crops.npz exists, varied so that
  every one is distinct): one PNG per crop, `<video>/<frame>.png` (detect_faces before), vs one
  compressed array file per video, `<video>.npz` (detect_faces now);
- frames (--kind frames, default 2,000; the demo's 1280x720 JPEGs, varied): one JPEG per frame
  (extract_frames) vs one stored zip of them per video;

and times, side by side: the first `dvc repro` (write + hash + cache), a no-op `dvc repro`,
`dvc status`, `dvc push` to a real OpenSSH server on 127.0.0.1 (a throwaway sshd, as in the
tests), `dvc pull` into a fresh clone, and `rsync -a` of the same folder over the same sshd.
Files opened and sftp requests are counted from the sftp server's log.

    python bench/dvc_storage.py                    # 12,000 crops, 12 videos, 3 rounds
    python bench/dvc_storage.py --kind frames      # 2,000 frames from data/frames
    python bench/dvc_storage.py --count 2000 --rounds 1 --source ../main/data/dataset/crops.npz
    python bench/dvc_storage.py --project .        # this project's outputs, after `make repro`
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.helpers import SSHD, Sshd  # noqa: E402

LAYOUTS = ("files", "archive")
NAMES = {
    "crops": ("PNG per crop", "npz per video"),
    "frames": ("JPEG per frame", "zip per video"),
}


def make_crops(count: int, source: Path | None, seed: int = 0) -> np.ndarray:
    """`count` distinct uint8 (50, 50, 3) crops: rolled/flipped real crops, else smooth noise."""
    rng = np.random.default_rng(seed)
    if source and source.is_file():
        with np.load(source) as data:
            base = data["images"]
    else:
        small = rng.integers(0, 256, (min(count, 1500), 7, 7, 3), dtype=np.uint8)
        base = np.stack([cv2.resize(s, (50, 50), interpolation=cv2.INTER_CUBIC) for s in small])
    crops = np.empty((count, *base.shape[1:]), np.uint8)
    for i in range(count):
        img, turn = base[i % len(base)], i // len(base)
        img = np.roll(img, turn // 2, axis=1)
        crops[i] = img[:, ::-1] if turn % 2 else img
    return crops


def make_frames(count: int, source: Path, out: Path) -> None:
    """`count` distinct JPEG frames in `out` (0.jpg, 1.jpg, ...): the demo's frames (rolled and
    flipped past the first pass), else 1280x720 smooth noise."""
    paths = sorted(source.rglob("*.jpg")) if source.is_dir() else []
    rng = np.random.default_rng(0)
    out.mkdir(parents=True)
    for i in range(count):
        if paths:
            path, turn = paths[i % len(paths)], i // len(paths)
            if turn == 0:
                shutil.copy(path, out / f"{i}.jpg")
                continue
            img = np.roll(cv2.imread(str(path)), 8 * turn, axis=1)[:, :: -1 if turn % 2 else 1]
        else:
            small = rng.integers(0, 256, (9, 16, 3), dtype=np.uint8)
            img = cv2.resize(small, (1280, 720), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out / f"{i}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])


def write_layout(kind: str, layout: str, out: Path, items: Path, videos: int) -> None:
    """The folder the stage would write, in one layout (index.csv with keys either way)."""
    if kind == "crops":
        data = np.load(items)
        count = len(data)
    else:
        count = len(list(items.glob("*.jpg")))
    per = -(-count // videos)
    sub = out / kind
    sub.mkdir(parents=True)
    lines = ["key,video,frame"]
    for v in range(videos):
        name = f"ep{v + 1:02d}"
        ids = range(v * per, min((v + 1) * per, count))
        keys = [f"{name}/{i:06d}" for i in ids]
        lines += [f"{k},{name},{i}" for i, k in zip(ids, keys, strict=True)]
        if kind == "crops" and layout == "files":
            (sub / name).mkdir()
            for key, i in zip(keys, ids, strict=True):
                cv2.imwrite(str(sub / f"{key}.png"), data[i])
        elif kind == "crops":
            np.savez_compressed(sub / f"{name}.npz", crops=data[list(ids)], keys=np.array(keys))
        elif layout == "files":
            (sub / name).mkdir()
            for key, i in zip(keys, ids, strict=True):
                shutil.copy(items / f"{i}.jpg", sub / f"{key}.jpg")
        else:
            # JPEGs do not deflate: stored; fixed timestamps keep the file deterministic.
            with zipfile.ZipFile(sub / f"{name}.zip", "w", zipfile.ZIP_STORED) as z:
                for key, i in zip(keys, ids, strict=True):
                    z.writestr(zipfile.ZipInfo(f"{key}.jpg"), (items / f"{i}.jpg").read_bytes())
    (out / "index.csv").write_text("\n".join(lines) + "\n")


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    """Wall seconds; the command's CPU seconds (user + sys) go to CPU[its first two words],
    since on a shared machine wall time also measures the neighbours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        sys.exit(f"error: {' '.join(cmd)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    CPU.setdefault(" ".join(cmd[:2]), []).append(cpu)
    return elapsed


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"error: {' '.join(cmd)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def count_files(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def requests_since(before: dict[str, int], server: Sshd) -> tuple[int, int]:
    """(all sftp requests, file opens) served since `before`."""
    after = server.sftp_requests()
    total = sum(after.values()) - sum(before.values())
    return total, after.get("open", 0) - before.get("open", 0)


def bench_layout(layout: str, args, work: Path, server: Sshd, items: Path) -> dict:
    env = server.env()
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env[var] = "bench"
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env[var] = "bench@localhost"
    proj = work / layout / "proj"
    proj.mkdir(parents=True)
    run(["git", "init", "-q"], proj, env)
    run(["dvc", "init", "-q"], proj, env)
    run(["dvc", "config", "core.analytics", "false"], proj, env)
    cmd = (
        f"python {Path(__file__).resolve()} --write {args.kind} {layout} {items} {args.videos}"
        " data/out"
    )
    run(["dvc", "stage", "add", "-q", "-n", "out", "-o", "data/out", cmd], proj, env)
    run(["git", "add", "-A"], proj, env)
    run(["git", "commit", "-qm", "bench"], proj, env)

    r: dict = {}
    write_dir = work / layout / "write-only"
    start = time.perf_counter()
    write_layout(args.kind, layout, write_dir, items, args.videos)
    r["write"] = time.perf_counter() - start
    r["files"], r["bytes"] = count_files(write_dir)
    shutil.rmtree(write_dir)
    r["repro"] = timed(["dvc", "repro", "-q"], proj, env)
    CPU.clear()
    run(["git", "add", "-A"], proj, env)
    run(["git", "commit", "-qm", "lock"], proj, env)
    r["noop"] = statistics.median(
        timed(["dvc", "repro", "-q"], proj, env) for _ in range(args.rounds)
    )
    r["status"] = statistics.median(
        timed(["dvc", "status", "-q"], proj, env) for _ in range(args.rounds)
    )
    r["startup"] = statistics.median(
        timed(["dvc", "--version"], proj, env) for _ in range(args.rounds)
    )
    r["noop_cpu"] = statistics.median(CPU["dvc repro"])
    r["status_cpu"] = statistics.median(CPU["dvc status"])
    r["load"] = os.getloadavg()[0]

    remote_root = work / layout / "remote"
    ssh = " ".join(server.ssh_command())
    login = f"{server.user}@127.0.0.1"
    pushes, pulls, rpushes, rpulls = [], [], [], []
    # Many small files over ssh take minutes per push: those rounds are capped.
    for k in range(args.rounds if layout == "archive" else min(args.rounds, args.files_rounds)):
        remote = remote_root / f"dvc{k}"
        remote.mkdir(parents=True)
        run(["dvc", "remote", "add", "-f", "-d", "bench", server.url(remote)], proj, env)
        run(["dvc", "remote", "modify", "--local", "bench", "keyfile", str(server.key)], proj, env)
        run(["git", "commit", "-qam", f"remote {k}"], proj, env)
        before = server.sftp_requests()
        pushes.append(timed(["dvc", "push", "-q"], proj, env))
        r["pushed"] = count_files(remote)[0]
        r["push_requests"], r["push_opens"] = requests_since(before, server)
        clone = work / layout / f"clone{k}"
        run(["git", "clone", "-q", str(proj), str(clone)], work, env)
        run(["dvc", "remote", "modify", "--local", "bench", "keyfile", str(server.key)], clone, env)
        before = server.sftp_requests()
        pulls.append(timed(["dvc", "pull", "-q"], clone, env))
        r["pull_requests"], r["pull_opens"] = requests_since(before, server)
        same = run(["diff", "-r", "-q", "data/out", str(clone / "data" / "out")], proj, env)
        assert not same, same

        target = remote_root / f"rsync{k}"
        rpushes.append(
            timed(["rsync", "-a", "-e", ssh, "data/out/", f"{login}:{target}/"], proj, env)
        )
        back = work / layout / f"rsync-back{k}"
        rpulls.append(
            timed(["rsync", "-a", "-e", ssh, f"{login}:{target}/", f"{back}/"], work, env)
        )
        shutil.rmtree(clone)
    r["push"], r["pull"] = statistics.median(pushes), statistics.median(pulls)
    r["rsync_push"], r["rsync_pull"] = statistics.median(rpushes), statistics.median(rpulls)
    return r


def bench_project(project: Path, rounds: int, work: Path, server: Sshd) -> None:
    """Push and pull `project`'s cached outputs (from its dvc.lock) through the sshd and a
    local folder, next to rsync of the same paths; the project's own remotes are untouched
    (a remote `bench` goes to .dvc/config.local, restored afterwards)."""
    import yaml

    lock = yaml.safe_load((project / "dvc.lock").read_text())
    uncached = set()  # metrics and plots marked `cache: false` travel by git, not DVC
    for stage in yaml.safe_load((project / "dvc.yaml").read_text())["stages"].values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                if isinstance(entry, dict):
                    uncached |= {p for p, o in entry.items() if o and o.get("cache") is False}
    outs = [
        o["path"]
        for stage in lock["stages"].values()
        for o in stage.get("outs", [])
        if o["path"] not in uncached and (project / o["path"]).exists()
    ]
    files = [p for o in outs for p in ([project / o] if (project / o).is_file() else [])]
    files += [p for o in outs if (project / o).is_dir() for p in (project / o).rglob("*")]
    files = [p for p in files if p.is_file()]
    env = server.env()
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env["PATH"]
    local_config = project / ".dvc" / "config.local"
    saved = local_config.read_bytes() if local_config.exists() else None
    ssh = " ".join(server.ssh_command())
    login = f"{server.user}@127.0.0.1"
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for k in range(rounds):
            for kind in ("ssh", "local"):
                r = results.setdefault(kind, {})
                remote = work / f"remote-{kind}{k}"
                remote.mkdir()
                url = server.url(remote) if kind == "ssh" else str(remote)
                run(["dvc", "remote", "add", "--local", "-f", "bench", url], project, env)
                if kind == "ssh":
                    key = ["dvc", "remote", "modify", "--local", "bench", "keyfile"]
                    run([*key, str(server.key)], project, env)
                before = server.sftp_requests()
                r.setdefault("push", []).append(
                    timed(["dvc", "push", "-q", "-r", "bench"], project, env)
                )
                requests, _ = requests_since(before, server)
                r.setdefault("push_requests", []).append(requests)
                r.setdefault("objects", []).append(count_files(remote)[0])
                # a fresh checkout: the pipeline files only, no cache
                fresh = work / f"fresh-{kind}{k}"
                fresh.mkdir()
                run(["git", "init", "-q"], fresh, env)
                run(["dvc", "init", "-q"], fresh, env)
                for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
                    shutil.copy(project / name, fresh / name)
                shutil.copy(local_config, fresh / ".dvc" / "config.local")
                before = server.sftp_requests()
                r.setdefault("pull", []).append(
                    timed(["dvc", "pull", "-q", "-r", "bench"], fresh, env)
                )
                requests, _ = requests_since(before, server)
                r.setdefault("pull_requests", []).append(requests)
                for out in outs:
                    diff = ["diff", "-r", "-q", str(project / out), str(fresh / out)]
                    assert not run(diff, project, env), out
                shutil.rmtree(fresh)
                if kind == "ssh":
                    target = f"{login}:{work / f'rsync{k}'}/"
                    cmd = ["rsync", "-aR", "-e", ssh, *outs, target]
                    r.setdefault("rsync_push", []).append(timed(cmd, project, env))
                    back = work / f"rsync-back{k}"
                    cmd = ["rsync", "-a", "-e", ssh, target, f"{back}/"]
                    r.setdefault("rsync_pull", []).append(timed(cmd, work, env))
    finally:
        if saved is None:
            local_config.unlink(missing_ok=True)
        else:
            local_config.write_bytes(saved)
    med = {kind: {k: statistics.median(v) for k, v in r.items()} for kind, r in results.items()}
    ssh_r, local_r = med["ssh"], med["local"]
    size = sum(p.stat().st_size for p in files) / 1e6
    print(
        f"{project}: {len(outs)} cached outputs, {len(files):,} files, {size:.1f} MB;"
        f" medians of {rounds} rounds"
    )
    print("| | SSH (dvc-ssh) | local folder |")
    print("|---|---:|---:|")
    print(f"| objects on the remote | {ssh_r['objects']:,.0f} | {local_r['objects']:,.0f} |")
    print(f"| dvc push (s) | {ssh_r['push']:.1f} | {local_r['push']:.1f} |")
    print(f"|   sftp requests | {ssh_r['push_requests']:,.0f} | |")
    print(f"| rsync -a over the same sshd (s) | {ssh_r['rsync_push']:.1f} | |")
    print(f"|   push / rsync | x{ssh_r['push'] / ssh_r['rsync_push']:.2f} | |")
    print(f"| dvc pull, fresh checkout (s) | {ssh_r['pull']:.1f} | {local_r['pull']:.1f} |")
    print(f"|   sftp requests | {ssh_r['pull_requests']:,.0f} | |")
    print(f"| rsync -a back (s) | {ssh_r['rsync_pull']:.1f} | |")
    print(f"|   pull / rsync | x{ssh_r['pull'] / ssh_r['rsync_pull']:.2f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("crops", "frames"), default="crops")
    parser.add_argument("--count", type=int, default=0, help="default 12,000 crops, 2,000 frames")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many runs")
    parser.add_argument(
        "--source",
        type=Path,
        help="real crops to vary (default data/dataset/crops.npz) or frames (data/frames);"
        " made-up pictures when absent",
    )
    parser.add_argument(
        "--files-rounds", type=int, default=1, help="push/pull rounds of the many-files layout"
    )
    parser.add_argument(
        "--project",
        type=Path,
        help="instead: push/pull this reproduced project's outputs (e.g. `.` after make repro)",
    )
    parser.add_argument("--write", nargs=5, metavar=("KIND", "LAYOUT", "ITEMS", "VIDEOS", "OUT"))
    args = parser.parse_args()
    if args.write:  # the bench project's stage command
        kind, layout, items, videos, out = args.write
        write_layout(kind, layout, Path(out), Path(items), int(videos))
        return
    args.count = args.count or (12000 if args.kind == "crops" else 2000)
    args.source = args.source or ROOT / "data" / (
        "dataset/crops.npz" if args.kind == "crops" else "frames"
    )
    for tool in ("git", "rsync", "ssh", "ssh-keygen"):
        if not shutil.which(tool):
            sys.exit(f"error: {tool} not found; apt-get install -y openssh-server rsync")
    if not SSHD.exists():
        sys.exit(f"error: {SSHD} not found; apt-get install -y openssh-server")

    # A kill runs the `finally`s: sshd stopped, the temporary folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("error: killed"))
    work = Path(tempfile.mkdtemp(prefix="charaid-dvc-storage-"))
    try:
        if args.project:
            with Sshd(work / "sshd", log_sftp=True) as server:
                bench_project(args.project.resolve(), args.rounds, work, server)
            return
        if args.kind == "crops":
            items = work / "crops.npy"
            np.save(items, make_crops(args.count, args.source))
            real = args.source.is_file()
        else:
            items = work / "frames"
            make_frames(args.count, args.source, items)
            real = args.source.is_dir()
        src = args.source if real else "made-up pictures"
        print(
            f"{args.count} {args.kind} from {src}, {args.videos} videos; medians of"
            f" {args.rounds} rounds ({args.files_rounds} for push/pull of one file per item)"
        )
        results = {}
        with Sshd(work / "sshd", log_sftp=True) as server:
            for layout in LAYOUTS:
                print(f"... {layout}", file=sys.stderr)
                results[layout] = bench_layout(layout, args, work, server, items)
        print_table(results, NAMES[args.kind])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_table(results: dict, names: tuple[str, str]) -> None:
    rows = [
        ("files in the output", "files", "{:,}"),
        ("MB", "bytes", None),
        ("write the files (s)", "write", "{:.1f}"),
        ("first dvc repro: write + hash + cache (s)", "repro", "{:.1f}"),
        ("no-op dvc repro (s)", "noop", "{:.2f}"),
        ("  its CPU time, user + sys (s)", "noop_cpu", "{:.2f}"),
        ("dvc status (s)", "status", "{:.2f}"),
        ("  its CPU time (s)", "status_cpu", "{:.2f}"),
        ("  load average (1 min) meanwhile", "load", "{:.1f}"),
        ("dvc --version: start-up alone (s)", "startup", "{:.2f}"),
        ("dvc push over ssh (s)", "push", "{:.1f}"),
        ("  objects on the remote", "pushed", "{:,}"),
        ("  files opened (sftp open)", "push_opens", "{:,}"),
        ("  sftp requests (stat, open, close, mkdir...)", "push_requests", "{:,}"),
        ("rsync -a over the same sshd (s)", "rsync_push", "{:.1f}"),
        ("  push / rsync", None, "push"),
        ("dvc pull, fresh clone (s)", "pull", "{:.1f}"),
        ("  files opened (sftp open)", "pull_opens", "{:,}"),
        ("  sftp requests", "pull_requests", "{:,}"),
        ("rsync -a back (s)", "rsync_pull", "{:.1f}"),
        ("  pull / rsync", None, "pull"),
    ]
    print(f"| {'':44} | {names[0]:>14} | {names[1]:>14} |  ratio |")
    print(f"|{'-' * 46}|{'-' * 15}:|{'-' * 15}:|{'-' * 7}:|")
    for label, key, fmt in rows:
        cells = []
        for layout in LAYOUTS:
            r = results[layout]
            if key is None:
                cells.append(f"x{r[fmt] / r['rsync_' + fmt]:.2f}")
            elif key == "bytes":
                cells.append(f"{r[key] / 1e6:.1f}")
            else:
                cells.append(fmt.format(r[key]))
        a, b = results["files"], results["archive"]
        ratio = f"x{a[key] / b[key]:.1f}" if key and key != "files" and b[key] else ""
        if key == "files":
            ratio = f"x{a[key] / b[key]:.0f}"
        print(f"| {label:44} | {cells[0]:>14} | {cells[1]:>14} | {ratio:>6} |")


if __name__ == "__main__":
    main()
