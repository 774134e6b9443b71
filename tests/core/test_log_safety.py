"""Log injection and secrets: every record through AISP's handler is made safe (item 9 and 8).

A user value with a newline, CR, NUL or ESC cannot start a new log line or send a terminal
escape, and a URL password never reaches the text, in text and JSON formats, from any logger
(AISP's and uvicorn's), in messages and in exception texts.
"""

from __future__ import annotations

import io
import json
import logging

import pytest

from aisp.logs import configure_logging, escape_controls

EVIL = "clip.mp4\n2026-01-01 00:00:00 INFO    aisp.api: FORGED\r\x00\x1b[2J\u2028tail"
SOURCE = "rtsp://admin:s3cret@cam.lan:554/live"


@pytest.fixture
def logged():
    buf = io.StringIO()

    def configure(fmt: str) -> io.StringIO:
        configure_logging("DEBUG", fmt, stream=buf)
        return buf

    yield configure
    configure_logging("INFO", "text", stream=io.StringIO())


@pytest.mark.parametrize("name", ["aisp.api", "aisp.pipeline", "uvicorn.error"])
def test_control_characters_are_escaped_in_text_logs(logged, name) -> None:
    buf = logged("text")
    logging.getLogger(name).warning("task queued: %s", EVIL)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "\\n2026-01-01" in lines[0] and "\\x00" in lines[0] and "\\x1b[2J" in lines[0]
    assert "\\u2028" in lines[0] and "\r" not in lines[0] and "\x1b" not in lines[0]


def test_json_logs_carry_the_escaped_value(logged) -> None:
    buf = logged("json")
    logging.getLogger("aisp.api").info("source %s", EVIL)
    (line,) = buf.getvalue().splitlines()
    assert "FORGED" in json.loads(line)["message"] and "\n" not in json.loads(line)["message"]


def test_url_passwords_are_hidden_in_messages_and_exceptions(logged) -> None:
    buf = logged("text")
    log = logging.getLogger("aisp.pipeline")
    log.debug("opening %s", SOURCE)
    log.info(f"f-string too: {SOURCE}")  # noqa: G004 - a message built before logging
    try:
        raise OSError(f"cannot open '{SOURCE}': Connection refused")
    except OSError:
        log.exception("reconnect failed")
    text = buf.getvalue()
    assert "s3cret" not in text
    assert text.count("rtsp://admin:***@cam.lan:554/live") == 3


def test_escape_controls_keeps_ordinary_text() -> None:
    assert escape_controls("plain\ttext é ✓") == "plain\ttext é ✓"
    assert escape_controls("a\nb\x7f") == "a\\nb\\x7f"
