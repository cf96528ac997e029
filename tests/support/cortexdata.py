"""The real Cortex table dumps and their decoded copies under tests/fixtures/cortex."""

from __future__ import annotations

import base64
import json
from typing import Any

from support import TESTS

FIXTURES = TESTS / "fixtures" / "cortex"
HANG_FIXTURES = TESTS / "fixtures" / "cortex-hang"
DUMPS = ("healthy", "sigstop-45s", "sigterm-3s", "after-sigterm-exit", "with-ttl")


def load_dump(name: str) -> dict[str, Any]:
    """One table dump (`table-dump-NAME.json`), as DynamoDB's wire JSON."""
    return json.loads((FIXTURES / f"table-dump-{name}.json").read_text())


def load_decoded(name: str) -> dict[str, Any]:
    """The decoded copy of one dump (`decoded-NAME.json`)."""
    return json.loads((FIXTURES / f"decoded-{name}.json").read_text())


def capture_time(dump: str) -> float:
    """When the dump was taken (UNIX seconds), as its `_capture` block says."""
    return load_dump(dump)["_capture"]["captured_at_unix"]


def boto3_item(wire_item: dict[str, Any]) -> dict[str, Any]:
    """A dump's wire-JSON item as boto3's low-level client takes it (B as bytes)."""
    item = dict(wire_item)
    item["Data"] = {"B": base64.b64decode(wire_item["Data"]["B"])}
    return item
