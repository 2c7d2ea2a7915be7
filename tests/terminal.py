"""Run a command on a pseudo-terminal, as a user's shell would, and keep what it printed."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path


def run_in_pty(args: list[str], cwd: Path, env: dict, *, columns: int = 160,
               timeout: float = 600) -> tuple[int, list[tuple[float, str]]]:
    """Run with stdin/stdout/stderr on a terminal ``columns`` wide; the exit code and (seconds since start,
    line) for every non-blank line or redraw it printed, erase-line codes removed."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    lines, pending = [], ""
    try:
        while time.monotonic() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                pending += data.decode("utf-8", errors="replace")
                *done, pending = re.split(r"[\r\n]", pending)
                now = time.monotonic() - started
                lines += [(now, line.replace("\x1b[K", "")) for line in done if line.strip()]
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
    finally:
        os.close(master)
        proc.wait(timeout=30)
    if pending.strip():
        lines.append((time.monotonic() - started, pending.replace("\x1b[K", "")))
    return proc.returncode, lines
