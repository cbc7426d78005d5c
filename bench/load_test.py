"""A bounded load test of `charaid serve` on 127.0.0.1: valid, invalid and oversized uploads.

Starts the server (waitress, default limits) in a subprocess on a free port, sends a fixed,
shuffled mix of requests from N concurrent clients, and reports the status codes per kind (and
any that differ from the expected one), the 5xx count (must be 0), p50/p99 latency, and the
server's memory: RSS after start-up and its peak (VmHWM) over the run.

    python bench/load_test.py --model models --frames data/frames
    python bench/load_test.py --model models --frames data/frames --requests 1000 --concurrency 8
"""

from __future__ import annotations

import argparse
import random
import select
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

# kind -> (share of the requests, expected status)
MIX = {
    "valid": (0.50, 200),
    "not_an_image": (0.10, 415),
    "truncated_png": (0.08, 400),
    "bomb_header": (0.05, 413),
    "empty": (0.04, 400),
    "wrong_field": (0.08, 400),
    "oversized": (0.15, 413),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--frames", default="data/frames", help="folder of demo frames (JPEG)")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-upload-mb", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def bomb_png(side: int = 30000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * side + 1) * 4)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def payloads(frames: Path, max_bytes: int) -> dict[str, list[tuple[str, bytes]]]:
    """Per kind, the (form field, bytes) bodies to pick from."""
    import cv2

    jpgs = sorted(frames.rglob("*.jpg"))[::7][:24]
    if not jpgs:
        sys.exit(f"error: no .jpg frames under {frames}")
    valid = [p.read_bytes() for p in jpgs]
    ok, png = cv2.imencode(".png", cv2.imread(str(jpgs[0])))
    return {
        "valid": [("file", b) for b in valid],
        "not_an_image": [
            ("file", b"<html><script>alert(1)</script></html>"),
            ("file", b"x" * 5000),
        ],
        "truncated_png": [("file", png.tobytes()[: len(png) // 2])],
        "bomb_header": [("file", bomb_png())],
        "empty": [("file", b"")],
        "wrong_field": [("image", valid[0])],
        "oversized": [("file", b"\xff\xd8\xff" + bytes(max_bytes + 512 * 1024))],
    }


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable, "-c", "from charaid.cli import main; main()", "serve", "--port", "0",
        "--model", args.model, "--params", args.params, "--max-upload-mb", str(args.max_upload_mb),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("error: charaid serve exited at start-up")
        if select.select([proc.stdout], [], [], 1)[0]:
            line = proc.stdout.readline()
            if line.startswith("charaid serve: http"):
                return proc, line.split(": ", 1)[1].strip()
    proc.kill()
    sys.exit("error: charaid serve did not start in 120 s")


def rss_mib(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of a process, from /proc, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    args = parse_args()
    bodies = payloads(Path(args.frames), int(args.max_upload_mb * 1024 * 1024))
    rng = random.Random(args.seed)
    kinds = [k for k, (share, _) in MIX.items() for _ in range(round(share * args.requests))]
    kinds = (kinds + ["valid"] * args.requests)[: args.requests]
    rng.shuffle(kinds)
    plan = [(kind, rng.choice(bodies[kind])) for kind in kinds]

    proc, url = start_server(args)
    api = url + "api/predict"
    local = threading.local()
    try:
        requests.get(url + "healthz", timeout=30).raise_for_status()
        rss_start = rss_mib(proc.pid, "VmRSS")

        def send(item: tuple[str, tuple[str, bytes]]) -> tuple[str, int, float]:
            kind, (field, data) = item
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            start = time.perf_counter()
            try:
                status = session.post(api, files={field: ("upload.bin", data)}, timeout=300)
                code = status.status_code
            except requests.RequestException:
                code = -1  # connection error: counted apart
                local.session = None
            return kind, code, time.perf_counter() - start

        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(send, plan))
        wall = time.perf_counter() - started
        rss_end, rss_peak = rss_mib(proc.pid, "VmRSS"), rss_mib(proc.pid, "VmHWM")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    latencies = [lat for _, _, lat in results]
    by_kind: dict[str, Counter] = {}
    for kind, code, _ in results:
        by_kind.setdefault(kind, Counter())[code] += 1
    errors_5xx = sum(1 for _, code, _ in results if code >= 500)
    failed = sum(1 for _, code, _ in results if code < 0)
    unexpected = sum(1 for kind, code, _ in results if code != MIX[kind][1])

    print(
        f"load test: {len(results)} requests, {args.concurrency} concurrent, "
        f"{wall:.1f} s ({len(results) / wall:.1f} req/s), server on {url}"
    )
    for kind, (_, expected) in MIX.items():
        counts = ", ".join(f"{code}: {n}" for code, n in sorted(by_kind.get(kind, {}).items()))
        lat = [lat for k, _, lat in results if k == kind]
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        print(f"  {kind:14} expect {expected}  got {counts:22} p50 {p50:7.1f} ms")
    print(f"5xx: {errors_5xx}   connection errors: {failed}   unexpected status: {unexpected}")
    print(
        f"latency all: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
    )
    print(
        f"server RSS: {rss_start:.0f} MiB after start-up, {rss_end:.0f} MiB at the end, "
        f"peak {rss_peak:.0f} MiB (VmHWM)"
    )
    sys.exit(1 if errors_5xx or failed or unexpected else 0)


if __name__ == "__main__":
    main()
