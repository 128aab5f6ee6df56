"""A small HTTP/1.1 keep-alive load generator (asyncio), shared by the benchmarks.

It opens ``clients`` connections and has each send GET requests back to back until
``duration`` seconds have passed; it reports requests per second and latency percentiles.
It runs in its own process pinned to its own core, so it does not steal the server's core.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))
        return ordered[index]

    def summary(self) -> str:
        median = statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")
        return (
            f"{self.rps:8.1f} req/s  p50 {median:6.1f} ms  p95 {self.percentile(95):6.1f} ms"
            f"  ({self.requests} requests, {self.errors} errors, {self.seconds:.1f} s)"
        )


async def _client(host: str, port: int, path: str, deadline: float, result: LoadResult) -> None:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n\r\n".encode()
    )
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            elapsed = (time.perf_counter() - started) * 1000
            if status_line.split(b" ")[1:2] == [b"200"]:
                result.requests += 1
                result.latencies_ms.append(elapsed)
            else:
                result.errors += 1
    finally:
        writer.close()


async def _run(url: str, clients: int, duration: float) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = LoadResult(0, 0, 0.0, [])
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *[_client(host, port, parts.path, deadline, result) for _ in range(clients)]
    )
    result.seconds = time.perf_counter() - started
    return result


def run_load(url: str, clients: int, duration: float, cpu: int | None = None) -> LoadResult:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    return asyncio.run(_run(url, clients, duration))
