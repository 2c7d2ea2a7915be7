"""Fuzzing: any input to the data parser or the config loader gives a valid result or the clear
error (an AuditError), never a crash."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit import AuditConfig, AuditError, load_config
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.official import parse_line

WORDS = st.sampled_from(["[The developer]", "[he]", "[she]", "the", "[the chief]", "[an assistant]", "designer",
                         "construction worker", "'s", "[", "]", "[]", "[[x]]", "because", ".", "1", "-3", "\t"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.lists(WORDS, max_size=12).map(" ".join), st.text(alphabet=string.printable)))
def test_parser_never_crashes(line):
    try:
        item = parse_line(line, type_=1, stance="pro", split="dev", source="fuzz.txt:1")
    except AuditError as exc:
        assert str(exc).startswith("fuzz.txt:1") and "\n" not in str(exc)
    else:
        assert isinstance(item, Item) and item.referent in item.candidates and len(item.candidates) == 2


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
KEYS = st.sampled_from(["data", "split", "seed", "baseline", "confidence", "n_resamples", "min_items", "max_items",
                        "batch_size", "conditions", "gates", "bogus"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, VALUES, max_size=4), st.sampled_from(["a_sb", "transfer", "nope"]), VALUES)
def test_config_loader_never_crashes(overrides, gate, gate_value):
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if gate_value is not None:
        overrides.setdefault("gates", {gate: gate_value}) if not isinstance(overrides.get("gates"), dict) else None
    try:
        cfg = load_config(overrides=overrides)
    except AuditError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(cfg, AuditConfig)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.printable, max_size=200))
def test_config_file_text_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "audit.toml"
    path.write_text(text)
    try:
        load_config(path)
    except AuditError as exc:
        assert str(path) in str(exc)
