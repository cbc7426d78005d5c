"""charaid's own face detector: a small single-stage CNN trained by the `train_detector` stage.

One concern per module: `net` (the architecture), `heatmap` (training targets and decoding),
`scenes` (annotated pictures as training samples), `composite` (faces pasted onto backgrounds),
`backend` (the `learned` backend of detect_faces, and the weights it reads), `threshold`
(the face score kept: fixed, or the one training chose), `yolo_onnx` (the `onnx` backend).
"""
