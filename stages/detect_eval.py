"""Stage detect_eval: score detect_faces against ground truth (params: label, detect_faces).

Writes metrics/detect.json: recall / precision / F1 at IoU 0.5 and 0.3, overall and per video,
and per lighting condition on the demo, and the recall a score threshold keeps at precision 0.95;
metrics/detect_pr.csv: that precision-recall curve over detection scores; and
metrics/detect_errors.png: the missed faces and false detections in context. Without ground
truth (label.from: folders) the file says so and the others are empty, so that all exist for DVC
either way.
"""

from pathlib import Path

from charaid.atomic import write_json
from charaid.config import load_params
from charaid.detect_eval import demo_lighting, score_pipeline, write_curve, write_error_sheet
from charaid.stage import run

DEMO_TRUTH = Path("data/demo/truth")  # where make_demo writes its ground truth
SHEET = Path("metrics/detect_errors.png")
CURVE = Path("metrics/detect_pr.csv")


def main() -> None:
    p = load_params()
    truth = Path(p["label"]["path"])
    if p["label"]["from"] != "truth":
        write_json("metrics/detect.json", {"ground_truth": False})
        write_error_sheet(SHEET, [])
        write_curve(CURVE, [])
        print("detect_eval: no ground truth (label.from is not 'truth'); nothing scored")
        return
    # the demo's lighting per frame is replayed from its seeded plan, only for the demo's truth
    lighting = demo_lighting(p["make_demo"]) if truth.resolve() == DEMO_TRUTH.resolve() else None
    result = score_pipeline(Path("data/frames"), Path("data/faces"), truth, lighting, SHEET, CURVE)
    result["ground_truth"] = True
    result["backend"] = p["detect_faces"]["backend"]
    write_json("metrics/detect.json", result)
    o = result["overall"]
    print(
        f"detect_eval: {result['frames']} frames, {o['faces']} faces: recall {o['recall_iou50']}, "
        f"precision {o['precision_iou50']} at IoU 0.5"
    )


if __name__ == "__main__":
    run(main)
