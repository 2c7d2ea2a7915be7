"""A run frees its model's weights before it writes the record and the report: the run's peak memory is the
model and one batch, or the record and its views, never both (issue 25, docs/performance.md "Memory")."""

from __future__ import annotations

import pathlib

from audit.cli import main


def _config(root: pathlib.Path) -> str:
    (root / "bias-audit.toml").write_text('preset = "default"\nmax_items = 8\nmin_items = 4\nn_resamples = 100\n',
                                          encoding="utf-8")
    return str(root / "bias-audit.toml")


def test_release_models_drops_the_weights_and_keeps_the_identity(tiny_model_dir, tmp_path):
    from audit import AuditOptions, build_session

    session = build_session(AuditOptions(model=[str(tiny_model_dir)], config=_config(tmp_path)), root=tmp_path)
    spec = session.model_specs[0]
    session.run(spec, "zero_shot")
    hf = session.loaded_backend(spec).inner
    weights = hf.loaded.model
    identity = hf.identity()
    import weakref

    gone = weakref.ref(weights)
    del weights
    session.release_models()
    assert hf.loaded.model is None and gone() is None  # nothing else held the module
    record = session.results()
    assert record["models"][0]["identity"] == identity and "zero_shot" in record["models"][0]["conditions"]


def test_a_run_releases_its_models_before_writing_the_record(tiny_model_dir, tmp_path, monkeypatch):
    from audit.run import session as session_module
    from audit.run import setup

    order = []
    release = session_module.AuditSession.release_models
    write = setup.write_outputs

    def released(self):
        order.append("release")
        release(self)
        assert all(b.inner.loaded.model is None for b in self._backends.values())

    def written(*args, **kwargs):
        order.append("write")
        return write(*args, **kwargs)

    monkeypatch.setattr(session_module.AuditSession, "release_models", released)
    monkeypatch.setattr(setup, "write_outputs", written)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--model", str(tiny_model_dir), "--config", _config(tmp_path), "--out", "out"])
    assert code in (0, 1) and order == ["release", "write"]
    assert (tmp_path / "out" / "results.json").is_file() and (tmp_path / "out" / "report.html").is_file()


def test_a_run_freezes_what_lives_to_its_end_and_unfreezes_after(tiny_model_dir, tmp_path, monkeypatch):
    """``bias-audit run`` freezes the collector's view of its start-up and of each model once loaded
    (``audit.run.collector``), so its full collections scan only what it made since; the caller's process gets
    everything back when the run ends."""
    import gc

    from audit.run import session as session_module

    seen = {}
    release = session_module.AuditSession.release_models

    def released(self):
        seen["frozen"] = gc.get_freeze_count()
        release(self)

    monkeypatch.setattr(session_module.AuditSession, "release_models", released)
    monkeypatch.chdir(tmp_path)
    assert gc.get_freeze_count() == 0
    code = main(["run", "--model", str(tiny_model_dir), "--config", _config(tmp_path), "--out", "out"])
    assert code in (0, 1)
    assert seen["frozen"] > 50_000  # the imports, the data and the model: frozen while the run scored
    assert gc.get_freeze_count() == 0


def test_a_model_in_a_reference_cycle_is_freed_although_frozen(tiny_model_dir, tmp_path):
    from audit import AuditOptions, build_session
    from audit.run.collector import freeze_long_lived, long_lived_frozen

    session = build_session(AuditOptions(model=[str(tiny_model_dir)], config=_config(tmp_path)), root=tmp_path)
    spec = session.model_specs[0]
    import gc
    import weakref

    with long_lived_frozen():
        session.run(spec, "zero_shot")
        hf = session.loaded_backend(spec).inner
        hf.loaded.model.itself = [hf.loaded.model]  # a cycle: reference counting alone cannot free it
        freeze_long_lived()
        gone = weakref.ref(hf.loaded.model)
        session.release_models()
        assert gone() is None
    assert gc.get_freeze_count() == 0


def test_freezing_is_scoped_to_the_block():
    import gc

    from audit.run.collector import freeze_long_lived, long_lived_frozen

    freeze_long_lived()  # outside a run: nothing
    assert gc.get_freeze_count() == 0
    with long_lived_frozen():
        outer = gc.get_freeze_count()
        assert outer > 0
        with long_lived_frozen():
            kept = [[] for _ in range(1000)]
            freeze_long_lived()
        assert gc.get_freeze_count() >= outer + 1000  # the inner block's end leaves the outer run frozen
        del kept
    assert gc.get_freeze_count() == 0


def test_the_shell_command_keeps_its_freeze_to_the_process_end(tiny_model_dir, tmp_path, monkeypatch):
    """Run as the process's own command (no argv), the run leaves its freeze in place: the interpreter's final
    collection then skips what the run froze (0.1-0.8 s of a 13-second run, docs/performance.md)."""
    import gc
    import sys

    from audit.run import collector

    monkeypatch.setattr(collector, "_keep_at_exit", False)  # restored after the test
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["bias-audit", "run", "--model", str(tiny_model_dir), "--config",
                                      _config(tmp_path), "--out", "out"])
    try:
        assert main() in (0, 1)
        assert gc.get_freeze_count() > 50_000
    finally:
        gc.unfreeze()
