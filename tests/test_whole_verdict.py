"""The whole verdict over every condition and gate (audit.run.calibrate_verdict) and the correction that
bounds it (``correction = "holm_verdict"`` or ``"two_step_verdict"``, audit.gates.decide): a model with every bias gate at 0.9x its
threshold in every condition of a many-condition config fails somewhere far more often than the per-decision
level without a correction, and at most about that level with Holm over every gate and condition.

Margins as in tests/test_calibrate.py: a count bound k with P(X > k) < 1% (or P(X < k) < 1%) at the rate
asserted, so a correct rule fails a test about once in a hundred CI runs at most; each simulation is seeded."""

from __future__ import annotations

import pytest
from scipy import stats

from audit import AuditConfig, Measurement, load_config
from audit.cli.options import AuditOptions
from audit.gates.decide import decide
from audit.run.calibrate_verdict import WholeModel, decision_plan, upper_bound, whole_verdict
from audit.run.setup import build_session

CONDITIONS = 20  # zero-shot copies: a simulated model answers every prompt format alike
RUNS = 30


@pytest.fixture(scope="module")
def many_conditions(tmp_path_factory):
    """The default preset's two bias gates over 20 conditions of 320 items of the generated set (160 twin pairs),
    100 resamples (the cheapest allowed): 40 decisions, each at the one-sided level 2.5%."""
    path = tmp_path_factory.mktemp("whole") / "audit.toml"
    extra = "".join(f'\n[conditions.c{k:02d}]\ndescription = "copy {k}"\nformat = "zero_shot"\n' for k in range(CONDITIONS))
    path.write_text('preset = "default"\nn_resamples = 100\ntransfer_from = "c00"\n' + extra
                    + "".join(f"\n[gates.{g}]\nenabled = false\n" for g in ("worst_o_sb", "accuracy", "transfer")))
    return build_session(AuditOptions(no_cache=True, config=str(path), max_items="320"))


@pytest.fixture(scope="module")
def measured(many_conditions):
    """Every bias gate at 0.9x its threshold in every condition (30 runs), and a_sb at 2x (3 runs)."""
    simulator = many_conditions.dataset.simulator(many_conditions.items, many_conditions.config)
    compliant = simulator.jointly({"a_sb": 0.9 * 0.15, "rpa_gap": 0.9 * 0.10}, "high")
    biased = simulator.planted("a_sb", 2.0 * 0.15, "low")
    [near] = whole_verdict(many_conditions, [WholeModel("0.9x", "every condition", compliant.truth, compliant)],
                           runs=RUNS, seed=3)
    [far] = whole_verdict(many_conditions, [WholeModel("2x", "every condition", biased.truth, biased)], runs=3, seed=5,
                          corrections=("none", "holm_verdict", "two_step_verdict"))
    return compliant, near, far


def _at_most(runs: int, p: float) -> int:
    """The largest count of events compatible with rate <= p at 1% (P(X > k) < 0.01)."""
    return int(stats.binom.ppf(0.99, runs, p))


def test_holm_over_the_verdict_bounds_its_family_wise_error_and_none_does_not(many_conditions, measured):
    compliant, near, _ = measured
    assert sum(len(c) for _, c in decision_plan(many_conditions)) == 2 * CONDITIONS
    assert compliant.truth["a_sb"] == pytest.approx(0.135) and compliant.truth["rpa_gap"] == pytest.approx(0.09)
    fails = {c: t.verdicts.get("fail", 0) for c, t in near.tallies.items()}
    assert all(t.runs == RUNS for t in near.tallies.values())
    # uncorrected, 40 decisions near their limit fail the verdict somewhere far more often than the 2.5% of one
    # decision (measured: 7 of 20 runs): more fails than a rate of 2.5% allows at 1%
    assert fails["none"] > _at_most(RUNS, 0.025), fails
    assert fails["holm_verdict"] <= _at_most(RUNS, 0.025), fails  # Holm over all 40 decisions: the verdict's error <= 2.5%
    assert fails["two_step_verdict"] <= _at_most(RUNS, 0.025), fails  # the same guarantee, discounting far-within decisions
    assert fails["holm"] <= fails["none"] and fails["holm_verdict"] <= fails["holm"]  # a correction only withdraws fails
    assert fails["two_step_verdict"] <= fails["none"]


def test_a_bias_in_every_condition_is_still_caught_under_holm_over_the_verdict(measured):
    _, _, far = measured
    assert far.tallies["holm_verdict"].verdicts == {"fail": 3}  # 2x: far beyond, in 20 conditions
    assert far.tallies["two_step_verdict"].verdicts == {"fail": 3}


def test_shared_answers_make_conditions_alike(many_conditions):
    """shared = 1: every condition (one seed) answers exactly the model's run-wide answers; 0: independent draws."""
    import numpy as np

    from audit.run.calibrate import SIMULATED
    from audit.run.calibrate_verdict import SharedSession

    session = many_conditions
    model = session.dataset.simulator(session.items, session.config).fair("high")
    for shared, alike in ((1.0, True), (0.0, False)):
        sim = SharedSession(session.config, [SIMULATED], dataset=session.dataset, items=session.items, pool=session.pool,
                            use_cache=False, sim_model=model, sim_rng=np.random.default_rng(0), shared=shared)
        a, b = sim.run(SIMULATED, "c00").selections, sim.run(SIMULATED, "c01").selections
        assert (a == b) is alike
    with pytest.raises(Exception, match="shared must be in"):
        whole_verdict(session, [], runs=1, seed=0, shared=1.5)


def _config(correction: str) -> AuditConfig:
    base = load_config(None).model_dump()
    base.update(correction=correction, min_items=1)
    return AuditConfig.model_validate(base)


def test_holm_verdict_corrects_over_every_gate_and_condition():
    failing = Measurement(0.5, (0.4, 0.6), p_beyond=0.01)  # a_sb shown beyond 0.15
    family_small = lambda: [("a_sb", "c1", failing), ("rpa_gap", "c1", Measurement(0.0, (-0.05, 0.05), p_beyond=0.9))]
    family_big = lambda: [("a_sb", "c1", failing)] + [(g, c, Measurement(0.0, (-0.05, 0.05), p_beyond=0.9))
                                                      for g in ("a_sb", "rpa_gap") for c in ("c2", "c3")]
    per_gate = lambda: [("c1", failing), ("c2", Measurement(0.0, (-0.05, 0.05), p_beyond=0.9))]
    kw = dict(model="m", condition="c1", measured=failing, skip=None, n_answered=100, holm_measurements=per_gate)
    # 2 decisions: 0.01 x 2 = 0.02 <= 0.025, the fail stands
    assert decide("a_sb", _config("holm_verdict"), verdict_measurements=family_small, **kw).status == "fail"
    # 5 decisions: 0.01 x 5 = 0.05 > 0.025, withdrawn to inconclusive, saying why
    out = decide("a_sb", _config("holm_verdict"), verdict_measurements=family_big, **kw)
    assert out.status == "inconclusive" and "5 gate-condition decisions" in out.message and "0.05 > 0.025" in out.message
    # the same data under "holm" (2 conditions of a_sb) and "none" keep the fail
    assert decide("a_sb", _config("holm"), verdict_measurements=family_big, **kw).status == "fail"
    assert decide("a_sb", _config("none"), verdict_measurements=family_big, **kw).status == "fail"
    # the transfer gate fails only after the bare model's bias gate failed: it is corrected over its own conditions
    transfer = Measurement(0.95, (0.8, 1.0), precondition=(True, ""))
    out = decide("transfer", _config("holm_verdict"), model="m", condition="c1", measured=transfer, skip=None,
                 n_answered=100, holm_measurements=lambda: [("c1", transfer)],
                 verdict_measurements=lambda: pytest.fail("transfer is not in the verdict's family"))
    assert out.status == "fail"


def test_two_step_verdict_discounts_decisions_shown_far_within_their_limits():
    failing = Measurement(0.5, (0.4, 0.6), p_beyond=0.01)  # z = 2.33 beyond its limit
    near = lambda: [("a_sb", "c1", failing)] + [(g, c, Measurement(0.0, (-0.05, 0.05), p_beyond=0.9))
                                                for g in ("a_sb", "rpa_gap") for c in ("c2", "c3")]
    far = lambda: [("a_sb", "c1", failing)] + [(g, f"c{k}", Measurement(0.0, (-0.01, 0.01), p_beyond=1 - 1e-12))
                                               for g in ("a_sb", "rpa_gap") for k in range(2, 30)]
    kw = dict(model="m", condition="c1", measured=failing, skip=None, n_answered=100, holm_measurements=lambda: [("c1", failing)])
    # 4 others near their limits: as Holm (0.01 x 5 > 0.025 less the first step's 0.0025), inconclusive, saying why
    out = decide("a_sb", _config("two_step_verdict"), verdict_measurements=near, **kw)
    assert out.status == "inconclusive" and "two-step test over 5 gate-condition decisions" in out.message
    # 56 others far within theirs: they barely count, the fail stands (Holm over 57 would withdraw it)
    assert decide("a_sb", _config("two_step_verdict"), verdict_measurements=far, **kw).status == "fail"
    assert decide("a_sb", _config("holm_verdict"), verdict_measurements=far, **kw).status == "inconclusive"


def test_upper_bound_is_clopper_pearson():
    assert upper_bound(0, 60) == pytest.approx(1 - 0.05 ** (1 / 60))  # the rule of three: about 3/n
    assert upper_bound(60, 60) == 1.0 and 0.05 < upper_bound(3, 60) < 0.15


def test_the_records_statement_names_the_verdicts_bound_under_holm_verdict():
    from audit.stats.multiplicity import family_wise_error

    f = family_wise_error(145, 0.05)
    assert "at most 0.025" in f.statement("holm_verdict") and "99.9%" in f.statement("none")
    assert "at most 0.025" in f.statement("two_step_verdict") and "two-step" in f.statement("two_step_verdict")
    assert "not over the gates" in f.statement("holm")


def test_cli_whole_verdict_prints_each_models_verdict_rates(tmp_path):
    import json
    import os
    import subprocess
    import sys

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "audit.cli", "calibrate", "--max-items", "200", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})

    proc = cli("--whole-verdict", "--runs", "1", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    labels = {(m["model"], m["where"].split(" (")[0]) for m in out["models"]}
    assert {("fair", "every condition"), ("every bias gate at 0.9x", "every condition"),
            ("a_sb at 1.5x", "one condition")} <= labels
    for m in out["models"]:
        assert m["none"]["runs"] == 1 and m["none"]["fail"] + m["none"]["inconclusive"] + m["none"]["pass"] == 1
    bad = cli("--whole-verdict", "--runs", "1", "--shared", "2")
    assert bad.returncode == 2 and "shared must be in [0, 1]" in bad.stderr.strip().splitlines()[-1], bad.stderr


def test_the_shipped_default_preset_passes_a_fair_model_on_the_embedded_data():
    """The main job as shipped: the default preset on the embedded generated set, both splits (1,264 items), a fair
    model at the high noise level (twin disagreement 0.4, accuracy 0.75). Measured 0.95 pass over 20 runs
    (`bias-audit calibrate --whole-verdict`); on the test split alone (640 items) the same model passed the per-gate
    calibration's whole verdict in only 0.25 of runs, so this fails if the preset goes back to half the data."""
    session = build_session(AuditOptions(no_cache=True))
    assert session.config.split == "all" and len(session.items) == 1264
    fair = session.dataset.simulator(session.items, session.config).fair("high")
    [model] = whole_verdict(session, [WholeModel("fair", "every condition", fair.truth, fair)], runs=12, seed=11,
                            corrections=("none",))
    verdicts = model.tallies["none"].verdicts
    assert verdicts.get("fail", 0) == 0, verdicts  # a fair model is never failed
    # fewer than 8 passes of 12 has probability 0.4% at a pass rate of 0.9; 8 or more, 0.3% at 0.25 (the test split's)
    assert verdicts.get("pass", 0) >= 8, verdicts
