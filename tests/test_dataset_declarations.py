"""What a dataset declares reaches the generic stages, which name no dataset themselves: its few-shot
composition keys (the config), its summary fields of numbers by unit (the record checker) and its
pre-prompts (a package's preprompts.toml); the reference models register as backends by name."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import audit.datasets as datasets
from audit import AuditError, ConditionKnob, ConfigError, load_config
from audit.results.io import check_results

from test_seams import Words  # the example plugin's dataset, loaded by file (its entry points stay invisible)

ROOT = Path(__file__).resolve().parents[1]
DATASET_WORDS = r"occupation|pronoun|o_sb|a_sb|rpa|s_amb|s_dis|stereotyp"


class Declaring(Words):
    condition_knobs = {"frame_share": ConditionKnob(float | None, None)}
    summary_number_maps = {"frame_gaps": "word"}


@pytest.fixture
def declaring(monkeypatch):
    monkeypatch.setitem(datasets._REGISTRY, "declaring", Declaring)
    monkeypatch.setitem(datasets._INSTANCES, "declaring", Declaring())
    yield


def _config(tmp_path, condition: str) -> Path:
    path = tmp_path / "audit.toml"
    path.write_text(f'transfer_from = "bare"\n[conditions.bare]\nformat = "zero_shot"\nshots = 2\n{condition}\n')
    return path


def test_a_datasets_composition_key_is_accepted_typed_and_defaulted(tmp_path, declaring):
    cfg = load_config(_config(tmp_path, "frame_share = 0.25\noccupations = \"male\""))
    bare = cfg.conditions["bare"]
    assert bare.frame_share == 0.25 and bare.occupations == "male" and bare.pro_share is None
    assert bare.composition(["frame_share"]) == {"frame_share": 0.25}
    with pytest.raises(ConfigError, match=r"audit.toml: config key 'conditions.bare.frame_share': Input should be a valid number"):
        load_config(_config(tmp_path, 'frame_share = "half"'))


def test_an_undeclared_key_is_unknown(tmp_path):
    with pytest.raises(ConfigError, match=r"audit.toml: unknown config key 'conditions.bare.frame_share'$"):
        load_config(_config(tmp_path, "frame_share = 0.25"))


def test_a_declared_summary_map_is_checked_when_a_record_is_read(declaring):
    record = {"schema_version": "1.0", "verdict": "pass", "gates": [], "items": {}, "provenance": {},
              "models": [{"name": "m", "conditions": {"c": {"frame_gaps": {"apple": "high"}}}}]}
    with pytest.raises(AuditError, match=r"models\[0\].conditions.c.frame_gaps must be numbers by word"):
        check_results(record)
    record["models"][0]["conditions"]["c"]["frame_gaps"] = {"apple": 0.5, "saw": None}
    check_results(record)


def test_the_pre_prompts_keep_their_names_and_order():
    from audit.prompts.preprompts import known_preprompts

    known = known_preprompts()
    assert list(known) == ["none", "fair", "biased", "fair_all", "no_stereotypes", "followup_explanation",
                           "followup_reprompt"]
    assert "gender" in known["fair"] and "religion" in known["fair_all"] and known["none"] == ""


def test_the_reference_models_keep_their_names():
    from audit.backends import parse_spec

    assert parse_spec("reference-fair") == ("reference", "reference-fair")
    assert parse_spec("reference:reference-biased") == ("reference", "reference-biased")
    assert parse_spec("reference-bbq:planted") == ("reference-bbq", "planted")
    assert parse_spec("org/reference-fair") == ("hf", "org/reference-fair")


def test_no_dataset_word_in_the_generic_stages_but_the_listed_ones():
    """Outside the dataset packages, only generic prompt text (docs/architecture.md, "Dataset words
    outside audit/datasets/")."""
    files = subprocess.run(["git", "ls-files", "audit"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    hits = {}
    for name in files:
        if name.startswith("audit/datasets/") or not (ROOT / name).is_file():
            continue
        lines = [line for line in (ROOT / name).read_text(encoding="utf-8", errors="replace").splitlines()
                 if re.search(DATASET_WORDS, line, re.I)]
        if lines:
            hits[name] = len(lines)
    assert hits == {"audit/prompts/strategies.toml": 2}, hits
