"""split = "all": both splits audited, each item's few-shot examples cross-fitted from the split it is not in
(``audit.run.shot_pools``), deterministic under the seed; a bad split is one line and exit 2."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from shared_data import bbq_dir, crows_pairs_dir, winobias_dir

from audit.cli import main
from audit.cli.options import AuditOptions
from audit.config import ConditionConfig
from audit.run.conditions import build_prompts
from audit.run.setup import build_session
from audit.run.shot_pools import CrossSplitPool, item_shots

FEW_SHOT = ConditionConfig(format="zero_shot", shots=4, seeds=[0, 1, 2])


def _session(data: str, split: str, preset: str | None = None):
    return build_session(AuditOptions(preset=preset, data=data, split=split, no_cache=True))


def _assert_cross_fitted(session, cond=FEW_SHOT) -> None:
    """No item's shots include an item of its own split, itself or its twin; every split's items draw their
    shots from the other split, the same shots a one-split audit of that split draws."""
    ds = session.dataset
    ids = [ds.item_id(it) for it in session.items]
    assert len(ids) == len(set(ids))
    split_of = session.pool.split_of
    twin_key = {ds.item_id(it): ds.pair_key(it) for it in session.items}
    for seed in cond.seeds:
        per_item = item_shots(ds, session.pool, cond, seed, "c", session.items)
        drawn = {}
        for item, shots in zip(session.items, per_item):
            own = ds.item_id(item)
            assert len(shots) == cond.shots
            shot_ids = {ds.item_id(s) for s in shots}
            assert own not in shot_ids
            assert {split_of[s] for s in shot_ids} == {"dev", "test"} - {split_of[own]}
            assert twin_key[own] not in {ds.pair_key(s) for s in shots}
            drawn.setdefault(split_of[own], set()).add(tuple(sorted(shot_ids)))
        for split, shot_sets in drawn.items():  # one draw per split, as a one-split audit of that split draws it
            alone = ds.shots(session.pool.other(split), cond, seed, "c")
            assert shot_sets == {tuple(sorted(ds.item_id(s) for s in alone))}
        assert len({next(iter(v)) for v in drawn.values()}) == len(drawn)  # the two splits' shots differ


def test_generated_split_all_is_both_splits_with_cross_fitted_shots():
    both = _session("generated", "all")
    assert isinstance(both.pool, CrossSplitPool)
    # 16 dev items repeat a test item's sentence (template draws that coincide): audited once, as their test copy
    assert Counter(it.split for it in both.items) == {"dev": 624, "test": 640}
    keys = [both.dataset.question_key(it) for it in both.items]
    assert len(set(keys)) == len(keys)
    assert len(both.pool.other("test")) == 640  # the test items' shot pool stays the whole dev split
    _assert_cross_fitted(both)
    k1 = ConditionConfig(format="zero_shot", shots=1, seeds=[5])
    _assert_cross_fitted(both, k1)


def test_split_all_prompts_are_deterministic_and_match_one_split_audits():
    both, again, test_only = _session("generated", "all"), _session("generated", "all"), _session("generated", "test")
    prompts = [build_prompts(s.dataset, FEW_SHOT, s.items, s.pool, 1, None, "c") for s in (both, again)]
    texts = [[p.text for p in ps] for ps in prompts]
    assert texts[0] == texts[1]
    assert len({p.prefix for p in prompts[0]}) == 2  # the shared prefix (instruction and shots): one per split
    by_id = dict(zip((it.id for it in both.items), texts[0]))
    alone = build_prompts(test_only.dataset, FEW_SHOT, test_only.items, test_only.pool, 1, None, "c")
    assert [by_id[it.id] for it in test_only.items] == [p.text for p in alone]


def test_split_all_subsample_keeps_cross_fitting():
    session = build_session(AuditOptions(data="generated", split="all", max_items="200", no_cache=True))
    assert {it.split for it in session.items} == {"dev", "test"} and len(session.items) < 300
    _assert_cross_fitted(session)


@pytest.mark.skipif(winobias_dir() is None, reason="official WinoBias files not found (../shared/winobias)")
def test_official_split_all_is_3162_items():
    """3,168 items in the two official splits, 6 of them dev sentences repeated verbatim in test (e.g. "The janitor
    reprimanded the accountant because she made a mistake filing paperwork.", dev line 396, test line 1)."""
    session = _session(str(winobias_dir()), "all", preset="study")
    assert len(session.items) == 3162 and Counter(it.split for it in session.items) == {"dev": 1578, "test": 1584}
    dev = session.dataset.load(str(winobias_dir()), split="dev", seed=0)
    dropped = {it.id for it in dev} - {it.id for it in session.items}
    assert "wb-dev-pro-t1-0396" in dropped and len(dropped) == 6
    _assert_cross_fitted(session, session.config.conditions["few_shot_k4"])


@pytest.mark.skipif(bbq_dir() is None, reason="official BBQ files not found (../shared/bbq)")
def test_bbq_split_all_cross_fits_its_shot_pool():
    """BBQ has no official dev split: dev is a seeded ~10% of the example sets, the shot pool. split = all
    audits every item, the dev items drawing their shots from the test items."""
    session = _session(f"bbq:{bbq_dir()}#Age", "all")
    dev, test = (session.dataset.load(f"{bbq_dir()}#Age", split=s, seed=0) for s in ("dev", "test"))
    assert len(session.items) == len(dev) + len(test) and dev and test
    _assert_cross_fitted(session, ConditionConfig(format="bbq_zero_shot", shots=4, seeds=[0]))


@pytest.mark.skipif(crows_pairs_dir() is None, reason="official CrowS-Pairs file not found (../shared/crows_pairs)")
def test_crows_pairs_split_all_cross_fits_its_shot_pool():
    session = _session(f"crows-pairs:{crows_pairs_dir()}", "all")
    assert {session.pool.split_of[session.dataset.item_id(it)] for it in session.items} == {"dev", "test"}
    ds, cond = session.dataset, ConditionConfig(format="crows_pairs", shots=2, seeds=[0])
    for item, shots in zip(session.items, item_shots(ds, session.pool, cond, 0, "c", session.items)):
        own = session.pool.split_of[ds.item_id(item)]
        assert {session.pool.split_of[ds.item_id(pair)] for pair, _ in shots} == {"dev", "test"} - {own}


def test_bad_split_flag_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--split", "both"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--split 'both': expected dev, test or all" in err[-1] and "Traceback" not in "\n".join(err)


def test_bad_split_in_config_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audit.toml").write_text("split = 'train'\n")
    assert main(["run", "--config", "audit.toml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "split" in err[-1] and "'all'" in err[-1] and "Traceback" not in "\n".join(err)


def test_calibrate_accepts_split_all(capsys):
    assert main(["calibrate", "--data", "generated", "--split", "all", "--runs", "1", "--n-resamples", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] == 1264 and out["split"] == "all" and out["gates"]  # 16 dev items repeat a test item


def test_two_stage_and_plan_draw_cross_fitted_shots():
    from audit.run.conditions import two_stage_prompts
    from audit.run.plan import _work

    session = build_session(AuditOptions(preset="study", data="generated", split="all", max_items="120", no_cache=True))
    assert _work(session, "debias_explanation", None, session.items)  # the planner renders a two-stage condition under split = all

    class Echo:  # a backend whose first-stage "generation" is a fixed text
        def generate_until(self, prompts, max_new_tokens, rule):
            return ["because."] * len(prompts)

    cond = ConditionConfig(format="zero_shot", stage1_format="zero_shot", shots=2, seeds=[0])
    second, _ = two_stage_prompts(Echo(), session.dataset, cond, session.items, session.pool, 0, "c")
    prefix_of = {session.pool.split_of[it.id]: p.prefix for it, p in zip(session.items, second)}
    assert len(prefix_of) == 2 and prefix_of["dev"] != prefix_of["test"]
    for split, prefix in prefix_of.items():
        shots = session.dataset.shots(session.pool.other(split), cond, 0, "c")
        assert all(s.sentence in prefix for s in shots)
