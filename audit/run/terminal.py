"""The progress lines on pytest's terminal (both entry points: ``bias-audit run`` runs pytest in-process).

Scoring happens inside a test's setup, while pytest captures the process's output; the lines are
written through pytest's own terminal writer with capture suspended for the moment of writing (the
mechanism of ``capsys.disabled()`` and of live logging), so they reach the terminal and leave the
captured output of the test alone. On a TTY the progress line is redrawn in place, fitted to the
terminal's width; elsewhere (CI logs) only the kept lines are written: one per stage and per finished
condition, no redraws.

Under torchrun the ranks other than 0 compute the same audit; their pytest output is sent to
``os.devnull`` so the terminal shows one run's report.
"""

from __future__ import annotations

from audit.results.redaction import redact

import contextlib
import os

import pytest

from audit.run import progress


class PytestTerminalDisplay:
    """``audit.run.progress.Display`` on pytest's terminal: one line redrawn in place, kept when final."""

    def __init__(self, config: pytest.Config, live: bool = True):
        self.config = config
        self.live = live  # a TTY: redraw in place; else kept lines only
        self._open = False  # a progress line is on screen, not yet ended

    @property
    def width(self) -> int:
        """Columns for the text (after the two-space indent, before the last column)."""
        return max(20, self.config.get_terminal_writer().fullwidth - 3)

    def show(self, text: str, final: bool) -> None:
        if not self.live and not final:
            return
        text = redact(text)  # a model spec or path may hold a secret the user gave (issue 23)
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        suspended = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        tw = self.config.get_terminal_writer()
        with suspended:
            if not self._open and tw.width_of_current_line:
                tw.line()  # start below pytest's dots (or the test id in -v mode)
            if self.live:
                tw.write("\r  " + text[: self.width] + "\x1b[K")
            else:
                tw.write("  " + text)
            if final:
                tw.line()  # the final line stays; pytest's writer is back at a line start
            tw.flush()
        self._open = not final


def install(config: pytest.Config, *, quiet_other_ranks: bool = True) -> None:
    """Progress on this run's terminal (rank 0; redrawn on a TTY, kept lines only elsewhere); silence the terminal of other torchrun ranks."""
    from audit.backends.distributed import world_from_env

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    if not world_from_env().is_main:
        if not quiet_other_ranks:
            return
        from _pytest.config import create_terminal_writer

        reporter._tw = create_terminal_writer(config, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115
        return
    if reporter.isatty() or quiet_other_ranks:  # kept lines in logs only for an audit run, not any pytest run
        progress.set_display(PytestTerminalDisplay(config, live=reporter.isatty()))


def uninstall() -> None:
    progress.set_display(None)
