"""One DynamoDB item of a Cortex ring (DynamoDB JSON) -> one `Member`.

Items come as DynamoDB's wire JSON (`{"Data": {"B": "<base64>"}, ...}`); `B`
may also already be bytes, as boto3's parser leaves it. A bad item raises
`DecodeError` with the reason used in `ringwatch_decode_errors_total`.
`docs/cortex-ring-format.md` says what is read and why.

`addr` and `zone` are read as bytes and decoded with replacement characters:
Cortex's Go protobuf code does not check UTF-8 in these fields, so a member
whose zone holds other bytes is still a member (upb would refuse the item).
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from decimal import Decimal
from typing import Any

import cramjam
import msgspec
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from pybase64 import b64decode as _pybase64_decode

from ringwatch.cortex.proto import (
    STATE_NAMES,
    UNKNOWN_STATE,
    InstanceDescRead,
    InstanceDescTokensView,
    RingDescView,
)
from ringwatch.cortex.tokens import Tokens

_decompress_raw = cramjam.snappy.decompress_raw
_decompressed_length = cramjam.snappy.decompress_raw_len
# A DynamoDB item is at most 400 KB, so Cortex never stores more Data than that.
# The densest snappy element is a 3-byte copy of 64 bytes (ratio 64/3, ~21.3),
# so a block can expand at most ~21.3x (5 MiB of zeros compress to 246 KB). A
# block claiming more than its own length allows is garbage, and cramjam would
# allocate the claimed size up front.
MAX_ITEM_BYTES = 400 * 1024
SNAPPY_MAX_RATIO = 64 / 3
MAX_DECOMPRESSED_BYTES = int(MAX_ITEM_BYTES * SNAPPY_MAX_RATIO) + 64
# DynamoDB numbers carry at most 38 significant digits, magnitude below 1e126:
# anything else in `version` or `ttl` cannot come from DynamoDB (reason `value`).
# Within that range both are kept exact (prometheus_client's parsers read such
# integers exactly; Prometheus itself keeps a float64).
MAX_NUMBER_TEXT = 160
MAX_NUMBER = 10**126
# A DynamoDB number as text: sign, digits with an optional point, optional exponent.
_NUMBER_TEXT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")

REASONS = ("snappy", "protobuf", "attribute", "value", "ring_desc", "duplicate", "unexpected")


class DecodeError(Exception):
    """An item that cannot be read; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str, ring: str = "", member: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.ring = ring
        self.member = member


class Member(msgspec.Struct, frozen=True, gc=False):
    """One ring member as its item says: the InstanceDesc fields plus the item's own."""

    # A msgspec Struct, not a frozen dataclass: as immutable, but made in C (0.05
    # against 0.75 us, once per item per scan), and never tracked by the cyclic
    # GC (it holds strings, ints and a `Tokens`: no cycle can pass through it).

    ring: str
    name: str  # the item's InstanceKey: the member id, `member` in labels
    addr: str
    zone: str
    state: str
    state_num: int
    heartbeat_timestamp: int
    registered_timestamp: int
    tokens: Tokens
    version: int
    ttl: int | None
    item_bytes: int


def string_attribute(item: dict[str, Any], name: str) -> str:
    """The item's string attribute `name`, or `attribute` if missing or mistyped."""
    try:
        value = item[name]["S"]
    except (KeyError, TypeError):
        raise DecodeError("attribute", f"{name} missing or not a string") from None
    if not isinstance(value, str):
        raise DecodeError("attribute", f"{name} is not a string")
    return value


def number_attribute(item: dict[str, Any], name: str, *, counter: bool = False) -> int:
    """A whole-number attribute, exact at any size DynamoDB allows.

    Not a number at all is `attribute`; a number no DynamoDB number can be, a
    fraction, or (for a `counter`, which may not go below 0) a negative one is
    `value`: rendered, it would make the exposition lie or fail to parse."""
    try:
        text = item[name]["N"]
    except (KeyError, TypeError):
        raise DecodeError("attribute", f"{name} missing or not a number") from None
    if not isinstance(text, str):
        raise DecodeError("attribute", f"{name} is not a number: {text!r:.40}")
    if len(text) > MAX_NUMBER_TEXT:
        raise DecodeError(
            "value", f"{name} has {len(text)} characters, more than a DynamoDB number can"
        )
    if text.isascii() and text.isdigit():
        value = int(text)
    else:
        if not _NUMBER_TEXT.fullmatch(text):
            raise DecodeError("attribute", f"{name} is not a number: {text!r:.40}")
        # Decimal, not float: "1e125" is 10**125 exactly, not 9999999999999999248...
        try:
            number = Decimal(text)
            whole = number == number.to_integral_value()
            in_range = number.copy_abs() < MAX_NUMBER
        except ArithmeticError:  # an exponent beyond what decimal holds
            whole = in_range = False
        if not in_range:
            raise DecodeError("value", f"{name} is out of DynamoDB's number range: {text!r:.40}")
        if not whole:
            raise DecodeError("value", f"{name} is not a whole number: {text!r:.40}")
        value = int(number)
    if not -MAX_NUMBER < value < MAX_NUMBER:
        raise DecodeError("value", f"{name} is out of DynamoDB's number range: {text!r:.40}")
    if counter and value < 0:
        raise DecodeError("value", f"{name} is negative, and it is a counter: {text!r:.40}")
    return value


def binary_attribute(item: dict[str, Any], name: str) -> bytes:
    """The item's binary attribute `name` (bytes, or base64 as DynamoDB's JSON has it)."""
    try:
        value = item[name]["B"]
    except (KeyError, TypeError):
        raise DecodeError("attribute", f"{name} missing or not binary") from None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise DecodeError("attribute", f"{name} is not binary")
    try:
        return b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("attribute", f"{name} is not valid base64") from None


def decompress_data(data: bytes) -> bytes:
    """Raw snappy block -> bytes, refusing a block that claims an absurd length."""
    try:
        claimed = _decompressed_length(data)
        if claimed > MAX_DECOMPRESSED_BYTES or claimed > len(data) * SNAPPY_MAX_RATIO + 64:
            raise DecodeError(
                "snappy",
                f"block of {len(data)} bytes claims {claimed} "
                "bytes decompressed, more than snappy can expand to",
            )
        return bytes(_decompress_raw(data))
    except DecodeError:
        raise
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise DecodeError("snappy", str(exc) or "bad snappy block") from None


def text_field(value: bytes) -> str:
    """addr or zone as Cortex wrote them; bytes that are not UTF-8 become U+FFFD."""
    return value.decode("utf-8", "replace")


def refuse_ring_desc(raw: bytes, desc: Any) -> None:
    """Raise `ring_desc` if `raw` is a whole ring `Desc`, not one `InstanceDesc`.

    On the wire a `Desc` is field 1 (an InstanceDesc's addr) repeated, each a
    map entry: read as an InstanceDesc it would be a member made of garbage.
    Only an item with nothing but an addr is checked (a real member heartbeats)."""
    if (
        not desc.addr
        or desc.timestamp
        or desc.state
        or desc.zone
        or desc.tokens
        or desc.registered_timestamp
    ):
        return
    try:
        ring = RingDescView.FromString(raw)
    except (ProtobufDecodeError, RuntimeError, ValueError):
        return
    entries = ring.ingesters
    if entries and all(e.key and e.HasField("value") for e in entries):
        raise DecodeError(
            "ring_desc",
            f"Data holds a whole ring Desc ({len(entries)} instances), not one InstanceDesc",
        )


def unexpected_error(item: Any, exc: BaseException) -> DecodeError:
    """A `DecodeError` (reason `unexpected`) for an exception the decoder did not foresee."""
    ring = member = ""
    try:
        if type(item) is WireItem:
            item = msgspec.to_builtins(item)
        ring, member = str(item["RingKey"]["S"]), str(item["InstanceKey"]["S"])
    except Exception:  # whatever the item is, the error must still be made
        pass
    return DecodeError("unexpected", f"{type(exc).__name__}: {exc}"[:200], ring, member)


class _StringValue(msgspec.Struct, gc=False):
    S: str


class _NumberValue(msgspec.Struct, gc=False):
    N: str


class _BinaryValue(msgspec.Struct, gc=False):
    B: str  # base64, decoded only when the item changed since the last scan


class WireItem(msgspec.Struct, gc=False, omit_defaults=True):
    """A ring item in DynamoDB's wire JSON whose attributes have the types Cortex writes."""

    RingKey: _StringValue
    InstanceKey: _StringValue
    Data: _BinaryValue
    version: _NumberValue
    ttl: _NumberValue | None = None


_WIRE_ITEMS = msgspec.json.Decoder(list[WireItem])


def read_items_json(items_json: Any) -> Any:
    """A page's `Items` JSON -> `WireItem`s in one C pass; a page with any other
    item is read as plain values (dicts) instead, each then decoded on its own.
    Absent, null or empty is an empty list."""
    try:
        return _WIRE_ITEMS.decode(items_json)
    except msgspec.ValidationError:
        return msgspec.json.decode(items_json) or []


def _data_bytes(encoded: Any) -> bytes:
    if isinstance(encoded, bytes):
        return encoded
    if isinstance(encoded, str):
        try:
            # pybase64 (SIMD) is 5-7x faster than binascii on Data-sized strings.
            return _pybase64_decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            # The standard library decides, so errors match binary_attribute's exactly.
            return binary_attribute({"Data": {"B": encoded}}, "Data")
    raise DecodeError("attribute", "Data is not binary")


_BYTES_KEY = 0x5851F42D4C957F2D  # any odd 64-bit constant


def _with_item(seen: Member, ring: str, name: str, version: int, ttl: int | None) -> Member:
    """A member made of `seen`'s `Data` and this item's own attributes: `seen` itself
    when those are the same too (a member that did not move since the last scan)."""
    if seen.version == version and seen.name == name and seen.ring == ring and seen.ttl == ttl:
        return seen
    return Member(
        ring,
        name,
        seen.addr,
        seen.zone,
        seen.state,
        seen.state_num,
        seen.heartbeat_timestamp,
        seen.registered_timestamp,
        seen.tokens,
        version,
        ttl,
        seen.item_bytes,
    )


class ItemDecoder:
    """One DynamoDB item -> `Member`, or `DecodeError` with its reason; with memory
    across scans (the results are those of decoding each item afresh).

    Most items are the same as in the last scan (frozen members, long heartbeat
    periods): their `Data` string is looked up, not decoded again, and the
    `Member` made of it last time is handed out again when the item's other
    attributes did not change either. A changed item is parsed once, with the
    tokens kept as the packed bytes they are; those find the `Tokens` of last
    time unless the tokens changed. Only what the current and the previous scan
    used is remembered.

    What is remembered is the `Member` itself, which the cyclic GC does not track:
    a tuple of its fields was one object a changed member left for the collector
    to walk after each scan (with the heartbeat samples, 18 ms at 50k members).

    The lookup is keyed by the `Data` string's hash, not the string:
    keeping two scans' strings cost ~20 MB at 10k members at a scan's peak. Two
    different `Data` meeting on one 64-bit hash within two scans is a chance of
    about n^2 / 2^64 (1e-11 at 10k members).
    """

    def __init__(self) -> None:
        self._data: dict[int, Member] = {}
        self._data_next: dict[int, Member] = {}
        self._tokens: dict[bytes, Tokens] = {}
        self._tokens_next: dict[bytes, Tokens] = {}

    def start_scan(self) -> None:
        """Forget what the scan before last used; call once before each scan's items."""
        if self._data_next or self._tokens_next:
            self._data, self._data_next = self._data_next, {}
            self._tokens, self._tokens_next = self._tokens_next, {}

    def end_scan(self) -> None:
        """Forget what only the scan before this one used (its `Data` strings are
        most of the memory here); call once after each scan's items."""
        self._data, self._tokens = {}, {}

    def decode(self, item: Any) -> Member:
        """One item (a `WireItem` or an item dict) -> Member, reusing the last scan's
        work when the item did not change."""
        if type(item) is not WireItem:
            return self._decode_checked(item)
        # The common case inline: a plain item whose Data string was seen last scan.
        version = item.version.N
        if (
            item.ttl is not None
            or len(version) > 19
            or not (version.isascii() and version.isdigit())
        ):
            return self._decode_checked(msgspec.to_builtins(item))
        ring = item.RingKey.S
        member = item.InstanceKey.S
        encoded = item.Data.B
        key = hash(encoded)
        seen = self._data_next.get(key) or self._data.get(key)
        if seen is None:
            # Plain attributes: only Data itself can still be wrong.
            try:
                seen = self._decode_data(_data_bytes(encoded), ring, member, int(version), None)
            except DecodeError as err:
                err.ring, err.member = ring, member
                raise
        else:
            seen = _with_item(seen, ring, member, int(version), None)
        self._data_next[key] = seen
        return seen

    def _decode_checked(self, item: Any) -> Member:
        """Every check, in the order a plain decoder makes them, with the caches."""
        if not isinstance(item, dict):
            raise DecodeError("attribute", "item is not a map")
        ring = string_attribute(item, "RingKey")
        member = string_attribute(item, "InstanceKey")
        try:
            try:
                encoded = item["Data"]["B"]
            except (KeyError, TypeError):
                raise DecodeError("attribute", "Data missing or not binary") from None
            if isinstance(encoded, bytearray):
                encoded = bytes(encoded)
            if isinstance(encoded, str):
                key = hash(encoded)
            elif isinstance(encoded, bytes):
                # Equal bytes and str hash alike: a bytes key is moved away from the
                # str's (an int, not a tuple, which the cyclic GC would track).
                key = hash(encoded) ^ _BYTES_KEY
            else:
                raise DecodeError("attribute", "Data is not binary")
            seen = self._data_next.get(key) or self._data.get(key)
            data = _data_bytes(encoded) if seen is None else b""
            version = number_attribute(item, "version", counter=True)
            ttl = number_attribute(item, "ttl") if "ttl" in item else None
            seen = (
                self._decode_data(data, ring, member, version, ttl)
                if seen is None
                else _with_item(seen, ring, member, version, ttl)
            )
            self._data_next[key] = seen
        except DecodeError as err:
            err.ring, err.member = ring, member
            raise
        return seen

    def _decode_data(
        self, data: bytes, ring: str, name: str, version: int, ttl: int | None
    ) -> Member:
        raw = decompress_data(data)
        # Only a plain encoding (one packed tokens field, nothing unknown, no field
        # repeated) takes the shortcut; anything else is left to the real parser.
        view: Any = None
        try:
            view = InstanceDescTokensView.FromString(raw)
            if view.ByteSize() != len(raw) or len(UnknownFieldSet(view)):
                view = None
        except (ProtobufDecodeError, RuntimeError, ValueError):
            view = None
        tokens = None
        if view is not None:
            packed = view.tokens
            tokens = self._tokens_next.get(packed)
            if tokens is None:
                tokens = self._tokens.get(packed)
            if tokens is None:
                # Tokens not seen last scan: protobuf's own parser counts the varints
                # (in C: 0.4 us a member under the Python varint count it replaced); one it
                # refuses is left to the real parse below, which raises its error.
                try:
                    tokens = Tokens(packed, len(InstanceDescRead.FromString(raw).tokens))
                except (ProtobufDecodeError, RuntimeError, ValueError):
                    tokens = None
            if tokens is not None:
                # Keyed by the bytes the Tokens hold: one copy of them stays alive.
                self._tokens_next[tokens.packed] = tokens
        source = view
        if tokens is None:
            try:
                source = InstanceDescRead.FromString(raw)
            except (ProtobufDecodeError, RuntimeError, ValueError) as exc:
                raise DecodeError("protobuf", str(exc) or "bad InstanceDesc") from None
            tokens = Tokens.from_values(source.tokens)
        if not source.timestamp and not tokens:
            refuse_ring_desc(raw, source)
        state_num = source.state
        return Member(
            ring,
            name,
            text_field(source.addr),
            text_field(source.zone),
            STATE_NAMES.get(state_num, UNKNOWN_STATE),
            state_num,
            source.timestamp,
            source.registered_timestamp,
            tokens,
            version,
            ttl,
            len(data),
        )
