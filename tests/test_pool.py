"""litegate.pool, the HTTP/1.1 client backend calls go through, against scripted loopback servers.

Each server here answers with exact bytes, so the awkward cases real backends produce (replies
split across reads, chunked bodies, bodies ended by closing, gzip, idle keep-alive connections
closed by the server, silence) are pinned byte for byte.
"""

from __future__ import annotations

import asyncio
import gzip

import pytest

from litegate.pool import ConnectFailed, Pool, ProtocolError


class Script:
    """A loopback server: each request read gets the next reply from `replies` (a list of byte
    pieces written with a pause between them, or a callable deciding); it counts connections."""

    def __init__(self, *replies) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> "Script":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"
        return self

    async def __aexit__(self, *exc) -> None:
        for w in self.writers:
            w.close()
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                self.requests.append(head + await reader.readexactly(length))
                reply = self.replies.pop(0)
                if reply == "close":
                    writer.close()
                    return
                for piece in reply:
                    if piece == "close":
                        writer.close()
                        return
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.01)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the test is over


def ok(body: bytes) -> list[bytes]:
    return [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)]


async def test_keep_alive_reuses_one_connection():
    """Two requests in a row to one backend travel on one connection, each answered whole."""
    async with Script(ok(b'{"a":1}'), ok(b'{"b":2}')) as srv:
        pool = Pool()
        for want in (b'{"a":1}', b'{"b":2}'):
            resp = await pool.request("POST", srv.url, b"{}", {"content-type": "application/json"})
            assert (resp.status, await resp.read()) == (200, want)
            resp.close()
        assert srv.connections == 1
        assert srv.requests[0].startswith(b"POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:")
        await pool.close()


async def test_idle_connection_closed_by_the_server_is_retried_on_a_new_one():
    """A keep-alive connection the backend closed while idle costs the caller nothing: the request
    goes again on a fresh connection."""
    async with Script(ok(b"1"), "close", ok(b"2")) as srv:
        pool = Pool()
        resp = await pool.request("POST", srv.url, b"x")
        assert await resp.read() == b"1"
        resp.close()
        resp = await pool.request("POST", srv.url, b"y")
        assert await resp.read() == b"2"
        resp.close()
        assert srv.connections == 2
        await pool.close()


async def test_chunked_reply_split_across_reads_is_whole_and_comes_per_read():
    """Headers and chunk sizes split across reads parse; body pieces arriving together come out
    as one item (one upstream read -> one item downstream)."""
    pieces = [b"HTTP/1.1 200 OK\r\ntransfer-enc", b"oding: chunked\r\ncontent-type: text/event-stream\r\n\r\n",
              b"6\r\ndata: \r\n2\r\n1\n\r\n1\r\n\n\r\n9\r\ndat", b"a: 2\n\n\r\n0\r\n\r\n"]
    async with Script(pieces) as srv:
        pool = Pool()
        resp = await pool.request("POST", srv.url, b"{}")
        assert resp.headers["content-type"] == "text/event-stream"
        items = [c async for c in resp.chunks()]
        assert b"".join(items) == b"data: 1\n\ndata: 2\n\n"
        assert items[0] == b"data: 1\n\ndat"  # the pieces of one read (chunks, a partial one) joined
        resp.close()
        await pool.close()


async def test_body_ended_by_closing_the_connection():
    """A reply with neither content-length nor chunked encoding ends when the backend closes."""
    async with Script([b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello ", b"world", "close"]) as srv:
        pool = Pool()
        resp = await pool.request("POST", srv.url, b"")
        assert await resp.read() == b"hello world"
        resp.close()
        await pool.close()


async def test_gzip_body_is_decompressed():
    """A backend that gzips its reply anyway is read as plain bytes."""
    body = gzip.compress(b'{"ok":true}')
    reply = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    async with Script([reply]) as srv:
        pool = Pool()
        resp = await pool.request("POST", srv.url, b"")
        assert await resp.read() == b'{"ok":true}'
        resp.close()
        await pool.close()


async def test_silence_is_a_timeout_and_the_connection_is_not_reused():
    """No answer within read_s raises TimeoutError; the next request opens a new connection."""
    async with Script([b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhal"], ok(b"2")) as srv:
        pool = Pool()
        resp = await pool.request("POST", srv.url, b"", read_s=0.2)
        with pytest.raises(asyncio.TimeoutError):
            await resp.read()
        resp.close()
        resp = await pool.request("POST", srv.url, b"")
        assert await resp.read() == b"2"
        resp.close()
        assert srv.connections == 2
        await pool.close()


async def test_reply_abandoned_midway_closes_its_connection():
    """A response closed before its end (a cancelled caller) is not handed back to the pool."""
    async with Script([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n"], ok(b"2")) as srv:
        pool = Pool()
        resp = await pool.request("POST", srv.url, b"")
        assert await resp.chunks().__anext__() == b"abc"
        resp.close()
        resp = await pool.request("POST", srv.url, b"")
        assert await resp.read() == b"2"
        resp.close()
        assert srv.connections == 2
        await pool.close()


async def test_garbage_is_a_protocol_error():
    """Bytes that are not an HTTP/1.1 reply raise ProtocolError, naming the parser's complaint."""
    async with Script([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"]) as srv:
        pool = Pool()
        with pytest.raises(ProtocolError):
            await pool.request("POST", srv.url, b"")
        await pool.close()


async def test_refused_connection_and_header_injection():
    """A closed port is ConnectFailed (nothing sent); a header value with a line break is refused."""
    async with Script() as srv:
        url = srv.url
    pool = Pool()
    with pytest.raises(ConnectFailed):
        await pool.request("POST", url, b"", connect_s=2)
    with pytest.raises(ValueError, match="line break"):
        await pool.request("POST", url, b"", {"authorization": "Bearer x\r\nevil: 1"})
    await pool.close()
