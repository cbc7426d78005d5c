"""`charaid serve`: an upload page and a JSON API that name the faces in a picture.

Production defaults: waitress (a pure-Python WSGI server), a request size limit, types checked
by content, a pixel limit checked before decoding, uploads kept in memory (nothing a client sends
is written to disk, under its name or any other), JSON errors without stack traces.
"""

from __future__ import annotations

import base64
import io
import logging
import signal
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

import cv2
import numpy as np
from flask import Flask, Request, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from charaid.errors import CharaidError
from charaid.openapi import openapi_spec
from charaid.predict import Predictor, face_record
from charaid.predict_files import annotate
from charaid.uploads import ALLOWED, UploadError, decode_upload
from charaid.visualize import class_color

if TYPE_CHECKING:
    from waitress.server import BaseWSGIServer, MultiSocketServer

log = logging.getLogger("charaid.serve")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 1024 * 1024  # whole request body
    max_pixels: int = 40_000_000  # width x height, from the header

    @property
    def mb(self) -> str:
        return f"{self.max_bytes / 1024 / 1024:.3g}"

    @property
    def waitress_body(self) -> int:
        """waitress's own cut-off: bodies up to it reach Flask and get a JSON 413."""
        return 2 * self.max_bytes + 1024 * 1024


class InMemoryRequest(Request):
    """Werkzeug spools file parts over 500 KB to a temporary file; the body is bounded by
    MAX_CONTENT_LENGTH, so keep every part in memory instead."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def hex_color(name: str, classes: list[str]) -> str:
    b, g, r = class_color(name, classes)
    return f"#{r:02x}{g:02x}{b:02x}"


def jpeg_data_url(image: np.ndarray, quality: int = 90) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any BGR uint8 array
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def create_app(predictor: Predictor, limits: Limits | None = None) -> Flask:
    """The WSGI app; `predictor` is shared by every request (it holds its own locks)."""
    limits = limits or Limits()
    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.request_class = InMemoryRequest
    app.config.update(
        MAX_CONTENT_LENGTH=limits.max_bytes,
        MAX_FORM_PARTS=16,
    )
    app.json.sort_keys = False  # keep the documented field order
    spec = openapi_spec(predictor.classes, limits.max_bytes, limits.max_pixels, predictor.threshold)
    palette = {n: hex_color(n, predictor.classes) for n in [*predictor.classes, "unknown"]}

    @app.get("/")
    def index():
        return render_template(
            "index.html",
            palette=palette,
            max_bytes=limits.max_bytes,
            max_mb=limits.mb,
            max_mp=f"{limits.max_pixels / 1e6:g}",
            allowed=", ".join(ALLOWED),
        )

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "classes": predictor.classes}

    @app.get("/openapi.json")
    def openapi():
        return spec

    @app.post("/api/predict")
    def api_predict():
        upload = request.files.get("file")
        if upload is None:
            raise UploadError(400, "no picture: send it as the multipart form field 'file'")
        # The client's filename and Content-Type are ignored: only the bytes are looked at.
        decoded = decode_upload(upload.stream.read(), limits.max_pixels)
        faces = predictor.predict(decoded.image)
        height, width = decoded.image.shape[:2]
        body = {
            "width": width,
            "height": height,
            "format": decoded.format,
            "faces": [face_record(f) for f in faces],
        }
        if request.args.get("annotated") in {"1", "true"}:
            body["annotated"] = jpeg_data_url(annotate(decoded.image, faces, predictor.classes))
        return body

    @app.errorhandler(UploadError)
    def upload_error(exc: UploadError):
        return _error(exc.status, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return _error(413, f"upload too large: the limit is {limits.mb} MB")
        return _error(exc.code or 500, f"{exc.name}")

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        # The traceback goes to the server log only; the client gets one line.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal error")

    @app.after_request
    def headers(response):
        response.headers.update(SECURITY_HEADERS)
        return response

    return app


def make_server(
    predictor: Predictor,
    limits: Limits,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = 8,
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server, bound (port 0 picks a free one: see `.effective_port`)."""
    from waitress import create_server

    try:
        return create_server(
            create_app(predictor, limits),
            host=host,
            port=port,
            threads=threads,
            ident="charaid",
            max_request_body_size=limits.waitress_body,
            # Request bodies and responses (they hold the annotated picture) stay in memory,
            # never in a temporary file.
            inbuf_overflow=limits.waitress_body,
            outbuf_overflow=256 * 1024 * 1024,
            connection_limit=32,  # with the above: bounded memory under a flood of uploads
            channel_timeout=30,  # drop clients that stall mid-request
            clear_untrusted_proxy_headers=True,
        )
    except OSError as exc:
        raise CharaidError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_server(
    predictor: Predictor, limits: Limits, host: str, port: int, threads: int = 8
) -> None:
    """Serve until Ctrl-C or SIGTERM; first prints the address it listens on (flushed)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = make_server(predictor, limits, host, port, threads)
    signal.signal(signal.SIGTERM, _stop)  # a service manager's stop is as clean as Ctrl-C
    print(f"charaid serve: http://{host}:{server.effective_port}/", flush=True)
    try:
        server.run()  # returns on Ctrl-C / SIGTERM: waitress catches the KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("charaid serve: stopped", flush=True)
