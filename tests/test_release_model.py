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
