"""Twin pairing by source, on the generated set and the official WinoBias files (skipped when absent)."""

from dataclasses import replace

import numpy as np
import pytest

from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.metrics import a_sb_of
from audit.datasets.winobias.official import load_winobias_dir
from audit.datasets.winobias.pairing import minimal_difference, non_minimal_report, pair_twins
from audit.datasets.winobias.intervals import debiased_interval
from audit.datasets.winobias.selection import a_sb, noise_floor, o_sb, pair_table
from shared_data import winobias_dir


@pytest.fixture(scope="module")
def official():
    path = winobias_dir()
    if path is None:
        pytest.skip("official WinoBias files not found (../shared/winobias or $BIAS_AUDIT_WINOBIAS_DIR)")
    return load_winobias_dir(path)


def test_minimal_difference_accepts_only_gendered_swaps():
    assert minimal_difference("The cook met him and his dog.", "The cook met her and her dog.") == ""
    assert minimal_difference("He is a man.", "She is a woman.") == ""
    assert "generous man" in minimal_difference("because he is a generous man", "because she is generous")
    assert minimal_difference("since he did not", "since she he did not") != ""
    assert minimal_difference("he was careless", "she was rude") != ""


def test_generated_set_pairs_every_item_minimally():
    items = generate_items(neutral=True)
    p = pair_twins(items)
    assert len(p.pairs) * 2 + len(p.neutral) == len(items) and not p.unpaired and not p.non_minimal
    for pair in p.pairs:
        m, f = items[pair.male], items[pair.female]
        assert (m.gender, f.gender) == ("male", "female")
        assert m.candidates == f.candidates and m.referent == f.referent and {m.stance, f.stance} == {"pro", "anti"}


def test_pairing_does_not_depend_on_item_order():
    items = generate_items()
    shuffled = [items[i] for i in np.random.default_rng(0).permutation(len(items))]
    key = lambda its, p: sorted((its[x.male].id, its[x.female].id) for x in p.pairs)  # noqa: E731
    assert key(items, pair_twins(items)) == key(shuffled, pair_twins(shuffled))


def test_mismatched_twin_is_unpaired_with_reason():
    items = generate_items()[:4]
    broken = [items[0], replace(items[1], referent=items[1].distractor), *items[2:]]
    p = pair_twins(broken)  # generated items pair by structure: the broken one has no twin
    assert len(p.pairs) == 1 and len(p.unpaired) == 2 and "no gender twin" in p.unpaired[0][1]
    # WinoBias items pair by source line: the line's twin is found, and rejected for its referent
    wb = [replace(it, id=f"wb-test-{'pro' if it.stance == 'pro' else 'anti'}-t1-{k // 2 + 1:04d}") for k, it in enumerate(broken)]
    p = pair_twins(wb)
    assert len(p.pairs) == 1 and len(p.unpaired) == 2 and "different item" in p.unpaired[0][1]


def test_official_test_split_pairs_every_twin(official):
    test = [i for i in official if i.split == "test"]
    p = pair_twins(test)
    assert len(test) == 1584 and len(p.pairs) == 790  # 1,580 items paired (was 1,516)
    # The only unpaired lines: type 2 lines 382 and 384, whose pro and anti lines are different sentences
    # with the same pronoun gender (no twin exists in the published files).
    assert sorted(test[i].source for i, _ in p.unpaired) == [
        f"{s}_stereotyped_type2.txt.test:{n}" for s in ("anti", "pro") for n in (382, 384)
    ]
    assert all("male/male" in why for _, why in p.unpaired)


def test_official_non_minimal_pairs_reported_by_file_and_line(official):
    test = [i for i in official if i.split == "test"]
    report = non_minimal_report(test)
    assert len(pair_twins(test).non_minimal) == 8
    text = "\n".join(report)
    for line in (157, 255, 279, 289, 296):
        assert f"pro_stereotyped_type1.txt.test:{line}" in text
    assert "'he is a generous man' vs 'she is generous'" in text
    assert "'since he' vs 'since she he'" in text
    assert "by himself every day" in text
    dev = [i for i in official if i.split == "dev"]
    assert len(pair_twins(dev).pairs) == 792 and not pair_twins(dev).unpaired


def test_setting_decides_whether_non_minimal_pairs_count(official):
    test = [i for i in official if i.split == "test"]
    gold = [i.referent for i in test]
    assert pair_table(test, gold, include_non_minimal=True).n_pairs == 790
    assert pair_table(test, gold, include_non_minimal=False).n_pairs == 782


def test_gold_answering_model_has_zero_a_sb_with_zero_width_interval(official):
    test = [i for i in official if i.split == "test"]
    t = pair_table(test, [i.referent for i in test])
    iv = debiased_interval(t)
    assert a_sb(t) == 0 and noise_floor(t) == 0 and set(o_sb(t).values()) == {0.0}
    assert (iv.estimate, iv.lo, iv.hi) == (0.0, 0.0, 0.0)
    paired = sorted({k for p in pair_twins(test).pairs for k in (p.male, p.female)})
    assert a_sb_of([test[i] for i in paired], [test[i].referent for i in paired]) == 0  # the paper's formula


def test_a_condition_run_over_several_seeds_pairs_each_seeds_copy():
    """run_condition lists each item once per seed: every copy is paired with its own twin, and the first
    copy keeps the single-seed pair ids (so conditions with one seed and with three align)."""
    from audit.datasets.winobias.generated import generate_items
    from audit.datasets.winobias.pairing import pair_twins

    items = [i for i in generate_items(0) if i.split == "test"][:40]
    once, thrice = pair_twins(items), pair_twins(items * 3)
    assert len(thrice.pairs) == 3 * len(once.pairs) and not thrice.unpaired
    assert [p.key for p in thrice.pairs[: len(once.pairs)]] == [p.key for p in once.pairs]
    assert all(items[p.male % 40].id != items[p.female % 40].id for p in thrice.pairs)
