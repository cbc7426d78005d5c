"""The `charaid` command line as a newcomer meets it: help, usage errors, params messages, pipes.

- every command's --help has a description, examples, and each default once, from the code;
- a mistyped command line exits 1 with its usage and one `error: ...; see charaid <cmd> --help`;
- a params problem names the file actually used, and says what to do outside the project;
- stdout closed early (`| head -1`) exits 141 with nothing on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from charaid import cli
from charaid.cli import build_parser, main
from charaid.errors import CharaidError
from charaid.stage import CLOSED_PIPE_EXIT, run
from tests.helpers import ROOT

COMMANDS = ["predict", "serve", "detect-eval", "export-crops", "label"]


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


# ------------------------------------------------------------------------------------- help


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_a_description_examples_and_each_default_once(name, capsys):
    parser = subcommands()[name]
    code, out, _ = run_main(capsys, name, "--help")
    assert code == 0
    flat = " ".join(out.split())  # argparse wraps lines anywhere
    assert parser.description and " ".join(parser.description.split()) in flat
    examples = out.split("examples:\n", 1)[1]
    assert f"  charaid {name}" in examples
    shown = [
        a.default
        for a in parser._actions
        if a.default not in (None, argparse.SUPPRESS) and a.default is not False
    ]
    assert shown  # every command has options with defaults
    for default in shown:
        assert f"(default: {default})" in flat, default
    # each default once: no hand-written "(default 16)" beside the generated "(default: 16)"
    assert flat.count("(default") == len(shown), flat


def test_top_level_help_lists_examples_and_exit_status(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0
    assert "examples:" in out and "charaid predict" in out
    assert "exit status:" in out and f"{CLOSED_PIPE_EXIT}" in out


def test_max_frames_help_says_frames_stream(capsys):
    _, out, _ = run_main(capsys, "predict", "--help")
    flat = " ".join(out.split())
    assert "held in memory (default" not in flat
    assert "read one at a time, not held in memory" in flat and "(default: 200)" in flat


# ------------------------------------------------------------------------------ usage errors


@pytest.mark.parametrize(
    ("argv", "prog", "what"),
    [
        ([], "charaid", "the following arguments are required: COMMAND"),
        (["predcit", "x.png"], "charaid", "invalid choice: 'predcit'"),
        (["predict"], "charaid predict", "the following arguments are required: PATH"),
        (["predict", "x.png", "--batch", "0"], "charaid predict", "--batch: must be > 0"),
        (["serve", "--port", "eighty"], "charaid serve", "--port: invalid int value"),
        (["label", "--clusters", "-1"], "charaid label", "--clusters: must be >= 0"),
        (["detect-eval", "set", "--bogus"], "charaid", "unrecognized arguments: --bogus"),
        (
            ["export-crops", "a", "--faces", "b"],
            "charaid export-crops",
            "FACES and --faces name different folders (a, b)",
        ),
    ],
)
def test_usage_errors_exit_1_with_usage_and_one_error_line(capsys, argv, prog, what):
    code, out, err = run_main(capsys, *argv)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"usage: {prog}"), err
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [lines[-1]], err  # one error line, the last
    assert what in lines[-1] and lines[-1].endswith(f"; see {prog} --help"), lines[-1]
    assert "Traceback" not in err


def test_usage_error_exit_code_through_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "from charaid.cli import main; main()", "predict"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("error: the following arguments are required: PATH; see charaid predict --help")


# ------------------------------------------------------------------- inputs: FACES in both


@pytest.mark.parametrize("command", ["export-crops", "label"])
@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], "data/faces"), (["x/faces"], "x/faces"), (["--faces", "x/faces"], "x/faces")]
    + [(["x/faces", "--faces", "x/faces"], "x/faces")],
)
def test_faces_folder_is_positional_with_faces_as_an_alias(
    monkeypatch, capsys, command, argv, expected
):
    seen = []
    name = command.replace("-", "_")
    monkeypatch.setattr(cli, name, lambda args: seen.append(args.faces))
    code, _, err = run_main(capsys, command, *argv)
    assert code == 0, err
    assert seen == [expected]


def test_export_crops_positional_folder_reaches_the_command(tmp_path, capsys):
    code, _, err = run_main(capsys, "export-crops", str(tmp_path / "faces"))
    index = tmp_path / "faces" / "index.csv"
    assert code == 1
    assert err == (
        f"error: {index}: missing; run `dvc repro detect_faces` first, "
        "or name the folder it wrote\n"
    )


# --------------------------------------------------------------------- the params file used


def test_outside_the_project_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "predict", "x.png")
    assert code == 1
    assert err == (
        f"error: params.yaml: not found in {tmp_path}, which is not the project folder "
        "(no dvc.yaml); run from the project folder or pass --params FILE\n"
    )


def test_params_missing_inside_a_project(tmp_path, monkeypatch, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(capsys, "detect-eval", "set")
    assert code == 1
    assert err == (
        f"error: params.yaml: missing from the project folder {tmp_path}; "
        "restore it (git checkout params.yaml) or pass --params FILE\n"
    )


@pytest.mark.parametrize("command", [["predict", "x.png"], ["detect-eval", "set"], ["label"]])
def test_a_missing_params_file_given_is_named(tmp_path, capsys, command):
    path = tmp_path / "mine.yaml"
    code, _, err = run_main(capsys, *command, "--params", str(path))
    assert code == 1
    assert err == (
        f"error: {path}: cannot read it (No such file or directory); check the --params path\n"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(trian={"epochs": 3}), "unknown key 'trian'; did you mean 'train'?"),
        (lambda p: p["train"].update(epochs=-3), "train.epochs must be an integer >= 1 (got -3)"),
        (lambda p: p["split"].pop("seed"), "split is missing seed"),
    ],
)
def test_params_errors_name_the_file_given(tmp_path, sample_params, capsys, change, message):
    change(sample_params)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(sample_params))
    code, _, err = run_main(capsys, "detect-eval", str(tmp_path), "--params", str(path))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"error: {path}: {message}"), err
    assert "params.yaml" not in err


# ---------------------------------------------------------------------- a pipe closed early


def _env() -> dict:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": bindir + os.pathsep + os.environ["PATH"],
        "TQDM_DISABLE": "1",
    }


def _pipe_one_line(argv: list[str], cwd: Path) -> tuple[bytes, int, str]:
    """Run `charaid argv` with stdout into a real pipe, read one line, close the pipe: what
    `charaid ... | head -1` does. The pipe is shrunk to one page so the output cannot all fit
    in it before the reader goes."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("the pipe size cannot be set on this system")
    process = subprocess.Popen(
        [sys.executable, "-c", "from charaid.cli import main; main()", *argv],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        line = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read().decode()
        return line, process.wait(timeout=120), err
    finally:
        process.kill()
        process.wait()


def _assert_quiet(err: str) -> None:
    for word in ("error", "Error", "Traceback", "Exception ignored", "Broken pipe"):
        assert word not in err, err


@pytest.fixture
def yolo_set(tmp_path) -> tuple[Path, Path]:
    """40 one-picture sub-folders with a box each (a --json report of ~9 KB, over 4 KB), and a
    params file with the animeface backend: no detector weights needed."""
    for i in range(40):
        folder = tmp_path / "set" / f"g{i:02d}"
        folder.mkdir(parents=True)
        image = np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)
        cv2.imwrite(str(folder / "a.png"), image)
        (folder / "a.txt").write_text("0 0.5 0.5 0.4 0.5\n")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["detect_faces"].update(backend="animeface", workers=1)
    params["predict"]["unknown_method"] = "softmax"  # no gallery in the untrained model below
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params))
    return tmp_path / "set", tmp_path / "p.yaml"


def test_detect_eval_json_into_a_closed_pipe_is_quiet(yolo_set, tmp_path):
    folder, params = yolo_set
    argv = ["detect-eval", str(folder), "--params", str(params), "--json"]
    whole = subprocess.run(
        [sys.executable, "-c", "from charaid.cli import main; main()", *argv],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        timeout=120,
    )
    assert whole.returncode == 0, whole.stderr
    assert len(whole.stdout) > 4096 and json.loads(whole.stdout)["frames"] == 40
    line, code, err = _pipe_one_line(argv, tmp_path)
    assert line == b"{\n"
    assert code == CLOSED_PIPE_EXIT, err
    _assert_quiet(err)


def _untrained_model(folder: Path) -> Path:
    import chainer
    from chainer import serializers

    from charaid.models import build_model

    folder.mkdir()
    model = build_model("seed_cnn", 2, fast=True)
    with chainer.using_config("train", False):
        model.features(np.zeros((1, 3, 50, 50), np.float32))  # initialise the lazy layers
    serializers.save_npz(str(folder / "model.npz"), model)
    meta = {"model": "seed_cnn", "classes": ["A", "B"], "input_size": 50, "fast": True}
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def test_predict_json_into_a_closed_pipe_is_quiet(yolo_set, tmp_path):
    folder, params = yolo_set
    models = _untrained_model(tmp_path / "models")
    argv = ["predict", str(folder), "--model", str(models), "--params", str(params)]
    argv += ["--out", str(tmp_path / "out"), "--json"]
    line, code, err = _pipe_one_line(argv, tmp_path)
    assert line == b"[\n"
    assert code == CLOSED_PIPE_EXIT, err
    _assert_quiet(err)


def test_a_broken_pipe_that_is_not_stdout_stays_an_error(capsys):
    def main() -> None:
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a worker's pipe, not the reader's

    with pytest.raises(SystemExit) as exc:
        run(main)
    assert exc.value.code == 1
    assert capsys.readouterr().err.startswith("error: Broken pipe; ")


def test_a_charaid_error_is_still_one_line(capsys):
    def main() -> None:
        raise CharaidError("x.png: not a picture; give a picture")

    with pytest.raises(SystemExit) as exc:
        run(main)
    assert exc.value.code == 1
    assert capsys.readouterr().err == "error: x.png: not a picture; give a picture\n"
