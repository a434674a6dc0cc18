"""Run a Servicepuls service as a real process in a test, the way it runs in production."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = REPO_ROOT / ".stack" / "test-logs"


class ServiceProcess:
    def __init__(self, name: str, port: int, env: dict[str, str], ready_path: str) -> None:
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.env = env
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{name}-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                        + self.log_path.read_text()[-3000:]
                    )
                try:
                    response = await client.get(self.base_url + self.ready_path, timeout=2)
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(
                        f"{self.name} not ready after {timeout}s; see {self.log_path}"
                    )
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        """Crash it: SIGKILL, no chance to clean up."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    async def stop(self, timeout: float = 20) -> None:
        """Stop it the way an operator does: SIGTERM, then wait."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            for _ in range(int(timeout * 10)):
                if self.process.poll() is not None:
                    return
                await asyncio.sleep(0.1)
            self.kill()

    async def restart(self) -> None:
        await self.stop()
        self.start()
        await self.wait_ready()


@asynccontextmanager
async def running_service(
    name: str,
    *,
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/ready",
    timeout: float = 60,
) -> AsyncIterator[ServiceProcess]:
    """Start `python -m services.<name>` with `env` on top of the current environment, wait until
    `ready_path` answers 200, and stop it afterwards."""
    service = ServiceProcess(name, port, {**os.environ, **(env or {})}, ready_path)
    service.start()
    try:
        await service.wait_ready(timeout)
        yield service
    finally:
        await service.stop()
