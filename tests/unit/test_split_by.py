"""split.by: crop | shot | episode, seeded; shots and episodes are never on both sides."""

import random

import numpy as np
import pytest

from charaid.errors import CharaidError
from charaid.split import origin, shot_keys, split_rows

LABELS = ("Akari", "Sora", "other")


def episode_rows(videos=6, frames=20):
    """Truth-style rows (`<video>#<frame>`): every frame has one face of each class."""
    return [
        {"id": f"{v}/{f:06d}_{k}", "label": label, "role": "cast", "source": f"{v}#{f}"}
        for v in (f"ep{i:02d}" for i in range(1, videos + 1))
        for f in range(0, frames * 12, 12)  # extract_frames keeps one frame in 12
        for k, label in enumerate(LABELS)
    ]


def sides(parts, key):
    """The groups (by `key` of a row id) on each side."""
    return ({key(r["id"]) for r in parts["train"]}, {key(r["id"]) for r in parts["test"]})


def test_episode_holds_out_whole_videos_per_class_count():
    rows = episode_rows()
    parts = split_rows(rows, 25, seed=0, by="episode")
    train, test = sides(parts, lambda i: i.split("/")[0])
    assert train and test and not train & test
    for label in LABELS:  # 20 faces an episode: two episodes reach 25
        assert sum(r["label"] == label for r in parts["test"]) == 40
    assert len(parts["train"]) + len(parts["test"]) == len(rows)


def test_episode_is_seeded_and_independent_of_input_order():
    rows = episode_rows()
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    first = split_rows(rows, 0.2, 3, by="episode")
    assert split_rows(shuffled, 0.2, 3, by="episode") == first
    others = {
        frozenset(r["id"].split("/")[0] for r in split_rows(rows, 0.2, s, "episode")["test"])
        for s in range(6)
    }
    assert len(others) > 1


def test_episode_of_scene_pictures_is_their_folder():
    rows = [
        {"id": f"{s}/p{i}.png#0", "label": lab, "role": "box", "source": f"/sc/{s}/p{i}.png"}
        for s in ("s1", "s2", "s3", "s4")
        for i in range(5)
        for lab in ("Dee", "Dex")
    ]
    assert origin(rows[0]) == ("/sc/s1", "p0.png")
    parts = split_rows(rows, 5, 0, by="episode")
    train, test = sides(parts, lambda i: i.split("/")[0])
    assert len(test) == 1 and not train & test


def test_episode_without_two_videos_holds_out_shots(capsys):
    flat = [  # labeled folders without <character>/<video>/ sub-folders
        {"id": f"{lab}/{i}.png", "label": lab, "role": "folder", "source": f"x/{lab}/{i}.png"}
        for lab in ("Mio", "Yui")
        for i in range(10)
    ]
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in flat]
    parts = split_rows(flat, 2, 0, by="episode", images=images)
    assert parts == split_rows(flat, 2, 0, by="shot", images=images)
    assert "carry no video, so whole shots are held out instead" in capsys.readouterr().out
    nested = [{**r, "id": r["id"].replace("/", f"/ep{int(r['id'][-5]) % 2}/")} for r in flat]
    assert origin(nested[0]) == ("ep0", "0")
    parts = split_rows(nested, 2, 0, by="episode")
    assert len({r["id"].split("/")[1] for r in parts["test"]}) == 1
    one_video = [{**r, "id": r["id"].replace("/", "/ep1/")} for r in flat]
    assert split_rows(one_video, 2, 0, by="episode", images=images)["test"]
    assert "come from one video (ep1)" in capsys.readouterr().out
    apart = [{**r, "id": r["id"].replace("/", f"/{r['label']}_ep/")} for r in flat]
    with pytest.raises(CharaidError, match=r"split.by episode: no episode can be held out whole"):
        split_rows(apart, 2, 0, by="episode")  # each episode holds a class's last crops


def test_a_class_in_too_few_episodes_is_named(capsys):
    rows = episode_rows(videos=4)
    rows += [  # Mio is only in ep01: held out, she would have no training crops
        {"id": f"ep01/mio{f}", "label": "Mio", "role": "cast", "source": f"ep01#{f}"}
        for f in range(30)
    ]
    parts = split_rows(rows, 10, 0, by="episode")
    assert not any(r["label"] == "Mio" for r in parts["test"])
    assert "class 'Mio' gets 0 test crops of the 10 asked for" in capsys.readouterr().err


def shot_dataset(seed=0):
    """Two videos of shots 3-6 frames long; within a shot a face barely changes (a held pose),
    from shot to shot it is another picture. Returns rows, crops and the true shot of each."""
    rng = np.random.default_rng(seed)
    rows, images, truth = [], [], []
    for video in ("ep01", "ep02"):
        frame = 0
        for shot in range(12):
            base = {lab: rng.integers(0, 256, (50, 50, 3)) for lab in LABELS}
            for _ in range(int(rng.integers(3, 7))):
                for k, lab in enumerate(LABELS):
                    noise = rng.integers(-3, 4, (50, 50, 3))
                    images.append(np.clip(base[lab] + noise, 0, 255).astype(np.uint8))
                    rid = f"{video}/{frame:06d}_{k}"
                    rows.append(
                        {"id": rid, "label": lab, "role": "cast", "source": f"{video}#{frame}"}
                    )
                    truth.append(f"{video}/{shot}")
                frame += 12
    return rows, images, truth


def test_shot_keys_find_the_runs_of_look_alike_frames():
    rows, images, truth = shot_dataset()
    keys = shot_keys(rows, images)
    # the same partition of the rows as the true shots
    assert len(set(keys)) == len(set(truth)) == 24
    assert len(set(zip(keys, truth, strict=True))) == 24


def test_shot_split_keeps_every_shot_on_one_side_and_is_deterministic():
    rows, images, truth = shot_dataset()
    shot_of = dict(zip((r["id"] for r in rows), truth, strict=True))
    parts = split_rows(rows, 10, 0, by="shot", images=images)
    train, test = sides(parts, shot_of.get)
    assert test and not train & test
    for label in LABELS:
        n = sum(r["label"] == label for r in parts["test"])
        assert 10 <= n <= 20  # at least the count, at most twice it
    order = list(range(len(rows)))
    random.Random(2).shuffle(order)
    again = split_rows([rows[i] for i in order], 10, 0, "shot", [images[i] for i in order])
    assert again == parts
    assert split_rows(rows, 10, 1, "shot", images)["test"] != parts["test"]


def test_crop_is_the_default_and_unchanged():
    rows = episode_rows()
    assert split_rows(rows, 25, 0) == split_rows(rows, 25, 0, by="crop")
    train, test = sides(split_rows(rows, 25, 0), lambda i: i.split("/")[0])
    assert train & test  # crops of one video on both sides: what shot and episode avoid


def test_params_name_the_modes(sample_params):
    from charaid.config import Params

    sample_params["label"]["from"] = "scenes"
    assert Params.from_mapping(sample_params).label.from_ == "scenes"
    sample_params["split"]["by"] = "video"
    with pytest.raises(CharaidError, match=r"split.by must be one of crop, shot, episode"):
        Params.from_mapping(sample_params)
