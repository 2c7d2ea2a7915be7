"""Start and stop a llama.cpp server for a benchmark or test: 127.0.0.1, a free port, stopped by PID.

    with llama_cpp_server(Path("model.gguf"), alias="smollm2", threads=1) as server:
        ...  # server.url is http://127.0.0.1:PORT/v1; server.cpu_seconds() its CPU time so far
    with llama_server(llama_server_binary(), Path("model.gguf"), alias="smollm2", threads=1, slots=4) as server:
        ...  # llama.cpp's own C++ llama-server (built by .ci/run into the cache folder)

OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``): on a machine shared with other jobs,
spinning threads that lose their core slow llama.cpp's prompt evaluation by 30x and more.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class ServerStartError(RuntimeError):
    """The server could not be started (one line, with the end of its log)."""


@dataclass(frozen=True)
class StartedServer:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads) so far, from /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_server_binary() -> Path | None:
    """llama.cpp's ``llama-server``: ``$BIAS_AUDIT_LLAMA_SERVER``, else the one .ci/run builds into the cache
    folder, else one on PATH; None where there is none."""
    import shutil

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bias-transfer-audit"
    for candidate in (os.environ.get("BIAS_AUDIT_LLAMA_SERVER"), cache / "llama-server" / "llama-server",
                      shutil.which("llama-server")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@contextmanager
def llama_cpp_server(gguf: Path, *, alias: str, threads: int, n_ctx: int = 2048, wait_s: float = 180.0,
                     extra: list[str] | None = None):
    """``python -m llama_cpp.server`` on ``gguf``; yields a ``StartedServer``; SIGTERM (then SIGKILL) at the end."""
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias, "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--seed", "0", *(extra or [])]
    with _started(cmd, port, "llama-cpp-python's server", wait_s) as server:
        yield server


@contextmanager
def llama_server(binary: Path, gguf: Path, *, alias: str, threads: int, slots: int = 4, n_ctx: int = 2048,
                 wait_s: float = 180.0, extra: list[str] | None = None):
    """llama.cpp's ``llama-server`` on ``gguf``: ``slots`` parallel sequences of ``n_ctx`` tokens each,
    continuous batching and its prompt cache as shipped; no web UI."""
    port = free_port()
    cmd = [str(binary), "-m", str(gguf), "--alias", alias, "--host", "127.0.0.1", "--port", str(port),
           "-c", str(n_ctx * slots), "-np", str(slots), "-t", str(threads), "-tb", str(threads), "--seed", "0",
           "--no-webui", *(extra or [])]
    with _started(cmd, port, "llama-server", wait_s) as server:
        yield server


@contextmanager
def _started(cmd: list[str], port: int, what: str, wait_s: float):
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if proc.poll() is not None:
                    raise ServerStartError(f"{what} exited ({proc.returncode}): "
                                           f"{' '.join(log.read_text(errors='replace').split()[-60:])}")
                try:
                    if httpx.get(url + "/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerStartError(f"{what} did not answer within {wait_s:g} s")
                time.sleep(0.5)
            yield StartedServer(url, proc.pid)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
