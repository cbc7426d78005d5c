"""`charaid serve`: upload checks, the JSON API (test client, real HTTP), the page in Chromium."""

from __future__ import annotations

import base64
import contextlib
import io
import select
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from charaid import uploads
from charaid.config import load_params
from charaid.predict import Predictor
from charaid.serve import Limits, create_app
from charaid.uploads import UploadError, decode_upload
from tests.helpers import ROOT, DemoModel, named_correctly

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    rng = np.random.default_rng(0)
    ok, buf = cv2.imencode(".png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def bomb_png(side: int) -> bytes:
    """A valid PNG header claiming side x side pixels, with a few KB of (compressible) data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * side + 1) * 8)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- upload checks, no model


def test_uploads_are_typed_by_content_not_name():
    assert decode_upload(png_bytes(), 10**6).image.shape == (48, 64, 3)
    ok, jpg = cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8))
    assert decode_upload(jpg.tobytes(), 10**6).format == "JPEG"
    ok, webp = cv2.imencode(".webp", np.zeros((20, 30, 3), np.uint8))
    assert decode_upload(webp.tobytes(), 10**6).format == "WEBP"
    cases = {
        b"": (400, "empty file"),
        b"hello, not a picture": (415, "unsupported file type"),
        b"GIF89a" + b"\0" * 64: (415, "unsupported file type"),
        png_bytes()[:80]: (400, "could not decode"),  # truncated: header fine, pixels missing
        png_bytes()[:12]: (400, "damaged or truncated header"),
    }
    for data, (status, message) in cases.items():
        with pytest.raises(UploadError, match=message) as exc:
            decode_upload(data, 10**6)
        assert exc.value.status == status


@pytest.mark.parametrize("side", [3000, 30000])
def test_decompression_bombs_are_refused_before_decoding(side, monkeypatch):
    def no_decode(*args):
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(uploads.cv2, "imdecode", no_decode)
    data = bomb_png(side)
    assert len(data) < 100_000
    with pytest.raises(UploadError) as exc:
        decode_upload(data, 4_000_000)
    assert exc.value.status == 413 and ("MP" in str(exc.value) or "bomb" in str(exc.value))


# ---------------------------------------------------------------- Flask test client


@pytest.fixture(scope="module")
def model(demo_model: DemoModel) -> DemoModel:
    return demo_model


@pytest.fixture(scope="module")
def predictor(model) -> Predictor:
    return Predictor.load(model.models, load_params(model.params))


@pytest.fixture(scope="module")
def client(predictor):
    return create_app(predictor, Limits(max_bytes=1024 * 1024, max_pixels=4_000_000)).test_client()


def upload(client, data: bytes, field: str = "file", name: str = "picture.png", query: str = ""):
    return client.post(f"/api/predict{query}", data={field: (io.BytesIO(data), name)})


@pytest.mark.slow
def test_page_health_and_openapi(client, model):
    page = client.get("/")
    assert page.status_code == 200 and b'id="file"' in page.data and b'type="file"' in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/healthz").json == {"status": "ok", "classes": model.classes}
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/api/predict" in spec["paths"]
    post = spec["paths"]["/api/predict"]["post"]
    assert set(post["responses"]) == {"200", "400", "413", "415", "500"}
    assert "1048576 bytes" in str(post["requestBody"])


@pytest.mark.slow
def test_api_names_the_faces_and_returns_the_annotated_picture(client, model):
    sample = model.samples[0]
    response = upload(client, sample.read_bytes(), name="../../etc/passwd", query="?annotated=1")
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["width"], body["height"], body["format"]) == (960, 540, "JPEG")
    matched, right = named_correctly(body["faces"], model.truth[sample.name])
    assert matched >= 2 and right / matched >= 0.7
    prefix = "data:image/jpeg;base64,"
    assert body["annotated"].startswith(prefix)
    jpeg = base64.b64decode(body["annotated"][len(prefix) :])
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (540, 960, 3)
    assert "annotated" not in upload(client, sample.read_bytes()).json


@pytest.mark.slow
def test_bad_uploads_get_one_line_json_errors(client):
    big = b"\xff\xd8\xff" + bytes(1024 * 1024)
    cases = [
        (upload(client, b"#!/bin/sh\nrm -rf /\n", name="x.png"), 415),
        (upload(client, png_bytes()[:100]), 400),
        (upload(client, big), 413),
        (upload(client, bomb_png(3000)), 413),
        (upload(client, b""), 400),
        (upload(client, png_bytes(), field="image"), 400),
        (client.post("/api/predict", data=png_bytes(), content_type="image/png"), 400),
        (client.get("/api/predict"), 405),
        (client.get("/no/such/page"), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.json
        assert response.is_json and set(response.json) == {"error"}
        assert "\n" not in response.json["error"] and "Traceback" not in response.json["error"]


@pytest.mark.slow
def test_uploads_never_touch_the_disk(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an upload went to a temporary file")

    for name in ("TemporaryFile", "SpooledTemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    data = png_bytes(500, 450)  # ~680 KB: werkzeug would spool it past 500 KB
    assert len(data) > 600_000
    assert upload(client, data, name="../../../tmp/evil.png").status_code == 200


@pytest.mark.slow
def test_internal_errors_hide_details(model):
    class Broken:
        classes, threshold = model.classes, 0.5

        def predict(self, image):
            raise RuntimeError("secret: /home/user/models")

    client = create_app(Broken()).test_client()  # type: ignore[arg-type]
    response = upload(client, png_bytes())
    assert response.status_code == 500 and response.json == {"error": "internal error"}


# ---------------------------------------------------------------- real HTTP: waitress


@dataclass
class Server:
    url: str
    process: subprocess.Popen


@contextlib.contextmanager
def serving(model: DemoModel, *options: str):
    """`charaid serve --port 0 ...options` in a subprocess, until the block ends; then checks it
    stopped cleanly."""
    command = [
        sys.executable, "-c", "from charaid.cli import main; main()", "serve", "--port", "0",
        "--model", str(model.models), "--params", str(model.params), *options,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    line = ""
    while time.monotonic() < deadline and not line.startswith("charaid serve: http"):
        ready, _, _ = select.select([process.stdout], [], [], 1)
        if ready:
            line = process.stdout.readline()
        if process.poll() is not None:
            pytest.fail(f"charaid serve exited: {process.stderr.read()}")
    url = line.split(": ", 1)[1].strip()
    yield Server(url, process)
    process.terminate()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "stopped" in out
    assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def server(model):
    """`charaid serve` on a free port with small limits (1 MB, 4 MP), to test them cheaply."""
    with serving(model, "--max-upload-mb", "1", "--max-megapixels", "4") as running:
        yield running


@pytest.fixture(scope="module")
def default_server(model):
    """`charaid serve` on a free port with its default limits: the page docs/serve.png shows."""
    with serving(model) as running:
        yield running


@pytest.mark.slow
def test_http_good_and_bad_uploads(server, model):
    assert requests.get(server.url + "healthz", timeout=10).json()["status"] == "ok"
    api = server.url + "api/predict"
    good = requests.post(api, files={"file": ("a.jpg", model.samples[1].read_bytes())}, timeout=60)
    assert good.status_code == 200 and good.json()["faces"]

    def post(data: bytes, field: str = "file") -> requests.Response:
        return requests.post(api, files={field: ("x.png", data)}, timeout=60)

    expected = [
        (post(b"plain text, not a picture"), 415, True),
        (post(png_bytes()[:100]), 400, True),
        (post(b"\xff\xd8\xff" + bytes(1536 * 1024)), 413, True),  # over 1 MB: Flask, JSON
        (post(b"\xff\xd8\xff" + bytes(4 * 1024 * 1024)), 413, False),  # over 3 MB: waitress
        (post(bomb_png(3000)), 413, True),
        (post(b""), 400, True),
        (post(png_bytes(), field="upload"), 400, True),
    ]
    for response, status, is_json in expected:
        assert response.status_code == status, response.text
        if is_json:
            assert set(response.json()) == {"error"}


@pytest.mark.slow
def test_http_concurrent_requests_share_one_model(server, model):
    api = server.url + "api/predict"
    data = [p.read_bytes() for p in model.samples[:4]] * 2

    def post(blob: bytes) -> list[str]:
        response = requests.post(api, files={"file": ("x.jpg", blob)}, timeout=120)
        assert response.status_code == 200, response.text
        return [f["name"] for f in response.json()["faces"]]

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(post, data))
    assert names[:4] == names[4:]  # the same answer under concurrency


# ---------------------------------------------------------------- the page in a real browser


@pytest.mark.slow
def test_upload_page_in_headless_chromium(default_server, model, tmp_path):
    """The page at the default limits, a picture uploaded and answered. Its screenshot,
    test-artifacts/serve.png, is docs/serve.png: when the page changes, copy it there in 256
    colours (PIL: `Image.open(a).quantize(256, dither=Image.Dither.NONE).save(b)`)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1200,1250",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        # the page laid out 1200 px wide, drawn at 0.75: the screenshot is 900 x 830
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1200, "height": 1107, "deviceScaleFactor": 0.75, "mobile": False},
        )
        driver.get(default_server.url)
        assert "Who is in this picture?" in driver.page_source
        assert "up to 10 MB and 40 megapixels" in driver.find_element(By.TAG_NAME, "body").text
        driver.find_element(By.ID, "file").send_keys(str(model.samples[0]))
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#faces tbody td.name"))
        wait.until(lambda d: d.execute_script("return document.getElementById('annotated')"
                                              ".naturalWidth") == 960)  # fmt: skip
        names = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#faces td.name")]
        assert names and set(names) <= {*model.classes, "unknown"}
        truth = {name for name, _ in model.truth[model.samples[0].name]}
        assert truth & set(names)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "serve.png"))

        bad = tmp_path / "notes.png"
        bad.write_text("not a picture")
        driver.find_element(By.ID, "file").send_keys(str(bad))
        wait.until(lambda d: "unsupported file type" in d.find_element(By.ID, "status").text)
    finally:
        driver.quit()
