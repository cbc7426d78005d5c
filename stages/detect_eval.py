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
    truth = Path(p.label.path)
    if p.label.from_ != "truth":
        write_json("metrics/detect.json", {"ground_truth": False})
        write_error_sheet(SHEET, [])
        write_curve(CURVE, [])
        print("detect_eval: no ground truth (label.from is not 'truth'); nothing scored")
        return
    # the demo's lighting per frame is replayed from its seeded plan, only for the demo's truth
    lighting = demo_lighting(p.make_demo) if truth.resolve() == DEMO_TRUTH.resolve() else None
    # the learned detector's own training frames flatter it: score the held-out videos apart
    held_out = None
    trained_on = p.train_detector.truth
    learned = p.detect_faces.backend == "learned"
    if learned and trained_on and Path(trained_on).resolve() == truth.resolve():
        held_out = set(p.train_detector.holdout_videos)
    result = score_pipeline(
        Path("data/frames"), Path("data/faces"), truth, lighting, SHEET, CURVE, held_out
    )
    result["ground_truth"] = True
    result["backend"] = p.detect_faces.backend
    write_json("metrics/detect.json", result)
    o = result["overall"]
    print(
        f"detect_eval: {result['frames']} frames, {o['faces']} faces: recall {o['recall_iou50']}, "
        f"precision {o['precision_iou50']} at IoU 0.5"
    )
    if "held_out" in result.get("detector_training", {}):
        h = result["detector_training"]["held_out"]
        print(
            f"detect_eval: videos the detector never trained on, {h['faces']} faces: recall "
            f"{h['recall_iou50']}, precision {h['precision_iou50']} at IoU 0.5"
        )


if __name__ == "__main__":
    run(main)
