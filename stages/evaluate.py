"""Stage evaluate: metrics and confusion matrix on the held-out split (params: predict)."""

from pathlib import Path

from charaid.config import load_params
from charaid.evaluate import evaluate
from charaid.stage import run


def main() -> None:
    p = load_params()
    m = evaluate(
        Path("data/dataset"),
        Path("data/split"),
        Path("models"),
        Path("metrics"),
        p["predict"],
        p["label"]["other_class"],
    )
    shown = {k: m[k] for k in ("accuracy", "macro_f1")}
    print(
        f"evaluate: {shown}, other show rejected: {m.get('other_show', {}).get('rejection_rate')}"
    )


if __name__ == "__main__":
    run(main)
