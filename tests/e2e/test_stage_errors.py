"""Stages report user errors in one line, with no traceback and no partial output."""

from tests.helpers import assert_one_line_error, make_folders, params_with, run_stage


def test_params_typo_names_the_key(tmp_path, sample_params):
    sample_params["train"]["epohcs"] = 3
    params_with(tmp_path, sample_params)
    assert_one_line_error(run_stage("split", tmp_path), "train.epohcs", "did you mean 'epochs'")


def test_wrong_type_names_key_and_allowed(tmp_path, sample_params):
    params_with(tmp_path, sample_params, detect_faces__backend="opencv")
    assert_one_line_error(
        run_stage("detect_faces", tmp_path), "detect_faces.backend", "learned, animeface, lbp"
    )


def test_missing_input_folder(tmp_path, sample_params):
    params_with(tmp_path, sample_params, extract_frames__input="data/raw/videos")
    assert_one_line_error(run_stage("extract_frames", tmp_path), "data/raw/videos: no such folder")
    assert not (tmp_path / "data" / "frames").exists()


def test_class_smaller_than_holdout_stops_split(tmp_path, sample_params):
    make_folders(tmp_path / "labeled", {"Mio": 30, "Yui": 10})
    params_with(
        tmp_path, sample_params, label__from="folders", label__path="labeled", split__by="crop"
    )
    assert run_stage("label", tmp_path).returncode == 0
    assert_one_line_error(run_stage("split", tmp_path), "class 'Yui' has 10 crops", "hold out 25")
    assert not (tmp_path / "data" / "split").exists()
