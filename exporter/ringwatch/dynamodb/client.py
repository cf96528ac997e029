"""The aiobotocore DynamoDB client, with a hard deadline on every attempt.

botocore's `read_timeout` bounds one socket read, so a server that trickles a
byte at a time never trips it. Each attempt is therefore run under
`asyncio.timeout(request_timeout)` inside the HTTP session (headers *and*
body), and expiry is raised as botocore's `ReadTimeoutError`, which botocore's
`standard` retry mode treats as transient. Every attempt, retries included,
is reported to an `AttemptObserver` with its duration and classified result.

Scan and Query bodies skip botocore's shape-walking parser (about 25 us an
item) for msgspec: the page's `Items` stay DynamoDB's wire JSON, one
`msgspec.Raw` slice of the body, which the caller decodes into what it needs
(`page_items` makes plain dicts and lists of it).
Errors, and every other operation, go through botocore's own parser, so retry
decisions and error codes are botocore's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

if TYPE_CHECKING:
    from ringwatch.config import Config

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "Throttling",
        "TooManyRequestsException",
    }
)
TIMEOUT_EXCEPTIONS = (ReadTimeoutError, ConnectTimeoutError, TimeoutError)

# Start time of the attempt in flight in this task; set by the HTTP session,
# cleared when the attempt is reported.
_attempt_started: ContextVar[float | None] = ContextVar("ringwatch_attempt_started", default=None)

AttemptObserver = Callable[[str, str, float], None]
"""Called once per attempt with (operation, result, seconds)."""


def classify_error_code(code: str | None) -> str:
    """The `result` label for a DynamoDB error code."""
    return "throttled" if code in THROTTLING_CODES else "error"


def classify_exception(exc: BaseException) -> str:
    """The `result` label for an exception raised by an attempt or a read."""
    if isinstance(exc, TIMEOUT_EXCEPTIONS):
        return "timeout"
    # botocore's connection errors carry `response=None`, not a dict.
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return classify_error_code(code) if code else "error"


def attempt_in_flight_seconds() -> float | None:
    """Seconds the current task's unreported attempt has run, if one is in flight."""
    started = _attempt_started.get()
    if started is None:
        return None
    _attempt_started.set(None)
    return time.monotonic() - started


class _DeadlineHTTPSession(AIOHTTPSession):
    attempt_timeout: float = 2.0

    async def send(self, request: Any) -> Any:
        _attempt_started.set(time.monotonic())
        try:
            async with asyncio.timeout(self.attempt_timeout):
                return await super().send(request)
        except TimeoutError as exc:
            raise ReadTimeoutError(
                endpoint_url=request.url,
                error=f"no complete response within {self.attempt_timeout}s",
            ) from exc


class _Page(msgspec.Struct):
    """What the reader uses of a Scan/Query body; `Items` left as its JSON text."""

    Items: msgspec.Raw = msgspec.Raw(b"[]")
    LastEvaluatedKey: Any = None
    ConsumedCapacity: Any = None


_PAGE = msgspec.json.Decoder(_Page)


def page_items(items: Any) -> Any:
    """A page's `Items` as plain Python values (dicts, lists), whichever parser read it;
    absent, null or empty is an empty list."""
    if isinstance(items, msgspec.Raw):
        items = msgspec.json.decode(items)
    return items or []


class _FastItemsJSONParser(AioJSONParser):
    _FAST_OUTPUTS = frozenset({"ScanOutput", "QueryOutput"})

    async def _do_parse(self, response: dict[str, Any], shape: Any) -> Any:
        if shape is not None and shape.name in self._FAST_OUTPUTS:
            body = response["body"]
            try:
                page = _PAGE.decode(body) if body else _Page()
            except msgspec.ValidationError:
                raise ValueError("Scan/Query response body is not a JSON object") from None
            except msgspec.DecodeError as exc:
                raise ValueError(f"Scan/Query response body is not JSON: {exc}") from None
            parsed = {
                name: getattr(page, name)
                for name in page.__struct_fields__
                if getattr(page, name) is not None
            }
            parsed["ResponseMetadata"] = {
                "RequestId": response["headers"].get("x-amzn-requestid", "")
            }
            return parsed
        return await super()._do_parse(response, shape)


class _FastParserFactory(AioResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _FastItemsJSONParser(**self._defaults)
        return super().create_parser(protocol_name)


@dataclass(frozen=True)
class ClientSettings:
    """The DynamoDB client's address, timeouts and attempts."""

    region: str
    endpoint_url: str | None
    connect_timeout: float
    request_timeout: float
    max_attempts: int


def make_session() -> AioSession:
    """A botocore session whose Scan/Query bodies are parsed with msgspec."""
    session = get_session()
    session.register_component("response_parser_factory", _FastParserFactory())
    return session


def client_config(settings: ClientSettings) -> AioConfig:
    """botocore's client config: timeouts, standard retries, the deadline HTTP session."""
    session_cls = type(
        "DeadlineHTTPSession",
        (_DeadlineHTTPSession,),
        {"attempt_timeout": settings.request_timeout},
    )
    return AioConfig(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.request_timeout,
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        max_pool_connections=4,
        tcp_keepalive=True,
        http_session_cls=session_cls,
        user_agent_extra="ringwatch",
    )


def observe_attempts(client: Any, observer: AttemptObserver) -> None:
    """Report every attempt of every DynamoDB call made through `client`."""

    def on_needs_retry(
        response: Any = None,
        caught_exception: BaseException | None = None,
        operation: Any = None,
        **_: Any,
    ) -> None:
        seconds = attempt_in_flight_seconds() or 0.0
        if caught_exception is not None:
            result = classify_exception(caught_exception)
        else:
            http_response, parsed = response
            if http_response.status_code < 300:
                result = "success"
            else:
                result = classify_error_code(parsed.get("Error", {}).get("Code"))
        observer(operation.name, result, seconds)

    client.meta.events.register(
        "needs-retry.dynamodb", on_needs_retry, unique_id="ringwatch-attempts"
    )


async def open_client(
    config: Config, stack: AsyncExitStack, observer: AttemptObserver | None = None
) -> Any:
    """A DynamoDB client for `config`, its deadlines and retries set, closed with `stack`."""
    settings = ClientSettings(
        region=config.region,
        endpoint_url=config.endpoint_url,
        connect_timeout=config.connect_timeout,
        request_timeout=config.request_timeout,
        max_attempts=config.max_attempts,
    )
    session = make_session()
    client = await stack.enter_async_context(
        session.create_client(
            "dynamodb",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=client_config(settings),
        )
    )
    if observer is not None:
        observe_attempts(client, observer)
    return client
