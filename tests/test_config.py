"""Config loading: presets, pyproject tables, and one clear line for every mistake."""

import pytest

from audit import ConfigError, load_config


def write(tmp_path, text, name="audit.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_default_preset_has_every_gate_with_a_rationale():
    cfg = load_config()
    assert set(cfg.conditions) >= {"intrinsic", "zero_shot"}
    for gate in ("a_sb", "rpa_gap", "worst_o_sb", "accuracy", "transfer"):
        assert cfg.gates[gate].rationale


def test_user_gates_merge_and_conditions_replace(tmp_path):
    p = write(tmp_path, '[tool.bias-audit.gates.a_sb]\nthreshold = 0.3\n[tool.bias-audit.conditions.intrinsic]\nformat = "intrinsic"\n'
                        '[tool.bias-audit.conditions.k2]\nformat = "zero_shot"\nshots = 2\n', "pyproject.toml")
    cfg = load_config(p)
    assert cfg.gates["a_sb"].threshold == 0.3 and cfg.gates["a_sb"].bound == "interval"  # rest of the gate kept
    assert list(cfg.conditions) == ["intrinsic", "k2"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("bogus = 1", "unknown config key 'bogus'"),
        ("[gates.a_sb]\nthreshold = -0.1", "gates.a_sb"),
        ("[gates.a_sb]\nthreshold = 'high'", "gates.a_sb.threshold"),
        ("[gates.a_sb]\nbound = 'middle'", "gates.a_sb.bound"),
        ("[gates.a_sb]\ntreshold = 0.1", "unknown config key 'gates.a_sb.treshold'"),
        ("[conditions.zero_shot]\nshots = -1", "conditions.zero_shot.shots"),
        ("[conditions.Bad-Name]\nformat = 'zero_shot'", "Bad-Name"),
        ("transfer_from = 'nope'", "transfer_from"),
        ("[gates.no_such_gate]\nthreshold = 0.1\nbound = 'upper'\nrationale = 'x'", "unknown gate"),
        ("[gates.a_sb]\nconditions = ['nope']", "gates.a_sb.conditions"),
        ("x = ", "not valid TOML"),
    ],
)
def test_bad_config_gives_one_line_naming_the_key(tmp_path, text, expected):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    message = str(err.value)
    assert expected in message and str(p) in message and "\n" not in message


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="unknown config preset 'nope'"):
        load_config(preset="nope")


def test_a_user_file_that_writes_extends_as_a_preset_does_is_told_to_write_preset(tmp_path):
    p = write(tmp_path, 'extends = "bbq"\n[gates.bbq_s_dis]\nthreshold = 0.15')
    with pytest.raises(ConfigError, match=r"config key 'extends'.*preset = 'bbq'") as err:
        load_config(p)
    assert str(p) in str(err.value)
    p = write(tmp_path, 'preset = "bbq"\n[gates.bbq_s_dis]\nthreshold = 0.15')
    cfg = load_config(p)
    assert cfg.gates["bbq_s_dis"].threshold == 0.15 and cfg.gates["bbq_s_dis"].bound == "interval"


def test_the_old_name_baseline_still_sets_transfer_from_with_a_deprecation_warning(tmp_path):
    p = write(tmp_path, "baseline = 'zero_shot'")
    with pytest.warns(DeprecationWarning, match="transfer_from"):
        cfg = load_config(p)
    assert cfg.transfer_from == "zero_shot"
