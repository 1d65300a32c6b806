"""A TCP proxy that holds back each request's body: a slow upload path, made real.

The model server's request clock starts when the headers are in (serving/request_metrics.py),
so a body that arrives ``delay_s`` later makes the server itself measure the request as slow,
as a congested network or a slow sidecar in front of a canary would. One request per connection
(the test clients open a connection per request): the first ``\\r\\n\\r\\n`` ends the headers.
"""

from __future__ import annotations

import asyncio
import threading

from tests.support.server_process import free_port

HEADERS_END = b"\r\n\r\n"


class SlowBodyProxy:
    """Forwards 127.0.0.1:``port`` to ``target_port``, sending each body ``delay_s`` after its headers."""

    def __init__(self, target_port: int, delay_s: float):
        self.target_port, self.delay_s, self.port = target_port, delay_s, free_port()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-proxy", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("slow proxy did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        serving = asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self._server = self._loop.run_until_complete(serving)
        self._started.set()
        self._loop.run_forever()

    async def _handle(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            self._upstream(client_reader, server_writer), self._pipe(server_reader, client_writer)
        )

    async def _upstream(self, reader, writer) -> None:
        head = b""
        while HEADERS_END not in head:
            chunk = await reader.read(65536)
            if not chunk:
                writer.close()
                return
            head += chunk
        headers, rest = head.split(HEADERS_END, 1)
        writer.write(headers + HEADERS_END)
        await writer.drain()
        await asyncio.sleep(self.delay_s)
        if rest:
            writer.write(rest)
        await self._pipe(reader, writer)

    @staticmethod
    async def _pipe(reader, writer) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
