"""Secrets as files: `REGHUB_SECRETS_DIR` names one folder or several (`:`-separated, as compose has its
secrets volume and /run/secrets), a later folder wins, the environment wins over any file."""

from __future__ import annotations

from pathlib import Path

import pytest

from reghub.settings import Settings, secrets_folders
from tests.test_first_hour import PSEUDONYM_KEY, reghub


def test_the_folders_are_split_like_path() -> None:
    assert secrets_folders(None) == []
    assert secrets_folders("") == []
    assert secrets_folders("/run/secrets/reghub:/run/secrets") == [
        Path("/run/secrets/reghub"),
        Path("/run/secrets"),
    ]
    assert secrets_folders("/a::/b:") == [Path("/a"), Path("/b")]


def test_two_folders_a_later_one_wins_and_the_environment_over_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume, mounted = tmp_path / "volume", tmp_path / "mounted"
    volume.mkdir()
    mounted.mkdir()
    (volume / "reghub_database_url").write_text("sqlite:///from-volume.db\n")
    (volume / "reghub_pseudonym_key").write_text("k" * 20)
    (mounted / "reghub_pseudonym_key").write_text(PSEUDONYM_KEY + "\n")
    (mounted / "reghub_api_token_secret").write_text("t" * 40)
    for name in ("REGHUB_PSEUDONYM_KEY", "REGHUB_DATABASE_URL", "REGHUB_API_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGHUB_SECRETS_DIR", f"{volume}:{mounted}")
    settings = Settings()
    assert settings.pseudonym_key.get_secret_value() == PSEUDONYM_KEY  # the later folder
    assert settings.database_url == "sqlite+aiosqlite:///from-volume.db"
    assert settings.api_token_secret is not None
    assert settings.api_token_secret.get_secret_value() == "t" * 40
    monkeypatch.setenv("REGHUB_PSEUDONYM_KEY", "e" * 16)
    assert Settings().pseudonym_key.get_secret_value() == "e" * 16


def test_a_secret_file_too_short_is_refused_without_its_value(tmp_path: Path) -> None:
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "reghub_pseudonym_key").write_text("short-secret")
    done = reghub(
        "db",
        "upgrade",
        cwd=tmp_path,
        REGHUB_SECRETS_DIR=f"{tmp_path / 'absent'}:{mounted}",
        REGHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'r.db'}",
    )
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == ["REGHUB_PSEUDONYM_KEY: at least 16 characters"]
    assert "short-secret" not in done.stderr + done.stdout


def test_the_cli_reads_the_key_from_the_second_folder(tmp_path: Path) -> None:
    volume, mounted = tmp_path / "volume", tmp_path / "mounted"
    volume.mkdir()
    mounted.mkdir()
    db = tmp_path / "from-file.db"
    (volume / "reghub_database_url").write_text(f"sqlite+aiosqlite:///{db}\n")
    (mounted / "reghub_pseudonym_key").write_text(PSEUDONYM_KEY + "\n")
    done = reghub("db", "upgrade", cwd=tmp_path, REGHUB_SECRETS_DIR=f"{volume}:{mounted}")
    assert done.returncode == 0, done
    assert db.is_file()
