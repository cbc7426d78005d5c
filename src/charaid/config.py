"""Load and validate params.yaml into one typed model: a frozen dataclass per section.

Each section's dataclass declares every key with its type and its check (`spec`), the one
definition of the file's rules: `SCHEMA`, which messages and docs use, is derived from them.
Every key is required (params.yaml holds the values; there are no defaults in the code).

A typo or a wrong value stops the stage with one line naming the file, the key and what is
allowed; the file is params.yaml unless a command's --params names another.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Self, get_type_hints

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
    multiple: int | None = None  # an integer that must be a multiple of this

    def describe(self) -> str:
        if self.item is not None:
            return f"a list of {_KIND_NAMES[self.item].split(' ', 1)[1]}s"
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if self.choices and float not in kinds:
            return "one of " + ", ".join(c or '""' for c in self.choices)  # "" = off
        text = "a number" if float in kinds else " or ".join(_KIND_NAMES[k] for k in kinds)
        if self.minimum is not None and self.maximum is not None:
            text += f" in [{self.minimum}, {self.maximum}]"
        elif self.minimum is not None:
            text += f" >= {self.minimum}"
        if self.multiple is not None:
            text += f", a multiple of {self.multiple}"
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


def spec(
    kind: type | tuple[type, ...],
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    choices: tuple[str, ...] | None = None,
    item: type | None = None,
    multiple: int | None = None,
    key: str | None = None,
) -> Any:
    """A section's key: its check, and its YAML name where that is no Python name (`from`).
    No default: every key must be given."""
    check = Field(kind, minimum, maximum, choices, item, multiple)
    return dataclasses.field(metadata={"check": check, "key": key})


class Section:
    """What every section dataclass shares: its keys as params.yaml spells them, and the
    mapping it was read from (`to_dict`, for files that record the params)."""

    @classmethod
    def schema(cls) -> dict[str, Field]:
        """YAML key -> check, in declaration order (the order messages list them)."""
        return {key: f.metadata["check"] for key, f in _keys(cls).items()}

    def to_dict(self) -> dict[str, Any]:
        """The section as params.yaml holds it: YAML keys, lists as lists. What is written
        to disk from params is this, so outputs (and DVC hashes) match the dict-based code."""
        values = {}
        for key, f in _keys(type(self)).items():
            value = getattr(self, f.name)
            values[key] = list(value) if isinstance(value, tuple) else value
        return values


@cache
def _keys(cls: type) -> dict[str, dataclasses.Field]:
    return {f.metadata["key"] or f.name: f for f in dataclasses.fields(cls)}


@dataclass(frozen=True)
class MakeDemoParams(Section):
    seed: int = spec(INT, 0)
    characters: int = spec(INT, 2, 6)
    extras: int = spec(INT, 0)
    episodes: int = spec(INT, 1)
    seconds: float = spec(NUM, 0.5)
    fps: int = spec(INT, 1, 60)
    # the demo planner's smallest frame: a group of four faces of >= 44 px side by side
    # needs width / (1.9 * 4) >= 44, and 0.85 * 0.42 * height >= 44 (charaid.demo.plan)
    width: int = spec(INT, 335, 3840)
    height: int = spec(INT, 124, 2160)
    other_show_episodes: int = spec(INT, 0)


@dataclass(frozen=True)
class ExtractFramesParams(Section):
    input: str = spec(STR)
    every_n_frames: int = spec(INT, 1)
    fps: float = spec(NUM, 0)
    dedup_distance: int = spec(INT, -1, 64)
    max_frames: int = spec(INT, 0)


@dataclass(frozen=True)
class DetectFacesParams(Section):
    backend: str = spec(STR, choices=("learned", "animeface", "lbp", "ensemble", "onnx"))
    detector: str = spec(STR)
    detector_min_score: float | str = spec(NUM_OR_WORD, 0.0, 1.0, choices=("auto",))
    onnx: str = spec(STR)
    cascade: str = spec(STR)
    scale_factor: float = spec(NUM, 1.01, 2.0)
    min_neighbors: int = spec(INT, 0)
    min_size: int = spec(INT, 8)
    min_score: float = spec(NUM, 0.0, 1.0)
    white_balance: bool = spec(BOOL)
    dark_level: float = spec(NUM, 0, 255)
    clahe_clip: float = spec(NUM, 0.1, 40.0)
    sharpen: float = spec(NUM, 0.0, 5.0)
    sharpen_sigma: float = spec(NUM, 0.3, 10.0)
    extra_scale: float = spec(NUM, 0.0, 3.0)
    eye_span: float = spec(NUM, 0.0, 1.0)
    reject_text: bool = spec(BOOL)
    merge_iou: float = spec(NUM, 0.05, 1.0)
    pad: float = spec(NUM, 0.0, 1.0)
    margin: float = spec(NUM, 0.0, 1.0)
    crop_size: int = spec(INT, 8, 512)
    workers: int = spec(INT, 0, 256)


@dataclass(frozen=True)
class TrainDetectorParams(Section):
    scenes: tuple[str, ...] = spec(list, item=str)
    truth: str = spec(STR)
    holdout_videos: tuple[str, ...] = spec(list, item=str)
    crops: str = spec(STR)
    init: str = spec(STR)
    pseudo: str = spec(STR, choices=("", "animeface", "ensemble"))  # backends with a 0-1 score
    pseudo_min_score: float = spec(NUM, 0.0, 1.0)
    crop_face: float = spec(NUM, 0.05, 1.0)
    composites: float = spec(NUM, 0.0, 1.0)
    input_size: int = spec(INT, 128, 2048)
    patch: int = spec(INT, 64, 1024, multiple=64)  # FaceNet's deepest stride
    widths: tuple[int, ...] = spec(list, item=int)
    neck: int = spec(INT, 4, 512)
    epochs: int = spec(INT, 1)
    samples_per_epoch: int = spec(INT, 0)
    batch_size: int = spec(INT, 1)
    lr: float = spec(NUM, 1e-7, 1.0)
    seed: int = spec(INT, 0)
    val_fraction: float = spec(NUM, 0.0, 0.9)
    val_pictures: int = spec(INT, 0)
    mirror: bool = spec(BOOL)


@dataclass(frozen=True)
class LabelParams(Section):
    # `from` is a Python keyword: the attribute is `from_`, the YAML key stays `from`
    from_: str = spec(STR, choices=("truth", "folders", "scenes"), key="from")
    path: str = spec(STR)
    min_iou: float = spec(NUM, 0.05, 1.0)
    other_class: str = spec(STR)


@dataclass(frozen=True)
class SplitParams(Section):
    seed: int = spec(INT, 0)
    by: str = spec(STR, choices=("crop", "shot", "episode"))
    test_per_class: float = spec(NUM, 0)


@dataclass(frozen=True)
class TrainParams(Section):
    model: str = spec(STR, choices=("seed_cnn", "bn_cnn", "vgg16"))
    input_size: int = spec(INT, 16, 512)
    augment: bool = spec(BOOL)
    balance: bool = spec(BOOL)
    pretrained: str = spec(STR)
    one_vs_rest: str = spec(STR)
    seed: int = spec(INT, 0)
    epochs: int = spec(INT, 1)
    batch_size: int = spec(INT, 1)
    lr: float = spec(NUM, 1e-7, 1.0)
    lr_decay: str = spec(STR, choices=("none", "linear"))
    fast: bool = spec(BOOL)
    processes: int = spec(INT, 1, 256)


@dataclass(frozen=True)
class PredictParams(Section):
    unknown_method: str = spec(STR, choices=("knn", "softmax"))
    unknown_quantile: float = spec(NUM, 0.0, 0.5)
    unknown_k: int = spec(INT, 1, 50)
    unknown_threshold: float = spec(NUM, 0.0, 1.0)
    top_k: int = spec(INT, 1)


@dataclass(frozen=True)
class AnnotateSamplesParams(Section):
    count: int = spec(INT, 1)


@dataclass(frozen=True)
class Params:
    """The whole params file: one attribute per section, every section required."""

    make_demo: MakeDemoParams
    extract_frames: ExtractFramesParams
    detect_faces: DetectFacesParams
    train_detector: TrainDetectorParams
    label: LabelParams
    split: SplitParams
    train: TrainParams
    predict: PredictParams
    annotate_samples: AnnotateSamplesParams

    @classmethod
    def from_mapping(cls, params: Any, source: str | Path = PARAMS_FILE) -> Self:
        """Check a whole params mapping (as read from YAML) and type it; messages start with
        `source`, the file the mapping came from."""
        source = str(source)
        if not isinstance(params, dict):
            raise CharaidError(f"{source}: expected a mapping of stage sections at the top level")
        sections = {}
        for section, values in params.items():  # the file's order: its first mistake is named
            if section not in SECTIONS:
                raise _unknown_key(str(section), list(SECTIONS), source)
            sections[section] = parse_section(section, values, source)
        missing = [s for s in SECTIONS if s not in sections]
        if len(missing) == 1:
            raise CharaidError(f"{source}: section {missing[0]!r} is missing")
        if missing:
            raise CharaidError(f"{source}: sections {', '.join(map(repr, missing))} are missing")
        return cls(**sections)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The params as params.yaml holds them."""
        return {name: getattr(self, name).to_dict() for name in SECTIONS}


# section name -> its dataclass, in params.yaml's order (the order messages list them)
SECTIONS: dict[str, type[Section]] = get_type_hints(Params)

SCHEMA: dict[str, dict[str, Field]] = {name: cls.schema() for name, cls in SECTIONS.items()}


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
    if field.multiple is not None and value % field.multiple:
        raise wrong
    return value


def _unknown_key(key: str, allowed: list[str], source: str = "params.yaml") -> CharaidError:
    guess = difflib.get_close_matches(key.rsplit(".", 1)[-1], allowed, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return CharaidError(f"{source}: unknown key {key!r}{hint} allowed: {', '.join(allowed)}")


def parse_section(section: str, values: Any, source: str | Path = PARAMS_FILE) -> Any:
    """One section's mapping, checked and typed as its dataclass (`SECTIONS[section]`):
    every key known, every value of the right type and range, none missing."""
    source = str(source)
    if section not in SECTIONS:
        raise _unknown_key(section, list(SECTIONS), source)
    cls = SECTIONS[section]
    keys = _keys(cls)
    if not isinstance(values, dict):
        raise CharaidError(f"{source}: {section} must be a mapping of keys to values")
    typed = {}
    for key, value in values.items():
        if key not in keys:
            raise _unknown_key(f"{section}.{key}", list(keys), source)
        field = keys[key]
        _check_value(f"{section}.{key}", value, field.metadata["check"], source)
        typed[field.name] = tuple(value) if isinstance(value, list) else value  # frozen
    missing = [k for k in keys if k not in values]
    if missing:
        raise CharaidError(f"{source}: {section} is missing {', '.join(missing)}")
    return cls(**typed)


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


def load_params(path: str | Path = PARAMS_FILE, flag: str | None = None) -> Params:
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
    return Params.from_mapping(params, path)


def load_section(section: str, path: str | Path = PARAMS_FILE) -> Any:
    """Validated params of one stage (its dataclass); the whole file is checked so no typo
    goes unnoticed."""
    return getattr(load_params(path), section)
