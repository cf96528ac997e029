"""Fixtures of the serve tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.webserve import BcryptChecks

from ringwatch.serve import webconfig


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[BcryptChecks]:
    """Records each `bcrypt.checkpw` the web config makes, and still runs it."""
    checks = BcryptChecks()
    real_checkpw = webconfig.bcrypt.checkpw

    def recording_checkpw(password: bytes, hashed: bytes) -> bool:
        checks.checked.append((password.decode(), hashed))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(webconfig.bcrypt, "checkpw", recording_checkpw)
    yield checks
