"""The stable front of a local deployment: a TCP forwarder on the endpoint's port.

``python -m flowml.deploy.targets._proxy --port P --upstream-file F`` accepts connections on
127.0.0.1:P and pipes each one to ``127.0.0.1:<port in F>``, reading F per connection. Replacing a
deployment writes the new backend's port into F (atomically) once that backend is ready, so new
connections go to it; then the old backend is stopped. Stdlib only (asyncio).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

__all__ = ["main"]


def _upstream(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(host: str, port: int, upstream_file: Path) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = _upstream(upstream_file)
        try:
            if upstream is None:
                raise ConnectionRefusedError("no upstream yet")
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, host, port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-file", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.upstream_file))


if __name__ == "__main__":
    main()
