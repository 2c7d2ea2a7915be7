"""The few-shot composer meets the requested composition exactly, from the other split."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import ConfigError
from audit.datasets.winobias.generated import generate_items
from audit.datasets.winobias.occupations import lookup_occupation
from audit.datasets.winobias.shots import cell_counts, compose_shots

POOL = [i for i in generate_items() if i.split == "dev"]


@settings(max_examples=80, deadline=None)
@given(
    k=st.sampled_from([2, 4, 8, 16]),
    pro=st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
    occ=st.sampled_from(["any", "male", "female", "balanced"]),
    male=st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0])),
    seed=st.integers(0, 5),
)
def test_composition_is_exact(k, pro, occ, male, seed):
    try:
        shots = compose_shots(POOL, k, seed=seed, pro_share=pro, occupations=occ, male_share=male)
    except ConfigError:
        return  # impossible combinations (e.g. pro_share 1 with all-male referents and female pronouns) are refused
    assert len(shots) == k and len({s.id for s in shots}) == k
    assert all(s.split == "dev" for s in shots)
    if pro is not None:
        assert sum(s.stance == "pro" for s in shots) == round(pro * k)
    if male is not None:
        assert sum(s.gender == "male" for s in shots) == round(male * k)
    male_refs = sum(lookup_occupation(s.referent).stereotype == "male" for s in shots)
    assert male_refs == {"male": k, "female": 0, "balanced": k // 2}.get(occ, male_refs)


def test_same_seed_same_shots_and_other_seed_differs():
    a = compose_shots(POOL, 8, seed=1, pro_share=0.5)
    assert a == compose_shots(POOL, 8, seed=1, pro_share=0.5)
    assert a != compose_shots(POOL, 8, seed=2, pro_share=0.5)


def test_impossible_requests_are_clear_errors():
    with pytest.raises(ConfigError, match="cannot be met exactly"):
        cell_counts(4, pro_share=0.3, occupations="any", male_share=None, condition="c")
    with pytest.raises(ConfigError, match="no set of 4 shots"):
        cell_counts(4, pro_share=1.0, occupations="male", male_share=0.0, condition="c")
    with pytest.raises(ConfigError, match="only 3 items"):
        compose_shots(POOL[:3], 4, seed=0, condition="c")
