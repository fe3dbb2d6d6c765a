"""`tollhouse serve` as a real process for tests: started in a directory of the test's own,
waited for until /readyz answers, stopped by a signal, never left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tollhouse.server.runner import free_port


class ServeProcess:
    """`tollhouse serve -c <config> -p <port> *extra` run in `directory` (its working
    directory, where its log goes), with `config` written there as JSON (JSON is YAML);
    without a config, on the embedded defaults. `env` adds to the environment (provider
    keys are taken out of it, so the simulator answers)."""

    def __init__(
        self,
        directory: Path,
        config: dict[str, Any] | None,
        *extra: str,
        name: str = "gateway",
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.log_path = directory / f"{name}.log"
        options = ["-p", str(self.port), *extra]
        if config is not None:
            config_path = directory / f"{name}.yaml"
            config_path.write_text(json.dumps(config))
            options += ["-c", str(config_path)]
        keys = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
        environment = {k: v for k, v in os.environ.items() if k not in keys} | (env or {})
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tollhouse", "serve", *options],
                cwd=directory,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited {self.process.returncode}: {self.log[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready within {timeout} s: {self.log[-3000:]}")

    def wait_exit(self, timeout: float = 30.0) -> int:
        """The exit status once it has exited (killed when it outlives `timeout`)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL the process (`--workers` die with their parent)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.stop(timeout=40)
