"""Fixtures of the serve tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.webserve import BcryptChecks

from ringwatch.serve import basicauth


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[BcryptChecks]:
    """Records each `bcrypt.checkpw` basic auth makes, and still runs it."""
    checks = BcryptChecks()
    real_checkpw = basicauth.bcrypt.checkpw

    def recording_checkpw(password: bytes, hashed: bytes) -> bool:
        checks.checked.append((password.decode(), hashed))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", recording_checkpw)
    yield checks
