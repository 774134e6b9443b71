from __future__ import annotations

import io
import json
import logging
import os

from aisp.logs import capture_native_output, configure_logging, request_id_var


def test_json_lines_format_with_request_id() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "json", stream=buf)
    token = request_id_var.set("req-123")
    try:
        logging.getLogger("aisp.cache").info("loaded %s", "face_detection", extra={"load_ms": 12.5})
    finally:
        request_id_var.reset(token)
    record = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert record["logger"] == "aisp.cache"
    assert record["message"] == "loaded face_detection"
    assert record["request_id"] == "req-123" and record["load_ms"] == 12.5


def test_text_format_and_level() -> None:
    buf = io.StringIO()
    configure_logging("WARNING", "text", stream=buf)
    logging.getLogger("aisp.pipeline").info("hidden")
    logging.getLogger("aisp.pipeline").warning("shown")
    out = buf.getvalue()
    assert "hidden" not in out and "WARNING aisp.pipeline: shown" in out


def test_native_output_is_captured_and_relogged_at_debug() -> None:
    buf = io.StringIO()
    configure_logging("DEBUG", "text", stream=buf)
    with capture_native_output():
        os.write(2, b"W0000 00:00:1 inference_feedback_manager.cc:114] noise\n")
    out = buf.getvalue()
    assert "aisp.native" in out and "inference_feedback_manager" in out


def test_native_output_hidden_at_info() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "text", stream=buf)
    with capture_native_output():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    assert "XNNPACK" not in buf.getvalue()
