"""Data sources: generated, a directory, WinoBias from cache/download/hub (never the real network)."""

from __future__ import annotations

import hashlib
import urllib.error
from pathlib import Path

import pytest
from shared_data import winobias_dir

from audit.datasets.winobias import sources as _datasets
from audit.datasets.winobias.sources import cache_dir, data_fingerprint, hub_row_to_line, load_items
from audit import DataError
from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.official import official_file_names

LINES = {
    "pro": ["1 [The developer] argued with the designer because [he] did not like the design."],
    "anti": ["1 [The developer] argued with the designer because [she] did not like the design."],
}


def official_bytes() -> dict[str, bytes]:
    """Stand-ins for the eight official files: one line each."""
    return {name: (LINES[name.split("_")[0]][0] + "\n").encode() for name in official_file_names()}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Every test runs offline with an empty cache unless it installs its own fakes."""

    def offline(url, timeout=30.0):
        raise urllib.error.URLError("network is unreachable")

    def no_datasets(config, split):
        raise ImportError("No module named 'datasets'")

    monkeypatch.setattr(_datasets, "_fetch", offline)
    monkeypatch.setattr(_datasets, "_hub_rows", no_datasets)
    monkeypatch.setenv("BIAS_AUDIT_CACHE_DIR", str(tmp_path / "cache"))


# --- generated and directories ---------------------------------------------------------------------

def test_generated_split_filter_and_neutral():
    assert len(load_items("generated", split=None)) == 1280
    test = load_items()
    assert len(test) == 640 and {i.split for i in test} == {"test"}
    assert {i.split for i in load_items(split="dev")} == {"dev"}
    neutral = load_items("generated", split=None, neutral=True)
    assert len(neutral) == 1920 and sum(i.gender == "neutral" for i in neutral) == 640


def test_generated_is_seeded():
    assert load_items(seed=3) == load_items(seed=3)
    assert load_items(seed=3) != load_items(seed=4)


def test_directory_source(tmp_path):
    d = tmp_path / "wb"
    d.mkdir()
    (d / "pro_stereotyped_type1.txt.dev").write_text(LINES["pro"][0] + "\n")
    (d / "anti_stereotyped_type1.txt.test").write_text(LINES["anti"][0] + "\n")
    assert [i.id for i in load_items(str(d))] == ["wb-test-anti-t1-0001"]
    assert [i.id for i in load_items(str(d), split=None)] == ["wb-dev-pro-t1-0001", "wb-test-anti-t1-0001"]


def test_bad_sources_and_options(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_items(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="split must be"):
        load_items(split="train")
    with pytest.raises(DataError, match="only in the generated benchmark"):
        load_items(str(tmp_path), neutral=True)


# --- WinoBias: offline, download + cache, hub -------------------------------------------------------

def test_cache_dir_env_and_default(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("BIAS_AUDIT_CACHE_DIR")
    assert cache_dir() == Path.home() / ".cache" / "bias-transfer-audit"


def test_offline_fails_with_one_line_naming_data_dir():
    with pytest.raises(DataError) as excinfo:
        load_items("winobias")
    message = str(excinfo.value)
    assert "\n" not in message
    assert "--data DIR" in message and "network is unreachable" in message and "'datasets'" in message


def test_offline_with_hub_failing_too(monkeypatch):
    def hub_offline(config, split):
        raise ConnectionError("Couldn't reach 'uclanlp/wino_bias' on the Hub\n(LocalEntryNotFoundError)")

    monkeypatch.setattr(_datasets, "_hub_rows", hub_offline)
    with pytest.raises(DataError) as excinfo:
        load_items("winobias")
    assert "\n" not in str(excinfo.value) and "--data DIR" in str(excinfo.value)
    assert "Hugging Face hub failed too" in str(excinfo.value)


def test_download_checks_hashes_then_caches(monkeypatch, tmp_path):
    files = official_bytes()
    fetched: list[str] = []

    def fake_fetch(url, timeout=30.0):
        assert url.startswith("https://raw.githubusercontent.com/uclanlp/corefBias/")
        name = url.rsplit("/", 1)[1]
        fetched.append(name)
        return files[name]

    monkeypatch.setattr(_datasets, "_fetch", fake_fetch)
    monkeypatch.setattr(_datasets, "OFFICIAL_SHA256", {n: hashlib.sha256(b).hexdigest() for n, b in files.items()})
    items = load_items("winobias", split=None)
    assert len(items) == 8 and len(fetched) == 8
    assert {i.stance for i in items} == {"pro", "anti"} and {i.split for i in items} == {"dev", "test"}
    cached = tmp_path / "cache" / "winobias"
    assert sorted(p.name for p in cached.iterdir()) == sorted(official_file_names())  # no temp files left

    monkeypatch.setattr(_datasets, "_fetch", lambda url, timeout=30.0: pytest.fail("cache not used"))
    assert load_items("winobias", split=None) == items


def test_download_with_wrong_hash_is_refused(monkeypatch):
    monkeypatch.setattr(_datasets, "_fetch", lambda url, timeout=30.0: b"1 tampered\n")
    with pytest.raises(DataError, match="has SHA-256 .* expected"):
        load_items("winobias")


def test_hub_row_to_line_detokenises_and_brackets():
    row = {
        "tokens": ["The", "janitor", "cleaned", "the", "librarian", "'s", "room", "and", "he", "did", "n't", "ask", "."],
        "word_number": list(range(13)),
        "coreference_clusters": ["3", "4", "8", "8"],
    }
    assert hub_row_to_line(row, 7) == "7 The janitor cleaned [the librarian]'s room and [he] didn't ask."


def test_hub_used_when_download_fails(monkeypatch):
    seen: list[tuple[str, str]] = []

    def fake_rows(config, split):
        seen.append((config, split))
        pronoun = "he" if config.endswith("pro") else "she"
        tokens = ["The", "developer", "argued", "with", "the", "designer", "because", pronoun, "left", "."]
        return [{"tokens": tokens, "word_number": list(range(10)), "coreference_clusters": ["0", "1", "7", "7"]}]

    monkeypatch.setattr(_datasets, "_hub_rows", fake_rows)
    items = load_items("winobias", split="dev")
    assert len(items) == 4 and len(seen) == 8
    assert ("type1_anti", "validation") in seen and ("type2_pro", "test") in seen
    anti = next(i for i in items if i.stance == "anti" and i.type == 1)
    assert anti.sentence == "The developer argued with the designer because she left."
    assert (anti.referent, anti.gender, anti.candidates) == ("developer", "female", ("developer", "designer"))
    assert anti.source == "hub:type1_anti/validation:1"


# --- fingerprint ------------------------------------------------------------------------------------

def test_fingerprint_is_order_free_and_content_sensitive():
    items = generate_items(seed=0)
    fp = data_fingerprint(items)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert data_fingerprint(list(reversed(items))) == fp
    assert data_fingerprint(generate_items(seed=0)) == fp
    assert data_fingerprint(items[:-1]) != fp
    changed = items[:-1] + [type(items[-1]).from_dict({**items[-1].to_dict(), "referent": items[-1].distractor})]
    assert data_fingerprint(changed) != fp
    assert data_fingerprint(generate_items(seed=1)) != fp




@pytest.mark.skipif(winobias_dir() is None, reason="official WinoBias files not found (../shared/winobias or $BIAS_AUDIT_WINOBIAS_DIR)")
def test_pinned_hashes_match_the_published_files(monkeypatch):
    """The download path, fed the published bytes, accepts them all and loads 3,168 items."""
    d = winobias_dir()
    monkeypatch.setattr(_datasets, "_fetch", lambda url, timeout=30.0: (d / url.rsplit("/", 1)[1]).read_bytes())
    items = load_items("winobias", split=None)
    assert len(items) == 3168
    assert len(load_items("winobias")) == 1584
    assert data_fingerprint(items) == data_fingerprint(load_items(str(d), split=None))
