"""Python's cyclic garbage collector in the process of a run: what lives for the whole run is frozen.

Every full collection scans every object the collector tracks, and a run holds hundreds of thousands that live
until it ends: the imported modules (torch and transformers alone add about 300,000), the data, the loaded
model. Full collections recur as the run allocates, each one slower than the last. Measured on
``bias-audit run --preset bbq --max-items 400 --model reference-biased``: 13 full collections took 2.3-2.8 s
of a 16-17-second run (pytest's own collections at its end included, 0.3 s each).

So ``bias-audit run`` and ``bias-audit plan`` freeze (``gc.freeze``) what is alive once the session is built
(imports, data, prompts) and again after each model loads (``freeze_long_lived``): later collections scan
only what was made since. Frozen objects are never collected, so cyclic garbage made before a freeze stays
(reference counting still frees the rest); a released model is freed by reference counting, and where a
reference cycle holds it, ``release_model`` unfreezes and collects. Freezing is on only inside
``long_lived_frozen`` (the CLI's run), so a library caller's process (the tests) gets everything back at its
end. The shell command keeps its freeze to the end (``keep_frozen_at_exit``): unfrozen, every object would
go back to the collector just before the interpreter's final collection scans them all (default preset, tiny
GPT-2, four alternating pairs: 12.7-13.4 s kept against 13.4-13.6 s unfrozen).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_active = False
_keep_at_exit = False


@contextmanager
def long_lived_frozen() -> Iterator[None]:
    """Freeze what is alive now, and let ``freeze_long_lived`` freeze again until the block ends; at its end
    everything frozen goes back to the collector."""
    global _active
    outer = _active
    _active = True
    gc.freeze()
    try:
        yield
    finally:
        _active = outer
        if not outer and not _keep_at_exit:
            gc.unfreeze()


def keep_frozen_at_exit() -> None:
    """This process ends with the command (``bias-audit`` from the shell): a run's freeze stays at its end."""
    global _keep_at_exit
    _keep_at_exit = True


def freeze_long_lived() -> None:
    """Inside ``long_lived_frozen``: freeze what is alive now (a model just loaded). Elsewhere nothing."""
    if _active:
        gc.freeze()
