"""The bench scripts' `-S KEY=VALUE` / `--set KEY=VALUE` flags: each value read as YAML."""

from __future__ import annotations

import copy

import yaml


def apply_settings(values: dict, settings: list[str]) -> dict:
    """A copy of `values` with each `KEY=VALUE` set; a dotted key (`train.epochs`) goes one
    mapping down per dot."""
    out = copy.deepcopy(values)
    for item in settings:
        key, _, value = item.partition("=")
        *path, name = key.split(".")
        target = out
        for part in path:
            target = target[part]
        target[name] = yaml.safe_load(value)
    return out
