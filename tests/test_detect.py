import pytest

from charaid.detect import make_detector
from charaid.errors import CharaidError
from tests.conftest import CASCADE


def lbp_params(**extra):
    params = {
        "backend": "lbp",
        "cascade": str(CASCADE),
        "scale_factor": 1.1,
        "min_neighbors": 5,
        "min_size": 24,
        "min_score": 0.0,
        "margin": 0.2,
        "crop_size": 50,
        "workers": 1,
    }
    return {**params, **extra}


def test_missing_cascade_is_a_clear_error(tmp_path):
    with pytest.raises(CharaidError, match="cascade file not found"):
        make_detector(lbp_params(cascade=str(tmp_path / "nope.xml")))
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(CharaidError, match="not a valid OpenCV cascade"):
        make_detector(lbp_params(cascade=str(bad)))
