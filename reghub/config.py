"""Settings for the command line: the environment first, then what a running `reghub up` wrote down."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from reghub.settings import Settings

EMBEDDED_FILE = "embedded.json"


def data_dir() -> Path:
    return Path(os.environ.get("REGHUB_DATA_DIR", ".reghub"))


def load_settings(**overrides: object) -> Settings:
    """`Settings` from `REGHUB_*`, falling back to the embedded hub's broker and key when one runs here."""
    values: dict[str, object] = {}
    embedded = data_dir() / EMBEDDED_FILE
    if embedded.exists():
        found = json.loads(embedded.read_text())
        if "REGHUB_KAFKA_BOOTSTRAP" not in os.environ:
            values["kafka_bootstrap"] = found["kafka_bootstrap"]
    key_file = data_dir() / "pseudonym.key"
    if "REGHUB_PSEUDONYM_KEY" not in os.environ and key_file.exists():
        values["pseudonym_key"] = key_file.read_text().strip()
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def ensure_pseudonym_key(directory: Path) -> str:
    """The embedded hub's pseudonym key: made once, kept in the data folder, readable by its owner only."""
    path = directory / "pseudonym.key"
    if path.exists():
        return path.read_text().strip()
    directory.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key)
    path.chmod(0o600)
    return key
