"""Stage detect_faces: find faces in every frame and cut crops (params: detect_faces)."""

from charaid.config import load_section
from charaid.detect_faces import detect_faces
from charaid.stage import run


def main() -> None:
    summary = detect_faces("data/frames", "data/faces", load_section("detect_faces"))
    print(
        f"detect_faces: {summary['faces']} faces in {summary['frames_with_faces']} of "
        f"{summary['frames']} frames"
    )


if __name__ == "__main__":
    run(main)
