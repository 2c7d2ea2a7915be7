"""Start and stop llama-cpp-python's OpenAI server for a benchmark: 127.0.0.1, a free port, stopped by PID.

    with llama_cpp_server(Path("model.gguf"), alias="smollm2", threads=2) as url:
        ...  # url is http://127.0.0.1:PORT/v1
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
from pathlib import Path


class ServerStartError(RuntimeError):
    """The server could not be started (one line, with the end of its log)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_cpp_server(gguf: Path, *, alias: str, threads: int, n_ctx: int = 2048, wait_s: float = 180.0,
                     extra: list[str] | None = None):
    """``python -m llama_cpp.server`` on ``gguf``; yields its base URL; SIGTERM (then SIGKILL) at the end."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias, "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--seed", "0", *(extra or [])]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + wait_s
            while True:
                if proc.poll() is not None:
                    raise ServerStartError(f"llama-cpp-python's server exited ({proc.returncode}): "
                                           f"{' '.join(log.read_text(errors='replace').split()[-60:])}")
                try:
                    if httpx.get(url + "/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerStartError(f"llama-cpp-python's server did not answer within {wait_s:g} s")
                time.sleep(0.5)
            yield url
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
