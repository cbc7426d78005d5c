import random

import pytest

from charaid.errors import CharaidError
from charaid.split import split_rows, write_split


def rows_for(counts):
    return [
        {"id": f"{label}/{i:03d}.png", "label": label}
        for label, n in counts.items()
        for i in range(n)
    ]


def test_holdout_counts_and_partition():
    rows = rows_for({"Akari": 30, "Sora": 40, "other": 120}) + [
        {"id": "os/1.png", "label": "othershow:Zed"}
    ]
    parts = split_rows(rows, 25, seed=0)
    test_counts = {
        label: sum(r["label"] == label for r in parts["test"])
        for label in ("Akari", "Sora", "other")
    }
    assert test_counts == {"Akari": 25, "Sora": 25, "other": 25}
    ids = [r["id"] for part in ("train", "test") for r in parts[part]]
    assert sorted(ids) == sorted(r["id"] for r in rows if not r["label"].startswith("othershow"))
    assert parts["reject"] == [{"id": "os/1.png", "label": "othershow:Zed"}]


def test_fraction_holdout():
    parts = split_rows(rows_for({"a": 10, "b": 20}), 0.2, seed=1)
    assert sum(r["label"] == "a" for r in parts["test"]) == 2
    assert sum(r["label"] == "b" for r in parts["test"]) == 4


def test_seeded_and_independent_of_input_order():
    rows = rows_for({"a": 50, "b": 50})
    shuffled = rows[:]
    random.Random(3).shuffle(shuffled)
    assert split_rows(rows, 10, 7) == split_rows(shuffled, 10, 7)
    assert split_rows(rows, 10, 7)["test"] != split_rows(rows, 10, 8)["test"]


def test_class_smaller_than_holdout_names_class_and_counts():
    with pytest.raises(CharaidError, match=r"class 'Mio' has 20 crops, not enough to hold out 25"):
        split_rows(rows_for({"Mio": 20, "Yui": 60}), 25, 0)


def test_single_class_and_fractional_count_are_refused():
    with pytest.raises(CharaidError, match="at least 2 classes"):
        split_rows(rows_for({"Mio": 50}), 5, 0)
    with pytest.raises(CharaidError, match="whole count"):
        split_rows(rows_for({"a": 50, "b": 50}), 2.5, 0)


def test_write_split(tmp_path):
    counts = write_split(split_rows(rows_for({"a": 5, "b": 5}), 1, 0), tmp_path / "split")
    assert counts == {"train": 8, "test": 2, "reject": 0}
    assert (tmp_path / "split" / "test.csv").read_text().startswith("id,label")
