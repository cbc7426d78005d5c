"""Stage make_demo: draw the synthetic demo show (videos + ground truth) into data/demo."""

from pathlib import Path

from charaid.config import load_section
from charaid.demo.render import render_demo
from charaid.stage import run


def main() -> None:
    summary = render_demo(load_section("make_demo"), Path("data/demo"))
    faces = ", ".join(f"{n} {role}" for role, n in summary["faces"].items())
    print(
        f"make_demo: {summary['videos']} videos of {summary['frames_per_video']} frames, "
        f"faces: {faces}"
    )


if __name__ == "__main__":
    run(main)
