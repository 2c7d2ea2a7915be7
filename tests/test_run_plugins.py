"""The run's pytest leaves out the autoloaded plugins its suite does not use (``audit.run.setup.unused_plugin_args``):
their imports and pytest's rewriting of their modules cost 1.5-2 s of a 12-second run where no bytecode is
written (docs/performance.md, session 11). A suite that names one keeps it."""

from __future__ import annotations

import json
import shutil
import sys

from audit.cli import main
from audit.paths import resource_dir
from audit.run.setup import unused_plugin_args

_SEEN = '''
def pytest_configure(config):
    import json, os
    with open(os.environ["PLUGINS_SEEN"], "w", encoding="utf-8") as f:
        json.dump([name for name, plugin in config.pluginmanager.list_name_plugin() if plugin is not None], f)  # blocked: None
'''


def test_the_shipped_suite_leaves_out_the_plugins_it_never_names():
    args = unused_plugin_args(resource_dir("fairness_tests"))
    assert args == ["-p", "no:hypothesispytest", "-p", "no:anyio"]


def test_a_suite_that_names_a_plugins_module_keeps_it(tmp_path):
    (tmp_path / "test_own.py").write_text("from hypothesis import given\n", encoding="utf-8")
    assert unused_plugin_args(tmp_path) == ["-p", "no:anyio"]


def _suite(root, extra: str = ""):
    suite = root / "suite"
    shutil.copytree(resource_dir("fairness_tests"), suite, ignore=shutil.ignore_patterns("__pycache__"))
    (suite / "conftest.py").write_text(_SEEN + extra, encoding="utf-8")
    return suite


def _forget_suite_modules() -> None:
    for module in ("test_bias_transfer", "conftest"):
        sys.modules.pop(module, None)


def _plugins_of_a_run(root, suite, tiny_model_dir, monkeypatch) -> list[str]:
    (root / "bias-audit.toml").write_text('preset = "default"\nmax_items = 8\nmin_items = 4\nn_resamples = 100\n',
                                          encoding="utf-8")
    seen = root / "seen.json"
    monkeypatch.setenv("PLUGINS_SEEN", str(seen))
    monkeypatch.chdir(root)
    try:  # the suite's modules by their bare names: not this copy's in other in-process runs, before or after
        _forget_suite_modules()
        code = main(["run", "--model", str(tiny_model_dir), "--tests", str(suite), "--out", "out"])
    finally:
        _forget_suite_modules()
    assert code in (0, 1)
    return json.loads(seen.read_text(encoding="utf-8"))


def test_a_run_loads_its_own_plugin_and_not_the_unused_ones(tiny_model_dir, tmp_path, monkeypatch):
    names = _plugins_of_a_run(tmp_path, _suite(tmp_path), tiny_model_dir, monkeypatch)
    assert "bias_audit" in names
    assert "hypothesispytest" not in names and "anyio" not in names


def test_a_run_of_a_suite_using_hypothesis_loads_its_plugin(tiny_model_dir, tmp_path, monkeypatch):
    names = _plugins_of_a_run(tmp_path, _suite(tmp_path, "\nimport hypothesis  # noqa: F401\n"), tiny_model_dir,
                              monkeypatch)
    assert "hypothesispytest" in names and "anyio" not in names
