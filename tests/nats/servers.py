"""Private nats-server processes for the tests: one server, or a 3-node JetStream cluster.

Tests that stop, restart or kill a broker start their own on spare loopback ports, each
with its JetStream store in the test's temporary folder, so they never disturb the
machine's shared server (127.0.0.1:4222) or each other. A stopped server restarts on the
same ports with the same store, as an operator's restart would.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
from nats.js.api import StreamConfig

__all__ = ["NatsCluster", "NatsServer", "free_port", "nats_server_binary"]

_READY_TIMEOUT = 20.0


def nats_server_binary() -> str | None:
    """The nats-server executable (Debian's package puts it in /usr/sbin), or None."""
    return shutil.which("nats-server") or next(
        (p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.access(p, os.X_OK)),
        None,
    )


# Ports are drawn below Linux's ephemeral range (32768-60999 by default): a port the
# kernel hands out for bind(0) is also one it hands to the next outgoing connection, and
# the many client connections of a test run once took a cluster's route port between
# choosing it and the server binding it. Ports handed out here are not handed out again.
_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on, outside the range used for outgoing connections."""
    for _ in range(1000):
        port = random.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port in 20000-32767")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            return sock.recv(7).startswith(b"INFO")
    except OSError:
        return False


@dataclass
class NatsServer:
    """One nats-server with JetStream; `start()` runs it, `stop()`/`kill()` end it."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    name: str = "n1"
    cluster_port: int | None = None
    routes: tuple[int, ...] = ()
    cluster_name: str = "esgen-test"
    monitor_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server is not installed (Debian package nats-server)")
        args = [
            binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
            "-n",
            self.name,
            "-l",
            str(self.store_dir / "server.log"),
            "-m",
            str(self.monitor_port),
        ]
        if self.cluster_port is not None:
            args += [
                "--cluster_name",
                self.cluster_name,
                "--cluster",
                f"nats://127.0.0.1:{self.cluster_port}",
                "--routes",
                ",".join(f"nats://127.0.0.1:{port}" for port in self.routes),
            ]
        return args

    def start(self) -> NatsServer:
        if not self.running:
            self.spawn()
        return self.wait_ready()

    def spawn(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self) -> NatsServer:
        process = self.process
        assert process is not None, "spawn() first"
        deadline = time.monotonic() + _READY_TIMEOUT
        while not _accepts(self.port):
            if process.poll() is not None:
                log = self.store_dir / "server.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"nats-server exited with {process.returncode}: {tail}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nats-server did not accept connections on {self.port}")
            time.sleep(0.05)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), waited for."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """kill -9: the node vanishes without a word to its clients or peers."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def meta_leader(self) -> str | None:
        """The JetStream meta leader this node knows of (its monitoring endpoint), if any."""
        url = f"http://127.0.0.1:{self.monitor_port}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                info = json.load(response)
        except (OSError, ValueError):
            return None
        leader = (info.get("meta_cluster") or {}).get("leader")
        return leader if isinstance(leader, str) and leader else None

    def restart(self) -> NatsServer:
        self.stop()
        return self.start()


@dataclass
class NatsCluster:
    """Three JetStream nodes routed to each other on loopback ports."""

    nodes: list[NatsServer]

    @classmethod
    def of_three(cls, folder: Path) -> NatsCluster:
        cluster_ports = [free_port() for _ in range(3)]
        nodes = [
            NatsServer(
                folder / f"n{index + 1}",
                name=f"n{index + 1}",
                cluster_port=cluster_ports[index],
                routes=tuple(p for i, p in enumerate(cluster_ports) if i != index),
            )
            for index in range(3)
        ]
        return cls(nodes)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> NatsCluster:
        # Started together: a JetStream cluster elects its meta leader once peers meet.
        # A port taken by another program between choosing it and binding it is the one
        # failure worth another try, on fresh ports (no client has seen these URLs yet).
        for attempt in range(3):
            for node in self.nodes:
                node.spawn()
            try:
                for node in self.nodes:
                    node.wait_ready()
            except RuntimeError as error:
                for node in self.nodes:
                    node.kill()
                if "address already in use" not in str(error) or attempt == 2:
                    raise
                self._choose_ports()
                continue
            return self.wait_jetstream()
        raise AssertionError("unreachable")

    def _choose_ports(self) -> None:
        cluster_ports = [free_port() for _ in self.nodes]
        for index, node in enumerate(self.nodes):
            (node.store_dir / "server.log").unlink(missing_ok=True)
            node.port = free_port()
            node.monitor_port = free_port()
            node.cluster_port = cluster_ports[index]
            node.routes = tuple(p for i, p in enumerate(cluster_ports) if i != index)

    def wait_jetstream(self, timeout: float = _READY_TIMEOUT) -> NatsCluster:
        """Until the nodes have elected a JetStream meta leader: before that, creating a
        stream times out."""
        # Every running node must know the same leader: a node that has not heard of it
        # yet answers a stream request late, and a replicated stream needs all of them.
        deadline = time.monotonic() + timeout
        while True:
            leaders = {node.meta_leader() for node in self.nodes if node.running}
            if len(leaders) == 1 and None not in leaders:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("the JetStream cluster elected no meta leader")
            time.sleep(0.1)

    def add_stream(self, config: StreamConfig, timeout: float = 90.0) -> None:
        """Create a stream replicated over the cluster, asking again while the request
        times out: just after an election a 2-core machine under load may place its
        replicas later than one request waits. Asking again is safe, since creating a
        stream that exists with the same configuration is accepted."""

        async def create() -> None:
            nc = await nats.connect(self.urls)
            try:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        await nc.jetstream(timeout=20).add_stream(config)
                        return
                    except nats.errors.TimeoutError:
                        if time.monotonic() > deadline:
                            raise
            finally:
                await nc.close()

        asyncio.run(create())

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
