"""Test support: the real brain-server on a free port, and a TCP proxy that can
cut, refuse or stall connections to it.

The server binary is ``$BRAIN_SERVER_BIN`` when set, else
``<target>/debug/brain-server`` (built with cargo when it is missing).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional

from brain_client import BrainClient

REPO_ROOT = Path(__file__).resolve().parents[3]
SUNSET_PNG = REPO_ROOT / "client" / "testdata" / "sunset.png"

def server_env() -> dict:
    """The environment without ``BRAIN_*`` variables: the server reads those as
    settings and refuses unknown ones (``BRAIN_ADDR``, ``BRAIN_API_KEY`` and
    ``BRAIN_SERVER_BIN`` are the client's); the tests pass everything as flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BRAIN_")}


def server_binary() -> Path:
    """``$BRAIN_SERVER_BIN``, else ``<target>/debug/brain-server``, built with cargo if missing.

    An existing binary is used as is: ``client/test-all.sh`` rebuilds it first;
    run ``cargo build -p brain-server`` yourself after changing the server.
    """
    explicit = os.environ.get("BRAIN_SERVER_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    binary = target / "debug" / "brain-server"
    if not binary.exists():
        subprocess.run(
            ["cargo", "build", "-p", "brain-server", "--manifest-path", str(REPO_ROOT / "Cargo.toml")],
            check=True,
        )
    return binary


#: The tenant of ``BrainServer.api_key``.
TENANT = "client-tests"
#: The tenant of ``BrainServer.purge_key``, there to be purged.
PURGE_TENANT = "client-tests-purge"


def create_key(binary: Path, database_url: str, *args: str) -> str:
    """Runs ``brain-server keys create <args>`` and returns the key it prints."""
    created = subprocess.run(
        [str(binary), "keys", "create", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        env=server_env(),
    )
    assert created.returncode == 0, f"keys create failed: {created.stderr}"
    key = created.stdout.strip()
    assert key.startswith("brk_"), key
    return key


class BrainServer:
    """A running brain-server with an API key of ``TENANT`` (``api_key``), an admin key
    (``admin_key``) and an API key of ``PURGE_TENANT`` (``purge_key``); ``stop()`` sends SIGTERM."""

    def __init__(self, binary: Path) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="brain-python-")
        directory = Path(self._dir.name)
        database_url = f"sqlite://{directory / 'brain.db'}"
        self.api_key = create_key(binary, database_url, "--tenant", TENANT)
        self.admin_key = create_key(binary, database_url, "--admin")
        self.purge_key = create_key(binary, database_url, "--tenant", PURGE_TENANT)
        ready_file = directory / "ready.json"
        self._log_path = directory / "server.log"
        log = open(self._log_path, "wb")
        self._process = subprocess.Popen(
            [
                str(binary),
                "--listen-addr", "127.0.0.1:0",
                "--metrics-addr", "off",
                "--database-url", database_url,
                "--ready-file", str(ready_file),
            ],
            stdout=log,
            stderr=log,
            env=server_env(),
        )
        log.close()
        self.addr = self._wait_ready(ready_file)

    def _wait_ready(self, ready_file: Path) -> str:
        deadline = time.monotonic() + 30
        addr = None
        while addr is None:
            try:
                addr = json.loads(ready_file.read_text())["grpc_addr"]
            except (OSError, ValueError, KeyError):
                if self._process.poll() is not None:
                    raise RuntimeError(f"brain-server exited before it was ready:\n{self.log()}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"brain-server not ready after 30 s:\n{self.log()}") from None
                time.sleep(0.02)
        with BrainClient(addr, timeout=1.0) as probe:
            while True:
                try:
                    if probe.health() == "SERVING":
                        return str(addr)
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"brain-server not SERVING after 30 s:\n{self.log()}")
                time.sleep(0.02)

    def log(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    def client(self, **options: object) -> BrainClient:
        return BrainClient(self.addr, api_key=self.api_key, **options)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._dir.cleanup()


class Proxy:
    """A loopback TCP proxy in front of the server, to break connections on purpose."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._lock = threading.Lock()
        self._sockets: List[socket.socket] = []
        self._stall = False
        self._listener: Optional[socket.socket] = None
        self._port = 0
        self._listen()
        self.addr = f"127.0.0.1:{self._port}"

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(64)
        self._port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                inbound, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._sockets.append(inbound)
                stall = self._stall
            if stall:
                continue  # hold the connection open and never answer
            try:
                outbound = socket.create_connection(self._upstream)
            except OSError:
                inbound.close()
                continue
            with self._lock:
                self._sockets.append(outbound)
            threading.Thread(target=self._pump, args=(inbound, outbound), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self) -> None:
        """Drops every open connection."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def refuse(self) -> None:
        """Stops listening and cuts open connections: new connections are refused."""
        if self._listener is not None:
            try:
                # On Linux, shutdown wakes the thread blocked in accept(); close alone does not.
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        self.cut()

    def restore(self) -> None:
        """Listens again on the same port."""
        for _ in range(50):
            try:
                self._listen()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"cannot rebind {self.addr}")

    def stall(self) -> None:
        """New connections are accepted but never answered; open ones are cut.

        Cutting matters: gRPC core shares connections between channels to the same
        address, so a new channel could otherwise reuse one opened before the stall.
        """
        with self._lock:
            self._stall = True
        self.cut()

    def close(self) -> None:
        self.refuse()
