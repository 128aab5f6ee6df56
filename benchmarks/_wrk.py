"""Load a URL with wrk (Debian's package, `make wrk`), pinned to one core with taskset.

A load generator written in Python competes with the server for the same two cores and
measures itself as much as the server; wrk, pinned to the core the server does not use, is
what a user measuring would run. Its Lua ``done`` hook prints the figures as one JSON line,
the 95th percentile included (wrk's own --latency report stops at 50/75/90/99).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d,'
    .. ' "p50_us": %d, "p95_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        # Only successful answers count: an error page served fast is no page served.
        good = self.requests - self.errors
        return good / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (
            f"{self.rps:8.1f} req/s  p50 {self.p50_ms:6.1f} ms  p95 {self.p95_ms:6.1f} ms"
            f"  p99 {self.p99_ms:6.1f} ms  ({self.requests} requests, {self.errors} errors)"
        )


def missing_tools() -> list[str]:
    return [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]


def run_wrk(url: str, clients: int, duration: float, cpu: int) -> WrkResult:
    """``clients`` keep-alive connections from one wrk thread on core ``cpu``."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "report.lua"
        script.write_text(REPORT)
        done = subprocess.run(
            [
                "taskset",
                "-c",
                str(cpu),
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        errors=figures["status_errors"] + figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
    )
