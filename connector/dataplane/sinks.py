"""Where the consumer puts received bytes: a file in its data folder, or an HTTP endpoint it names.

Both take an async stream of chunks and never hold more than one chunk; the digest is computed by the
caller on the same stream (see :func:`digesting`), so what is hashed is exactly what was written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

import anyio
import httpx

from connector.dataplane.errors import PathRefused, SinkError


class Sink(Protocol):
    """Consumes a stream; returns where the data ended up (a path or URL)."""

    async def consume(self, chunks: AsyncIterator[bytes], data_folder: Path, client: httpx.AsyncClient) -> str: ...


class Digest:
    """Running SHA-256 and byte count over a stream."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._h.update(chunk)
        self.size += len(chunk)

    @property
    def value(self) -> str:
        return "sha-256=" + self._h.hexdigest()


async def digesting(chunks: AsyncIterator[bytes], digest: Digest) -> AsyncIterator[bytes]:
    """Pass chunks through, feeding each into ``digest`` on the way."""
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


def confined(folder: Path, name: str) -> Path:
    """``folder/name`` for a new file, refusing names that would leave the folder."""
    if not name or name.startswith(("/", "\\")) or "\x00" in name:
        raise PathRefused(f"sink file name {name!r} must be a relative path inside the data folder")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if any(p in ("..", "") for p in parts):
        raise PathRefused(f"sink file name {name!r} climbs out of the data folder")
    root = folder.resolve()
    target = root / Path(*parts)
    if not target.parent.resolve().is_relative_to(root) or (target.is_symlink()):
        raise PathRefused(f"sink file name {name!r} leads out of the data folder (symlink)")
    return target


@dataclass(frozen=True)
class FileSink:
    """Write into ``<data folder>/<name>`` (atomically: a temp file renamed when the stream completes)."""

    name: str

    async def consume(self, chunks: AsyncIterator[bytes], data_folder: Path, client: httpx.AsyncClient) -> str:
        target = confined(data_folder, self.name)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        tmp = target.with_name(target.name + ".part")
        try:
            handle = await anyio.to_thread.run_sync(open, tmp, "wb")
            try:
                async for chunk in chunks:
                    await anyio.to_thread.run_sync(handle.write, chunk)
            finally:
                await anyio.to_thread.run_sync(handle.close)
            await anyio.to_thread.run_sync(os.replace, tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise SinkError(f"cannot write {self.name!r} in the data folder: {exc.strerror}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return str(target)


@dataclass(frozen=True)
class HttpSink:
    """Stream the bytes to an HTTP endpoint with ``method`` (POST or PUT) and the given headers."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    method: str = "POST"

    async def consume(self, chunks: AsyncIterator[bytes], data_folder: Path, client: httpx.AsyncClient) -> str:
        if not self.url.startswith(("http://", "https://")):
            raise SinkError(f"HTTP sink URL {self.url!r} must be http(s)")
        try:
            response = await client.request(self.method, self.url, content=chunks, headers=dict(self.headers))
        except httpx.HTTPError as exc:
            raise SinkError(f"the HTTP sink at {self.url} failed: {exc.__class__.__name__}") from None
        if response.status_code >= 300:
            raise SinkError(f"the HTTP sink at {self.url} answered HTTP {response.status_code}")
        return self.url
