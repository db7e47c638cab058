"""Settings for the command line: the environment first, then what a running `reghub up` wrote down."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reghub.settings import Settings

EMBEDDED_FILE = "embedded.json"
LOCK_FILE = "up.lock"  # held (flock) by the `reghub up` using the folder, released when it ends
TOKEN_KEY_FILE = "api-token.key"
# Stands in for the pseudonym key in commands that never pseudonymise (send, tail, topics create).
_UNUSED_KEY = "unused-by-this-command"


def data_dir() -> Path:
    """`REGHUB_DATA_DIR`, else the `.reghub` of a `reghub up` running here or in a folder above (so the
    commands find the hub from anywhere inside the project), else `.reghub` here."""
    explicit = os.environ.get("REGHUB_DATA_DIR")
    if explicit:
        return Path(explicit)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if hub_running(folder / ".reghub") is not None:
            return folder / ".reghub"
    return Path(".reghub")


def hub_running(folder: Path) -> dict[str, Any] | None:
    """What the `reghub up` using `folder` says about itself (pid; once started, its broker, register
    and API), or None when none runs there. Running means holding the folder's lock, so a hub killed
    without cleaning up counts as gone."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_json(folder / LOCK_FILE) | _read_json(folder / EMBEDDED_FILE)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def lock_hub(folder: Path) -> int | None:
    """Take `folder`'s lock for this `reghub up` and write its pid in it; returns the lock's file
    descriptor (the lock lasts until it is closed or the process ends, however it ends), or None when
    another hub holds it."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid()}).encode())
    return fd


def _read_json(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def load_settings(
    *,
    key_needed: bool = True,
    production: bool = False,
    register_needed: bool = True,
    **overrides: object,
) -> Settings:
    """`Settings` from `REGHUB_*`, falling back to the embedded hub's broker and key when one runs here.

    With `production` (the worker, the API, `reghub token`) nothing is taken from a `.reghub/` folder
    unless a `reghub up` holds it: outside the embedded hub those commands use the environment alone,
    and a register must be named when `register_needed` (no SQLite file appears under the working
    directory).

    Raises:
        pydantic.ValidationError: a variable is missing or invalid (`reghub.failures.settings_problems` says which).
        Failure: `production`, outside the embedded hub, without REGHUB_DATABASE_URL.
    """
    values: dict[str, object] = {}
    found = hub_running(data_dir()) or {}
    if production and not found:
        named = "REGHUB_DATABASE_URL" in os.environ or "database_url" in overrides
        if register_needed and not named:
            from reghub.failures import Failure

            raise Failure(
                (
                    "REGHUB_DATABASE_URL is not set: name the register "
                    "(postgresql://user@host/db), or run the embedded hub with ./up",
                ),
                exit_code=2,
            )
        return _settings({**overrides}, key_needed)
    if "kafka_bootstrap" in found and "REGHUB_KAFKA_BOOTSTRAP" not in os.environ:
        values["kafka_bootstrap"] = found["kafka_bootstrap"]
        values["kafka_idempotence"] = False  # Tansu refuses InitProducerId
        values["topic_replication_factor"] = 1  # one broker
        values["topic_min_insync_replicas"] = 1
    if "database_url" in found and "REGHUB_DATABASE_URL" not in os.environ:
        values["database_url"] = found["database_url"]
    key_file = data_dir() / "pseudonym.key"
    if "REGHUB_PSEUDONYM_KEY" not in os.environ and key_file.exists():
        values["pseudonym_key"] = key_file.read_text().strip()
    token_file = data_dir() / TOKEN_KEY_FILE
    if "REGHUB_API_TOKEN_SECRET" not in os.environ and token_file.exists():
        values["api_token_secret"] = token_file.read_text().strip()
    values.update(overrides)
    return _settings(values, key_needed)


def _settings(values: dict[str, object], key_needed: bool) -> Settings:
    """`Settings` from the environment and `values`; a command that never pseudonymises gets a
    stand-in key when none is set."""
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        if key_needed or not _only_missing_key(exc):
            raise
    return Settings(**{**values, "pseudonym_key": _UNUSED_KEY})  # type: ignore[arg-type]


def _only_missing_key(exc: ValidationError) -> bool:
    return all(e["loc"] == ("pseudonym_key",) and e["type"] == "missing" for e in exc.errors())


def private_folder(path: Path) -> Path:
    """`path` as a folder only its owner can enter (0700), made if missing."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change: leave it as it is
        path.chmod(0o700)
    return path


def private_sqlite_file(database_url: str) -> None:
    """For a SQLite URL: the database file made empty if missing, readable by its owner only (0600);
    SQLite gives its journal and WAL files the database file's mode."""
    if not database_url.startswith("sqlite") or "///" not in database_url:
        return
    path = Path(database_url.split("///", 1)[1].split("?", 1)[0])
    if not path.name or path.name == ":memory:":
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)


def ensure_pseudonym_key(directory: Path) -> str:
    """The embedded hub's pseudonym key: made once, kept in the data folder, readable by its owner only."""
    return _ensure_secret(directory / "pseudonym.key")


def ensure_token_key(directory: Path) -> str:
    """The embedded hub's key for API tokens (`reghub token` signs with it): made once, kept like the
    pseudonym key."""
    return _ensure_secret(directory / TOKEN_KEY_FILE)


def _ensure_secret(path: Path) -> str:
    directory = path.parent
    if path.exists():
        path.chmod(0o600)
        return path.read_text().strip()
    private_folder(directory)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key
