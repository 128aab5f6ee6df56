"""``clientpay worker`` as a real process: started with its own ini and environment, killed,
restarted, as an operator's process manager would.

The worker reads its settings from a copy of development.ini overridden by CLIENTPAY_*
variables (as in production); its log goes to a file beside the ini, read back to know that
it runs and what it did.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from clientpay_connect.config import env_name

ROOT = Path(__file__).resolve().parents[2]
CLIENTPAY = str(Path(sys.executable).parent / "clientpay")
STARTED = "worker running"


def worker_environment(settings: dict[str, Any]) -> dict[str, str]:
    """This process's environment without its CLIENTPAY_* variables, plus ``settings`` as
    the variables that set them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTPAY_")}
    env.update({env_name(key): str(value) for key, value in settings.items()})
    # oauthlib refuses plain HTTP unless told; only the fake speaks it, on 127.0.0.1.
    env["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    return env


class WorkerProcess:
    """One ``clientpay worker`` at a time under ``name``; each start appends to its log."""

    def __init__(self, folder: Path, name: str, env: dict[str, str], threads: int):
        self.folder = folder
        self.name = name
        self.env = env
        self.threads = threads
        self.ini = folder / "development.ini"
        self.log_path = folder / f"{name}.log"
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        if not self.ini.exists():
            shutil.copy(ROOT / "development.ini", self.ini)

    def start(self) -> None:
        assert self._process is None or self._process.poll() is not None
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (kept open while it runs)
        self._process = subprocess.Popen(
            [CLIENTPAY, "--config", str(self.ini), "worker", "--workers", str(self.threads)],
            env=self.env,
            cwd=self.folder,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    def wait_running(self, timeout: float = 60) -> None:
        """Until this start has said it runs (its log holds one line per start)."""
        deadline = time.monotonic() + timeout
        while self.log().count(STARTED) < self.starts:
            assert self._process is not None and self._process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finishing the job at hand."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait(timeout=30)
        self._close_log()

    def stop(self) -> int:
        """SIGTERM, as a process manager stops it; its exit status."""
        assert self._process is not None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._close_log()
        return int(self._process.returncode)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
