"""Load and validate params.yaml: every key known, every value of the right type and range.

A typo or a wrong value stops the stage with one line naming the file, the key and what is
allowed; the file is params.yaml unless a command's --params names another.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from charaid.errors import CharaidError

PARAMS_FILE = Path("params.yaml")


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    item: type | None = None  # a list's elements

    def describe(self) -> str:
        if self.item is not None:
            return f"a list of {_KIND_NAMES[self.item].split(' ', 1)[1]}s"
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if self.choices and float not in kinds:
            return "one of " + ", ".join(self.choices)
        text = "a number" if float in kinds else " or ".join(_KIND_NAMES[k] for k in kinds)
        if self.minimum is not None and self.maximum is not None:
            text += f" in [{self.minimum}, {self.maximum}]"
        elif self.minimum is not None:
            text += f" >= {self.minimum}"
        return text + "".join(f" or {c}" for c in self.choices or ())


_KIND_NAMES = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true/false",
    list: "a list",
}

INT, NUM, STR, BOOL = int, (int, float), str, bool
NUM_OR_WORD = (int, float, str)  # a number, or one of the field's `choices`

SCHEMA: dict[str, dict[str, Field]] = {
    "make_demo": {
        "seed": Field(INT, 0),
        "characters": Field(INT, 2, 6),
        "extras": Field(INT, 0),
        "episodes": Field(INT, 1),
        "seconds": Field(NUM, 0.5),
        "fps": Field(INT, 1, 60),
        # the demo planner's smallest frame: a group of four faces of >= 44 px side by side
        # needs width / (1.9 * 4) >= 44, and 0.85 * 0.42 * height >= 44 (charaid.demo.plan)
        "width": Field(INT, 335, 3840),
        "height": Field(INT, 124, 2160),
        "other_show_episodes": Field(INT, 0),
    },
    "extract_frames": {
        "input": Field(STR),
        "every_n_frames": Field(INT, 1),
        "fps": Field(NUM, 0),
        "dedup_distance": Field(INT, -1, 64),
        "max_frames": Field(INT, 0),
    },
    "detect_faces": {
        "backend": Field(STR, choices=("learned", "animeface", "lbp", "ensemble", "onnx")),
        "detector": Field(STR),
        "detector_min_score": Field(NUM_OR_WORD, 0.0, 1.0, choices=("auto",)),
        "onnx": Field(STR),
        "cascade": Field(STR),
        "scale_factor": Field(NUM, 1.01, 2.0),
        "min_neighbors": Field(INT, 0),
        "min_size": Field(INT, 8),
        "min_score": Field(NUM, 0.0, 1.0),
        "white_balance": Field(BOOL),
        "dark_level": Field(NUM, 0, 255),
        "clahe_clip": Field(NUM, 0.1, 40.0),
        "sharpen": Field(NUM, 0.0, 5.0),
        "sharpen_sigma": Field(NUM, 0.3, 10.0),
        "extra_scale": Field(NUM, 0.0, 3.0),
        "eye_span": Field(NUM, 0.0, 1.0),
        "reject_text": Field(BOOL),
        "merge_iou": Field(NUM, 0.05, 1.0),
        "pad": Field(NUM, 0.0, 1.0),
        "margin": Field(NUM, 0.0, 1.0),
        "crop_size": Field(INT, 8, 512),
        "workers": Field(INT, 0, 256),
    },
    "train_detector": {
        "scenes": Field(list, item=str),
        "truth": Field(STR),
        "holdout_videos": Field(list, item=str),
        "crops": Field(STR),
        "init": Field(STR),
        "crop_face": Field(NUM, 0.05, 1.0),
        "composites": Field(NUM, 0.0, 1.0),
        "input_size": Field(INT, 128, 2048),
        "patch": Field(INT, 64, 1024),
        "widths": Field(list, item=int),
        "neck": Field(INT, 4, 512),
        "epochs": Field(INT, 1),
        "samples_per_epoch": Field(INT, 0),
        "batch_size": Field(INT, 1),
        "lr": Field(NUM, 1e-7, 1.0),
        "seed": Field(INT, 0),
        "val_fraction": Field(NUM, 0.0, 0.9),
        "val_pictures": Field(INT, 0),
    },
    "label": {
        "from": Field(STR, choices=("truth", "folders", "scenes")),
        "path": Field(STR),
        "min_iou": Field(NUM, 0.05, 1.0),
        "other_class": Field(STR),
    },
    "split": {
        "seed": Field(INT, 0),
        "by": Field(STR, choices=("crop", "shot", "episode")),
        "test_per_class": Field(NUM, 0),
    },
    "train": {
        "model": Field(STR, choices=("seed_cnn", "bn_cnn", "vgg16")),
        "input_size": Field(INT, 16, 512),
        "augment": Field(BOOL),
        "pretrained": Field(STR),
        "one_vs_rest": Field(STR),
        "seed": Field(INT, 0),
        "epochs": Field(INT, 1),
        "batch_size": Field(INT, 1),
        "lr": Field(NUM, 1e-7, 1.0),
        "lr_decay": Field(STR, choices=("none", "linear")),
        "fast": Field(BOOL),
        "processes": Field(INT, 1, 256),
    },
    "predict": {
        "unknown_method": Field(STR, choices=("knn", "softmax")),
        "unknown_quantile": Field(NUM, 0.0, 0.5),
        "unknown_k": Field(INT, 1, 50),
        "unknown_threshold": Field(NUM, 0.0, 1.0),
        "top_k": Field(INT, 1),
    },
    "annotate_samples": {
        "count": Field(INT, 1),
    },
}


def _check_value(key: str, value: Any, field: Field, source: str = "params.yaml") -> Any:
    kinds = field.kind if isinstance(field.kind, tuple) else (field.kind,)
    # bool is an int subclass in Python; `epochs: true` must still be refused.
    ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if ok and field.item is not None:
        ok = all(type(v) is field.item for v in value)
    wrong = CharaidError(f"{source}: {key} must be {field.describe()} (got {value!r})")
    if not ok or (field.choices and isinstance(value, str) and value not in field.choices):
        raise wrong
    if isinstance(value, str):  # a word: no range to check
        return value
    if field.minimum is not None and value < field.minimum:
        raise wrong
    if field.maximum is not None and value > field.maximum:
        raise wrong
    return value


def _unknown_key(key: str, allowed: list[str], source: str = "params.yaml") -> CharaidError:
    guess = difflib.get_close_matches(key.rsplit(".", 1)[-1], allowed, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return CharaidError(f"{source}: unknown key {key!r}{hint} allowed: {', '.join(allowed)}")


def validate(params: Any, source: str | Path = PARAMS_FILE) -> dict[str, dict[str, Any]]:
    """Check a whole params mapping against SCHEMA; return it unchanged if valid. Messages start
    with `source`, the file the mapping came from."""
    source = str(source)
    if not isinstance(params, dict):
        raise CharaidError(f"{source}: expected a mapping of stage sections at the top level")
    for section, values in params.items():
        if section not in SCHEMA:
            raise _unknown_key(str(section), list(SCHEMA), source)
        fields = SCHEMA[section]
        if not isinstance(values, dict):
            raise CharaidError(f"{source}: {section} must be a mapping of keys to values")
        for key, value in values.items():
            if key not in fields:
                raise _unknown_key(f"{section}.{key}", list(fields), source)
            _check_value(f"{section}.{key}", value, fields[key], source)
        missing = [k for k in fields if k not in values]
        if missing:
            raise CharaidError(f"{source}: {section} is missing {', '.join(missing)}")
    return params


def _unreadable(path: Path, exc: OSError, flag: str | None) -> str:
    """Why a params file cannot be read, and what to do: the usual cause is a command run
    outside the project folder, where the default relative `params.yaml` does not exist."""
    passing = f" or pass {flag} FILE" if flag else ""
    if isinstance(exc, FileNotFoundError) and path == PARAMS_FILE:
        here = Path.cwd()
        if not (here / "dvc.yaml").is_file():
            return (
                f"{path}: not found in {here}, which is not the project folder (no dvc.yaml); "
                f"run from the project folder{passing}"
            )
        return (
            f"{path}: missing from the project folder {here}; "
            f"restore it (git checkout {path}){passing}"
        )
    check = f"check the {flag} path" if flag else "check the path"
    return f"{path}: cannot read it ({exc.strerror or exc}); {check}"


def load_params(
    path: str | Path = PARAMS_FILE, flag: str | None = None
) -> dict[str, dict[str, Any]]:
    """Read and validate a params file (params.yaml, or the file at `path`); every message
    names that file. `flag` is the command-line option that chose it (`--params`), which the
    message of a missing file suggests."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CharaidError(_unreadable(path, exc, flag)) from None
    try:
        params = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        fix = "fix that line" if where else "fix the file"
        raise CharaidError(f"{path}: not valid YAML{line}; {fix}") from None
    return validate(params, path)


def load_section(section: str, path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    """Validated params of one stage; the whole file is checked so no typo goes unnoticed."""
    params = load_params(path)
    if section not in params:
        raise CharaidError(f"{path}: section {section!r} is missing")
    return params[section]
