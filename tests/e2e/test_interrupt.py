"""Interruption and determinism, end to end on a tiny demo with real `dvc repro`.

- Determinism: two clean runs in two fresh folders give the same `dvc.lock` hash for every
  output except metrics/train_speed.json (seconds and images/s: a measurement, not a result).
- SIGKILL: in a third folder, `dvc repro` is killed (the whole process group, -9) in the middle
  of each stage in turn, then run again; the final outputs equal the clean run's, and train,
  killed after its first epoch's snapshot, resumes from that snapshot.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import TINY, env, new_project

pytestmark = pytest.mark.slow

# outputs that measure the run rather than result from the data: they cannot repeat
NOT_DETERMINISTIC = {"metrics/train_speed.json"}
PARAMS = {**TINY, "train": {"epochs": 4}}


def lock_outs(repo: Path) -> dict[str, str]:
    """{output path: md5} from dvc.lock, every stage."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
    }


class Repro:
    """`dvc repro` in its own process group, its output lines read as they come, with times."""

    def __init__(self, repo: Path) -> None:
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            ["dvc", "repro"],
            cwd=repo,
            env={**env(), "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, predicate, timeout: float = 600) -> bool:
        """Wait until predicate() holds while dvc runs; False if dvc ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.proc.poll() is not None:
                return predicate()
            time.sleep(0.01)
        raise TimeoutError(self.text()[-3000:])

    def started(self, stage: str) -> bool:
        return any(f"Running stage '{stage}'" in line for _, line in self.lines)

    def kill(self) -> bool:
        """SIGKILL the whole group (dvc, the stage, its workers); True if it was still running."""
        running = self.proc.poll() is None
        if running:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.finish()
        return running

    def finish(self) -> int:
        code = self.proc.wait(timeout=900)
        self.reader.join(10)
        return code

    def durations(self) -> dict[str, float]:
        """Seconds per stage: from "Running stage" to its "Updating lock file"."""
        out, current = {}, None
        for t, line in self.lines:
            if line.startswith("Running stage '"):
                current = (line.split("'")[1], t)
            elif line.startswith("Updating lock file") and current:
                out[current[0]] = t - current[1]
                current = None
        return out


def clean_run(repo: Path) -> Repro:
    run = Repro(new_project(repo, PARAMS))
    assert run.finish() == 0, run.text()[-3000:]
    return run


def temp_siblings(repo: Path) -> list[str]:
    """Temporary outputs of charaid.atomic (hidden `.<name>.*` siblings) present right now."""
    return sorted(
        str(p.relative_to(repo))
        for folder in (repo / "data", repo / "data" / "demo", repo / "models", repo / "metrics")
        if folder.is_dir()
        for p in folder.iterdir()
        if p.name.startswith(".")
        and p.name not in {".train_snapshots", ".detector_snapshots", ".gitignore"}
    )


@pytest.fixture(scope="module")
def clean_runs(tmp_path_factory) -> tuple[Path, Repro, Path]:
    root = tmp_path_factory.mktemp("determinism")
    first = clean_run(root / "a")
    clean_run(root / "b")
    return root, first, root / "a"


def test_two_clean_runs_give_identical_outputs(clean_runs) -> None:
    root, _, _ = clean_runs
    a, b = lock_outs(root / "a"), lock_outs(root / "b")
    assert set(a) == set(b)
    same = sorted(k for k in a if a[k] == b[k])
    differ = sorted(k for k in a if a[k] != b[k])
    print(f"determinism: {len(same)}/{len(a)} outputs identical; differ: {differ}")
    assert set(differ) <= NOT_DETERMINISTIC, differ


def test_sigkill_in_every_stage_then_repro_equals_clean_run(clean_runs, tmp_path) -> None:
    _, reference, reference_dir = clean_runs
    order = [line.split("'")[1] for _, line in reference.lines if line.startswith("Running stage")]
    took = reference.durations()
    repo = new_project(tmp_path / "killed", PARAMS)
    report, texts = [], []
    for stage in order:
        run = Repro(repo)
        assert run.wait_for(lambda s=stage, r=run: r.started(s)), run.text()[-3000:]
        if stage == "train":  # after the first epoch's snapshot, so that there is one to resume
            snap = repo / "data" / ".train_snapshots"
            run.wait_for(lambda s=snap: any(s.glob("*/snapshot")))
        else:  # while it writes its output, or else half way through (as timed in the clean run)
            deadline = time.monotonic() + took[stage] / 2
            run.wait_for(lambda d=deadline: temp_siblings(repo) or time.monotonic() > d)
        temps = temp_siblings(repo)
        killed = run.kill()
        report.append((stage, killed, temps))
        texts.append(run.text())
        assert killed, f"{stage} finished before it could be killed:\n{run.text()[-2000:]}"
    final = Repro(repo)
    assert final.finish() == 0, final.text()[-3000:]
    texts.append(final.text())
    # the run after the one killed in train went on from the snapshot, not from epoch 0
    after_train = texts[order.index("train") + 1]
    assert re.search(r"resuming from the snapshot of epoch [1-9]", after_train), after_train
    for stage, _, temps in report:
        when = (
            "after its first epoch's snapshot"
            if stage == "train"
            else f"while writing {temps}"
            if temps
            else "before writing (half way, as timed)"
        )
        print(f"SIGKILL {stage}: killed mid-run {when}")
    assert not temp_siblings(repo), "temporary outputs left behind"
    ours, clean = lock_outs(repo), lock_outs(reference_dir)
    differ = sorted(k for k in clean if ours.get(k) != clean[k])
    print(f"after kills: {len(clean) - len(differ)}/{len(clean)} outputs equal the clean run's")
    assert set(differ) <= NOT_DETERMINISTIC, differ
