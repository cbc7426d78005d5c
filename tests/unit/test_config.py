import dataclasses

import pytest
import yaml

from charaid.config import (
    SCHEMA,
    LabelParams,
    Params,
    TrainDetectorParams,
    load_params,
    load_section,
    parse_section,
)
from charaid.errors import CharaidError


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_shipped_params_are_valid_and_typed(sample_params):
    params = Params.from_mapping(sample_params)
    assert params.train.epochs == sample_params["train"]["epochs"]
    assert params.to_dict() == sample_params  # what is written to disk: the YAML as read


def test_sections_are_frozen_and_lists_tuples(sample_params):
    params = Params.from_mapping(sample_params)
    detector = params.train_detector
    assert isinstance(detector, TrainDetectorParams)
    assert detector.widths == tuple(sample_params["train_detector"]["widths"])
    assert detector.to_dict()["widths"] == sample_params["train_detector"]["widths"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        detector.epochs = 3  # type: ignore[misc]
    assert dataclasses.replace(detector, epochs=3).epochs == 3


def test_a_keyword_key_is_an_attribute_with_an_underscore(sample_params):
    label = parse_section("label", sample_params["label"])
    assert isinstance(label, LabelParams) and label.from_ == sample_params["label"]["from"]
    assert label.to_dict()["from"] == label.from_ and "from_" not in label.to_dict()
    assert list(SCHEMA["label"]) == ["from", "path", "min_iou", "other_class"]


def test_schema_is_derived_from_the_dataclasses(sample_params):
    assert set(SCHEMA) == set(sample_params)  # params.yaml's sections and keys, no more
    for section, fields in SCHEMA.items():
        assert set(fields) == set(sample_params[section]), section


def test_misspelled_key_names_it_and_suggests(tmp_path, sample_params):
    sample_params["train"]["epoch"] = sample_params["train"].pop("epochs")
    with pytest.raises(CharaidError) as err:
        load_params(write(tmp_path, sample_params))
    msg = str(err.value)
    assert "train.epoch" in msg and "did you mean 'epochs'" in msg and "batch_size" in msg


def test_unknown_section_is_named(tmp_path, sample_params):
    sample_params["trian"] = {"epochs": 3}
    with pytest.raises(CharaidError, match="unknown key 'trian'; did you mean 'train'"):
        load_params(write(tmp_path, sample_params))


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("train", "epochs", "ten", "train.epochs must be an integer >= 1"),
        ("train", "epochs", -3, "train.epochs must be an integer >= 1 (got -3)"),
        ("train", "epochs", True, "train.epochs must be an integer"),
        ("train", "fast", "yes", "train.fast must be true/false"),
        ("detect_faces", "backend", "yolo", "must be one of learned, animeface, lbp"),
        ("detect_faces", "crop_size", 0, "detect_faces.crop_size must be an integer in [8, 512]"),
        ("train", "lr", "0.1", "train.lr must be a number"),
        ("train", "lr_decay", "cosine", "train.lr_decay must be one of none, linear"),
        (
            "train_detector",
            "pseudo",
            "lbp",
            "train_detector.pseudo must be one of \"\", animeface, ensemble (got 'lbp')",
        ),
        ("detect_faces", "white_balance", "yes", "detect_faces.white_balance must be true/false"),
        ("train_detector", "scenes", "data/scenes", "train_detector.scenes must be a list of str"),
        ("train_detector", "widths", [16, "32"], "train_detector.widths must be a list of int"),
        (
            "train_detector",
            "patch",
            224,
            "train_detector.patch must be an integer in [64, 1024], a multiple of 64 (got 224)",
        ),
        (
            "detect_faces",
            "detector_min_score",
            "best",
            "detector_min_score must be a number in [0.0, 1.0] or auto (got 'best')",
        ),
        ("detect_faces", "detector_min_score", 1.5, "in [0.0, 1.0] or auto (got 1.5)"),
    ],
)
def test_bad_values_name_key_and_allowed(tmp_path, sample_params, section, key, value, expected):
    sample_params[section][key] = value
    with pytest.raises(
        CharaidError, match=expected.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        load_params(write(tmp_path, sample_params))


def test_missing_key_and_section(tmp_path, sample_params):
    del sample_params["split"]["seed"]
    with pytest.raises(CharaidError, match="split is missing seed"):
        load_params(write(tmp_path, sample_params))
    del sample_params["split"]
    with pytest.raises(CharaidError, match="section 'split' is missing"):
        load_section("split", write(tmp_path, sample_params))
    del sample_params["predict"]  # every section is required, whatever the command reads
    with pytest.raises(CharaidError, match="sections 'split', 'predict' are missing"):
        load_params(write(tmp_path, sample_params))


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(CharaidError, match="not valid YAML at line"):
        load_params(bad)
    with pytest.raises(CharaidError, match="cannot read"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize("value", ["auto", 0.25, 1])
def test_a_number_or_word_field_takes_either(tmp_path, sample_params, value):
    sample_params["detect_faces"]["detector_min_score"] = value
    loaded = load_params(write(tmp_path, sample_params))
    assert loaded.detect_faces.detector_min_score == value


def test_messages_name_the_file_read(tmp_path, sample_params):
    sample_params["train"]["epochs"] = 0
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(sample_params))
    with pytest.raises(CharaidError) as err:
        load_params(path)
    assert str(err.value) == f"{path}: train.epochs must be an integer >= 1 (got 0)"


def test_params_yaml_outside_the_project_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CharaidError) as err:
        load_params()  # a stage: no --params to suggest
    assert str(err.value) == (
        f"params.yaml: not found in {tmp_path}, which is not the project folder (no dvc.yaml); "
        "run from the project folder"
    )
    with pytest.raises(CharaidError) as err:
        load_params("params.yaml", "--params")  # a charaid command
    assert str(err.value).endswith("; run from the project folder or pass --params FILE")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    with pytest.raises(CharaidError) as err:
        load_params()
    assert str(err.value) == (
        f"params.yaml: missing from the project folder {tmp_path}; "
        "restore it (git checkout params.yaml)"
    )
