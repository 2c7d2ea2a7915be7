"""``bias-audit init``: a starter audit suite and config in the user's repository."""

from __future__ import annotations

from pathlib import Path

from audit.config import preset_text
from audit.errors import AuditError
from audit.paths import resource_dir

STARTER_CONFIG_HEADER = """\
# bias-transfer-audit configuration.
# `preset` is the built-in set of conditions and gates this file extends ("default" or "study");
# tables below override it: a [conditions.*] table replaces the preset's conditions, a [gates.*] key
# overrides that gate's setting. Every gate needs a threshold, a bound ("upper", "lower" or "point")
# and a rationale that a reviewer can read.
preset = "default"

"""


def starter_files() -> dict[str, str]:
    suite = resource_dir("fairness_tests") / "test_bias_transfer.py"
    preset = preset_text("default")
    return {
        "fairness_tests/test_bias_transfer.py": suite.read_text(encoding="utf-8"),
        "bias-audit.toml": STARTER_CONFIG_HEADER + "# A copy of the default preset, to edit:\n" + preset,
    }


def init_project(root: Path, *, force: bool = False) -> list[Path]:
    """Write the starter files under ``root``; refuse to overwrite unless ``force``."""
    files = starter_files()
    existing = [name for name in files if (root / name).exists()]
    if existing and not force:
        raise AuditError(f"{root / existing[0]} already exists; pass --force to overwrite")
    written = []
    for name, text in files.items():
        path = root / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise AuditError(f"cannot write {path}: {exc.strerror}") from None
        written.append(path)
    return written
