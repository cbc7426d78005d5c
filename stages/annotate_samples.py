"""Stage annotate_samples: boxes and names drawn on sample frames (params: annotate_samples)."""

from pathlib import Path

from charaid.annotate import annotate_samples
from charaid.config import load_params
from charaid.stage import run


def main() -> None:
    p = load_params()
    s = annotate_samples(
        Path("data/frames"),
        Path("data/faces"),
        Path("models"),
        Path("data/annotated"),
        p.detect_faces,
        p.predict,
        p.annotate_samples.count,
    )
    print(f"annotate_samples: {s['faces']} faces named in {s['images']} pictures")


if __name__ == "__main__":
    run(main)
