"""The OpenAPI 3.1 description of the server's JSON API, served at /openapi.json."""

from __future__ import annotations

from charaid import __version__
from charaid.uploads import ALLOWED

_CANDIDATE = {
    "type": "object",
    "required": ["name", "probability"],
    "properties": {"name": {"type": "string"}, "probability": {"type": "number"}},
}
_FACE = {
    "type": "object",
    "required": ["box", "name", "probability", "top"],
    "properties": {
        "box": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 4,
            "maxItems": 4,
            "description": "x, y, width, height in pixels of the uploaded picture",
        },
        "name": {
            "type": "string",
            "description": "the character, or `unknown` under the threshold",
        },
        "probability": {"type": "number", "description": "probability of the top class"},
        "top": {"type": "array", "items": {"$ref": "#/components/schemas/Candidate"}},
    },
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "one line: what was wrong"}},
}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_spec(classes: list[str], max_bytes: int, max_pixels: int, threshold: float) -> dict:
    """The API description, with this server's limits and classes filled in."""
    prediction = {
        "type": "object",
        "required": ["width", "height", "faces"],
        "properties": {
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "format": {"type": "string", "enum": list(ALLOWED)},
            "faces": {"type": "array", "items": {"$ref": "#/components/schemas/Face"}},
            "annotated": {
                "type": "string",
                "description": "`data:image/jpeg;base64,...`: the picture with boxes and names "
                "(only with `annotated=1`)",
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "charaid",
            "version": __version__,
            "description": "Who is in this picture? Detects anime faces and names each one "
            f"({', '.join(classes)}; `unknown` under probability {threshold}).",
        },
        "paths": {
            "/api/predict": {
                "post": {
                    "summary": "Detect and name the faces in one picture",
                    "parameters": [
                        {
                            "name": "annotated",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "enum": [0, 1], "default": 0},
                            "description": "1: also return the annotated picture as a data URL",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {
                                            "type": "string",
                                            "format": "binary",
                                            "description": f"{', '.join(ALLOWED)} (checked by "
                                            f"content), at most {max_bytes} bytes and "
                                            f"{max_pixels} pixels",
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the faces found, left to right",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Prediction"}
                                }
                            },
                        },
                        "400": _error("no `file` field, an empty file, or a damaged picture"),
                        "413": _error("upload over the size limit, or too many pixels"),
                        "415": _error("not a supported picture type"),
                        "500": _error("internal error (details only in the server log)"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness: the model is loaded",
                    "responses": {"200": {"description": '`{"status": "ok", ...}`'}},
                }
            },
        },
        "components": {
            "schemas": {
                "Prediction": prediction,
                "Face": _FACE,
                "Candidate": _CANDIDATE,
                "Error": _ERROR,
            }
        },
    }
