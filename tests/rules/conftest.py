"""Unit tests of `rules/`: pure functions, so any I/O fails the test (style.md, "Tests")."""

from __future__ import annotations

import builtins
import socket

import pytest


@pytest.fixture(autouse=True)
def _no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("rules tests must do no I/O")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(builtins, "open", refuse)
