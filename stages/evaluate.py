"""Stage evaluate: held-out crops (metrics/eval.json, confusion.csv) and the whole chain on the
held-out episodes (metrics/scenes.json, scenes_confusion.csv); params: predict, label."""

from pathlib import Path

from charaid.config import load_params
from charaid.evaluate import evaluate
from charaid.evaluate_scenes import evaluate_scenes
from charaid.stage import run


def main() -> None:
    p = load_params()
    m = evaluate(
        Path("data/dataset"),
        Path("data/split"),
        Path("models"),
        Path("metrics"),
        p.predict,
        p.label.other_class,
    )
    shown = {k: m[k] for k in ("accuracy", "macro_f1")}
    print(
        f"evaluate: {shown}, other show rejected: {m.get('other_show', {}).get('rejection_rate')}"
    )
    truth = Path(p.label.path) if p.label.from_ == "truth" else None
    s = evaluate_scenes(
        Path("data/frames"),
        Path("data/faces"),
        truth,
        Path("data/split"),
        Path("models"),
        p.predict,
        p.label.other_class,
        Path("metrics"),
    )
    if s["scored"]:
        o = s["overall"]
        print(
            f"evaluate: held-out episodes {', '.join(s['videos'])}, {s['faces']} faces: found and "
            f"named {o['found_and_named_iou30']} (IoU 0.3), {o['found_and_named_iou50']} (IoU 0.5)"
        )
    else:
        print(f"evaluate: whole chain not scored: {s['reason']}")


if __name__ == "__main__":
    run(main)
