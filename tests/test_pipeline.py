"""End to end: real `dvc repro` of the whole pipeline on a tiny demo, in a throwaway git repo."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TINY = {
    "make_demo": {
        "characters": 3,
        "extras": 4,
        "episodes": 1,
        "seconds": 12,
        "fps": 2,
        "width": 640,
        "height": 360,
        "other_show_episodes": 1,
    },
    # the detector trains for seconds here, too little to find faces: detect_faces runs a
    # classical backend (tests/test_detector.py runs the learned one on what it learned)
    "train_detector": {"epochs": 2, "samples_per_epoch": 32, "val_pictures": 4},
    "detect_faces": {"backend": "animeface"},
    "split": {"test_per_class": 0.25},
    "train": {"epochs": 2},
    "annotate_samples": {"count": 2},
}


def env() -> dict:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ["PATH"],
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }


def sh(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def copy_pipeline(repo: Path, overrides: dict) -> None:
    """The project's tracked pipeline files into `repo`, params updated per section."""
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "src"):
        shutil.copytree(
            ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    (repo / "metrics").mkdir()
    (repo / "models").mkdir()
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project's tracked pipeline files with tiny params, committed to git."""
    repo = tmp_path_factory.mktemp("project")
    copy_pipeline(repo, TINY)
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "tiny project")
    sh(repo, "dvc", "repro")
    return repo


def test_repro_produces_every_output(project: Path):
    evaluation = json.loads((project / "metrics" / "eval.json").read_text())
    assert 0.0 <= evaluation["accuracy"] <= 1.0
    assert evaluation["other_show"]["faces"] > 0
    assert set(evaluation["per_class"]) >= {"other"}
    model = json.loads((project / "models" / "model.json").read_text())
    assert len(model["classes"]) >= 3
    annotations = json.loads((project / "data" / "annotated" / "annotations.json").read_text())
    assert len(annotations) == 2 and any(a["faces"] for a in annotations)
    for plot in ("train_log.csv", "confusion.csv", "train_loss.png"):
        assert (project / "metrics" / plot).is_file()
    assert (project / "dvc.lock").is_file()


def test_second_repro_runs_nothing(project: Path):
    result = sh(project, "dvc", "repro")
    assert "Running stage" not in result.stdout
    status = sh(project, "dvc", "status")
    assert "up to date" in status.stdout


def test_experiment_changes_show_in_metrics_diff(project: Path):
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "baseline")
    sh(project, "dvc", "exp", "run", "-S", "train.epochs=3")
    diff = sh(project, "dvc", "metrics", "diff", "--json").stdout
    changes = json.loads(diff)
    assert changes["metrics/train.json"]["epochs"] == {"old": 2, "new": 3, "diff": 1}
    # DVCLive's per-epoch summary is a stage metric too: the experiment's last epoch shows
    assert changes["metrics/live/metrics.json"]["epoch"] == {"old": 2, "new": 3, "diff": 1}
