"""`ringwatch [serve|scan|demo|simulate] ...`; `serve` is the default."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import sys
from collections.abc import Sequence

from ringwatch import __version__, revision
from ringwatch.config import ConfigError, load_config
from ringwatch.cortex.proto import protobuf_backend
from ringwatch.logs import setup_logging

SUBCOMMANDS = ("serve", "scan", "demo", "simulate")
# The reader of our stdout went away (`ringwatch scan | head -1`): quiet, and the
# status a shell reports for a tool that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 141
_LISTEN_ERRNOS = frozenset(
    {
        errno.EADDRINUSE,
        errno.EADDRNOTAVAIL,
        errno.EACCES,
        errno.EPERM,
        errno.EINVAL,
        errno.EAFNOSUPPORT,
    }
)
USAGE = """usage: ringwatch [serve|scan|demo|simulate] [flags]

  serve     the exporter (default): scan the ring table(s), serve /metrics
  scan      one scan, printed for a person (or --output json); exit 0/1/2
            (3: stdout could not be written; 141: its reader went away)
  demo      everything on a local DynamoDB-compatible server with a simulated ring
  simulate  write a simulated Cortex ring into a table

`ringwatch SUBCOMMAND --help` lists the flags, with their environment variables.
`ringwatch --version` (also after a subcommand) prints the version and revision.
"""


def _fail(message: str) -> int:
    print(f"ringwatch: error: {message}", file=sys.stderr)
    return 2


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout closed or not a file
        pass


def _check_protobuf_backend() -> str | None:
    backend = protobuf_backend()
    if backend == "python":
        return (
            "the protobuf package runs on its pure-Python backend, which decodes 50-80x "
            "slower; install a protobuf wheel with the upb backend (pip install "
            "--force-reinstall protobuf) and unset PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"
        )
    return None


def version_line() -> str:
    """What `ringwatch --version` prints; the same version as ringwatch_build_info."""
    return f"ringwatch {__version__} (revision {revision()}, protobuf backend {protobuf_backend()})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; its exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    # `ringwatch --version` and `ringwatch serve --version` alike (the flags of a
    # subcommand end at a lone `--`).
    flags = args[: args.index("--")] if "--" in args else args
    if (args and args[0] == "version") or "--version" in flags:
        print(version_line())
        return 0
    command = "serve"
    if args and not args[0].startswith("-"):
        command = args.pop(0)
        if command not in SUBCOMMANDS:
            return _fail(f"unknown subcommand {command!r}; see ringwatch --help")

    if command == "simulate":
        try:
            from ringwatch.dev.simulator.cli import main as simulate_main
        except ImportError as exc:
            return _fail(
                f"simulate needs {exc.name or 'the demo extra'}: pip install 'ringwatch[demo]'"
            )
        return simulate_main(args)

    problem = _check_protobuf_backend()
    if problem:
        return _fail(problem)

    if command == "demo":
        from ringwatch.dev.demo import main as demo_main

        return demo_main(args)

    try:
        config = load_config(args, prog=f"ringwatch {command}", scan_flags=command == "scan")
        setup_logging(config.log_level, config.log_format)
        if command == "scan":
            from ringwatch.scan import OutputError, run_scan

            try:
                return run_scan(config)
            except OutputError as exc:
                _quiet_stdout()
                print(f"ringwatch: error: {exc}", file=sys.stderr)
                return exc.status
        from ringwatch.serve.main import serve
        from ringwatch.serve.webconfig import load_web_config

        load_web_config(config.web_config_file)  # a bad file stops startup, before any I/O
        listening: list[bool] = []
        try:
            return asyncio.run(serve(config, on_listening=lambda *_: listening.append(True)))
        except OSError as exc:
            if listening:
                raise
            reason = exc.strerror or str(exc)
            # Nothing before listening does network I/O but resolving and binding the
            # listen address.
            if isinstance(exc, socket.gaierror) or exc.errno in _LISTEN_ERRNOS:
                return _fail(
                    f"--web.listen-address={','.join(config.listen_addresses)}: "
                    f"cannot listen there: {reason}"
                )
            return _fail(f"cannot start: {reason}")
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
