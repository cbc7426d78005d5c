"""End to end: real `dvc repro` of the whole pipeline on a tiny demo, in a throwaway git repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import TINY, new_project, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project's tracked pipeline files with tiny params, committed to git."""
    repo = new_project(tmp_path_factory.mktemp("project"), TINY)
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
    scenes = json.loads((project / "metrics" / "scenes.json").read_text())
    assert scenes["scored"] and scenes["videos"] == ["othershow01"]
    assert 0.0 <= scenes["overall"]["found_and_named_iou30"] <= 1.0
    confusion = (project / "metrics" / "scenes_confusion.csv").read_text().splitlines()
    assert len(confusion) == 1 + scenes["faces"] and scenes["faces"] > 0
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
