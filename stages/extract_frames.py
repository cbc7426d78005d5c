"""Stage extract_frames: sample frames from the input videos (params: extract_frames)."""

from charaid.config import load_section
from charaid.frames import Sampling, extract_frames
from charaid.stage import run


def main() -> None:
    p = load_section("extract_frames")
    sampling = Sampling(p.every_n_frames, p.fps, p.dedup_distance, p.max_frames)
    summary = extract_frames(p.input, "data/frames", sampling)
    print(
        f"extract_frames: {summary['frames']} frames from {summary['videos']} videos"
        f" ({len(summary['skipped'])} skipped)"
    )


if __name__ == "__main__":
    run(main)
