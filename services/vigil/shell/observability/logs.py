"""One line per event, key=value, so logs can be grepped and parsed alike."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})))


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        fields = [f"ts={stamp}", f"level={record.levelname.lower()}", f"logger={record.name}", f"event={_quote(record.getMessage())}"]
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                fields.append(f"{key}={_quote(value)}")
        if record.exc_info:
            fields.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(fields)


def _quote(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def configure_logging(level: str = "INFO", path: str | None = None, stderr_level: str | None = None) -> None:
    """Log key=value lines to stderr (and to a file when `path` is given)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level.upper())
    formatter = KeyValueFormatter()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter)
    stream.setLevel((stderr_level or level).upper())
    root.addHandler(stream)
    if path:
        from vigil.shell.stores.private_files import private_file

        file_handler = logging.FileHandler(private_file(path), encoding="utf-8")  # owner-only: logs name patients
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    for noisy in ("amqtt", "transitions", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
