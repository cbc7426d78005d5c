"""Shared fixtures. Constants and helper functions live in tests/helpers.py; test modules import
those from there and get these fixtures from pytest, without importing anything from here."""

from __future__ import annotations

from pathlib import Path

import pytest

# before tests.helpers imports numpy: charaid picks OpenBLAS's kernels for this CPU when numpy
# has not loaded them yet (else the suite runs the generic ones, and says so)
import charaid  # noqa: F401
from tests.helpers import ROOT, SEED_CNN, DemoModel, build_demo_model, make_crops, section_with

LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, the folder it is in: `-m "not e2e"` selects by layer."""
    tests = ROOT / "tests"
    for item in items:
        path = Path(item.path)
        layer = path.parent.name
        if layer in LAYERS and path.parent.parent == tests:
            item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture
def sample_params() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny seed_cnn trained for 4 epochs on make_crops' three classes, in a folder with its
    dataset, split, models and metrics: (that folder, train's result). Built per module."""
    from charaid.dataset import load_dataset
    from charaid.labels import build_dataset
    from charaid.split import split_rows, write_split
    from charaid.train import train

    tmp = tmp_path_factory.mktemp("train")
    make_crops(tmp / "labeled")
    label_params = section_with(
        "label", from_="folders", path=str(tmp / "labeled"), min_iou=0.5, other_class="other"
    )
    build_dataset(label_params, 50, tmp, tmp / "dataset")
    rows = load_dataset(tmp / "dataset")[1]
    write_split(split_rows(rows, 4, 0), tmp / "split")
    params = section_with("train", **SEED_CNN, seed=0, epochs=4, batch_size=10, lr=0.002, fast=True)
    (tmp / "models").mkdir()
    (tmp / "metrics").mkdir()
    result = train(
        params, tmp / "dataset", tmp / "split", tmp / "models", tmp / "metrics", tmp / "snapshots"
    )
    return tmp, result


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory) -> DemoModel:
    """A small real model on the demo show (tests.helpers.build_demo_model), once per session."""
    return build_demo_model(tmp_path_factory.mktemp("demo_model"))
