import os
import sys
from pathlib import Path

import pytest

# Tests never reach a model hub: everything they load is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_result_cache(tmp_path_factory):
    """Runs in the tests (and their subprocesses) never read or fill the user's result cache."""
    previous = os.environ.get("BIAS_AUDIT_CACHE_DIR")
    os.environ["BIAS_AUDIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("result-cache"))
    yield
    if previous is None:
        os.environ.pop("BIAS_AUDIT_CACHE_DIR", None)
    else:
        os.environ["BIAS_AUDIT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tiny_models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny(tiny_model_dir):
    """The tiny Llama of ``tiny_model_dir``, loaded on the CPU in float32 (the fake servers' model)."""
    from audit.backends.hf.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu", dtype="float32")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests run with the network blocked: only loopback and Unix sockets may connect."""
    import socket

    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family == socket.AF_UNIX or str(host) in ("127.0.0.1", "::1", "localhost"):
            return real_connect(sock, address)
        raise OSError(f"network access blocked in tests (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", guarded)
