"""Property-based tests of the pure parts: boxes, matching, split, params validation."""

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charaid.boxes import iou, match
from charaid.config import Params
from charaid.errors import CharaidError
from charaid.split import split_rows
from tests.helpers import ROOT

coord = st.floats(-500, 500, allow_nan=False)
side = st.floats(1, 300, allow_nan=False)
boxes = st.tuples(coord, coord, side, side)


@given(boxes, boxes)
def test_iou_is_symmetric_and_bounded(a, b):
    v = iou(a, b)
    assert 0.0 <= v <= 1.0 + 1e-9
    assert v == pytest.approx(iou(b, a))
    assert iou(a, a) == pytest.approx(1.0)


@given(st.lists(boxes, max_size=8), st.lists(boxes, max_size=8), st.floats(0.05, 1.0))
def test_match_is_one_to_one_above_threshold(preds, truths, min_iou):
    pairs = match(preds, truths, min_iou)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    assert all(iou(preds[i], truths[j]) >= min_iou for i, j in pairs)


class_sizes = st.dictionaries(
    st.sampled_from(["Akari", "Sora", "Ren", "other", "澪 san"]), st.integers(6, 40), min_size=2
)


@settings(max_examples=50)
@given(class_sizes, st.integers(1, 5), st.integers(0, 2**31), st.randoms())
def test_split_partitions_exactly_and_ignores_order(sizes, holdout, seed, rnd):
    rows = [{"id": f"{c}/{i}.png", "label": c} for c, n in sizes.items() for i in range(n)]
    parts = split_rows(rows, holdout, seed)
    train_ids = [r["id"] for r in parts["train"]]
    test_ids = [r["id"] for r in parts["test"]]
    assert sorted(train_ids + test_ids) == sorted(r["id"] for r in rows)
    assert not set(train_ids) & set(test_ids)
    for c in sizes:
        assert sum(r["label"] == c for r in parts["test"]) == holdout
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert split_rows(shuffled, holdout, seed) == parts


@given(st.integers(-(10**6), 10**6))
def test_epochs_validation_matches_range(epochs):
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = copy.deepcopy(params)
    params["train"]["epochs"] = epochs
    if epochs >= 1:
        Params.from_mapping(params)
    else:
        with pytest.raises(CharaidError, match="train.epochs"):
            Params.from_mapping(params)


def test_random_module_is_not_used_for_split():
    # the split must not depend on Python's global random state
    rows = [{"id": f"a/{i}", "label": "a"} for i in range(20)] + [
        {"id": f"b/{i}", "label": "b"} for i in range(20)
    ]
    random.seed(1)
    first = split_rows(rows, 5, 3)
    random.seed(2)
    assert split_rows(rows, 5, 3) == first
