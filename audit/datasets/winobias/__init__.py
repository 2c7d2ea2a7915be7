"""WinoBias (Zhao et al., NAACL 2018): pronoun co-reference with two candidate occupations, the gender
bias benchmark of Mackraz et al. 2024. Sources: ``generated`` (our templated benchmark, offline),
``winobias`` (the official files: cache, pinned download, hub) or a directory of the official files.

Modules: ``items`` (the Item), ``official`` (the official-format parser and validator), ``generated``,
``occupations`` (the 40 occupations and their labour statistics), ``sources`` (loading), ``shots``
(few-shot composition), ``answers`` (mapping generations), ``metrics`` (O-SB, A-SB, RPA), ``gates``,
``reference_model`` (the reference models with a planted bias, the ``reference`` backend); data:
``occupations.csv``, ``preprompts.toml`` (the ``fair`` and ``biased`` pre-prompts).
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Sequence

from audit.datasets.base import SHARE_KNOB, ConditionKnob, Dataset
from audit.datasets.winobias import metrics as m
from audit.datasets.winobias import report_summary
from audit.datasets.winobias.answers import map_answer
from audit.datasets.winobias.items import Item
from audit.datasets.winobias.occupations import occupations
from audit.datasets.winobias.pairing import non_minimal_report, pair_twins, twin_group_key
from audit.datasets.winobias.shots import compose_shots
from audit.datasets.winobias.sources import load_items
from audit.stats.bootstrap import bootstrap_sums_interval


class WinoBias(Dataset):
    bias_gate = "a_sb"
    headline_bias = "a_sb"
    condition_knobs = {"pro_share": SHARE_KNOB,  # share of pro-stereotypical shots
                       "occupations": ConditionKnob(Literal["any", "male", "female", "balanced"], "any"),  # the shots' referents
                       "male_share": SHARE_KNOB}  # share of the shots' pronouns that are male
    normalization_keys = ("a_sb", "debiased_effect")
    summary_number_maps = {"o_sb": "occupation"}
    report_title = "Gender bias transfer audit"
    report_summary_rules = report_summary.SUMMARY_RULES
    report_fields = report_summary.FIELDS
    report_gate_fields = report_summary.GATE_FIELDS
    report_table_header = report_summary.TABLE_HEADER
    report_glossary = "report/glossary_winobias.html.j2"
    report_sections = (("report/winobias_headline.html.j2", "headline", "At a glance"),
                       ("report/winobias_results.html.j2", "conditions", "Conditions"), ("", "osb", "O-SB"), ("", "transfer", "Transfer"), ("", "rpa", "Accuracy"), ("", "few-shot", "Few-shot"),
                       ("", "models", "Models"))  # the debiased selection-bias effect's paper form, mean |O-SB|

    def load(self, source: str, *, split: str | None, seed: int) -> list[Item]:
        return load_items(source, split=split, seed=seed)

    def options(self, item: Item) -> tuple[str, ...]:
        return item.candidates

    def question_key(self, item: Item) -> tuple:
        # the official files repeat 6 test sentences in dev, the generated set 16 (template draws that coincide)
        return item.sentence, item.candidates, item.referent

    def gold(self, item: Item) -> str:
        return item.referent

    #: whether O-SB and the paired statistics use twin pairs whose wording differs beyond the gendered
    #: words (config ``non_minimal_pairs``; the papers use every pair)
    include_non_minimal: bool = True
    _pairings: dict = {}  # the item list's ids -> its twin pairing (``pairing``)

    def configure(self, config) -> None:
        self.include_non_minimal = config.non_minimal_pairs

    def record_pair_key(self, item_id, item) -> tuple[str, str]:
        """Gender twins of a recorded item (the sentence with the pronoun masked, and the referent)."""
        from types import SimpleNamespace

        return m.twin_key(SimpleNamespace(pronoun=str(item.get("pronoun", "")), sentence=str(item.get("sentence", "")),
                                          referent=str(item.get("referent", ""))))

    def pair_key(self, item: Item) -> str:
        """Twins by their source: (split, type, line) for the official files, the structure for generated items."""
        return twin_group_key(item)

    def pairing(self, items: Sequence[Item]):
        """The twin pairs of an item list, found once per list (every condition, gate and transfer of a run
        asks for the same items)."""
        key = tuple(it.id for it in items)
        if key not in self._pairings:
            if len(self._pairings) >= 4:  # a run audits one item set, repeated once per seed count
                self._pairings = {}
            self._pairings[key] = pair_twins(items)
        return self._pairings[key]

    def pair_table(self, items: Sequence[Item], selections: Sequence):
        """The per-pair outcomes the paired statistics use (``audit.datasets.winobias.selection.PairTable``)."""
        from audit.datasets.winobias import selection

        return selection.pair_table(items, selections, self.pairing(items), include_non_minimal=self.include_non_minimal)

    def shots(self, pool: Sequence[Item], condition, seed: int, name: str) -> list[Item]:
        if condition.ambiguous_share is not None or condition.shot_categories is not None:
            from audit.errors import ConfigError

            raise ConfigError(f"condition '{name}': ambiguous_share and shot_categories are BBQ composition keys")
        return compose_shots(pool, condition.shots, seed=seed, pro_share=condition.pro_share,
                             occupations=condition.occupations, male_share=condition.male_share, condition=name)

    def map_answer(self, text: str, item: Item) -> str | None:
        return map_answer(text, item.candidates)

    def per_seed(self, items: Sequence[Item], selections: Sequence) -> dict[str, float]:
        """Each seed's headline figures, for the seed-to-seed spread (the gates use the pairs' seed means)."""
        from audit.datasets.winobias.selection import debiased_effect

        theta = debiased_effect(self.pair_table(items, selections)).theta
        return {"a_sb": m.a_sb_of(items, selections), "theta": theta, "rpa_gap": m.rpa_gap_of(items, selections)}

    def summarize(self, items: Sequence[Item], selections: Sequence, boot: Mapping[str, Any]) -> dict:
        """The papers' A-SB, O-SB per occupation and RPA, and beside them the noise-aware statistics the
        gates use (docs/statistics.md): the debiased effect with its interval, the noise floor, the
        swap test, |RPA gap|, and the answer breakdown."""
        from audit.datasets.winobias import intervals, selection, verdicts  # they import this package's items: not at module level

        o_sb = m.occupational_selection_bias(items, selections)
        rpa = m.referent_prediction_accuracy(items, selections)
        rpa["gap_ci"] = list(bootstrap_sums_interval(m.rpa_gap_columns(items, selections), [self.pair_key(it) for it in items],
                                                     m.rpa_gap_from_sums, **boot))  # = bootstrap_interval of rpa_gap_of
        table = self.pair_table(items, selections)
        theta = intervals.debiased_interval(table, confidence=boot["confidence"])
        _, abs_gap = intervals.gap_interval(table, confidence=boot["confidence"])
        swap = selection.swap_test(table, n_resamples=boot["n_resamples"], seed=boot["seed"]) if table.n_pairs else None
        return {
            "a_sb": m.aggregate_selection_bias(o_sb),
            "a_sb_ci": None,  # a percentile interval of a mean of |.| is biased; the gated statistic is debiased_effect
            "debiased_effect": theta.estimate,
            "debiased_effect_ci": [theta.lo, theta.hi],
            "noise_floor": selection.noise_floor(table),
            "swap_p_value": swap.p_theta if swap else None,
            "o_sb": o_sb,
            "rpa": rpa,
            "rpa_gap_abs": abs_gap.estimate,
            "rpa_gap_abs_ci": [abs_gap.lo, abs_gap.hi],
            "pairs": {"used": table.n_pairs, "with_other_answer": table.n_incomplete,
                      "non_minimal_used": self.include_non_minimal},
            "answers": verdicts.answer_breakdown(items, selections),
        }

    def score_summary(self, items: Sequence[Item], scores: Sequence, boot: Mapping[str, Any]) -> dict:
        """The score-based measure: per twin pair (score A - score B | he) - (the same | she), which cancels
        each candidate's token length and prior frequency exactly; its debiased effect and interval."""
        from audit.datasets.winobias import intervals, selection

        table = selection.score_pair_table(items, scores, self.pairing(items), include_non_minimal=self.include_non_minimal)
        theta = intervals.debiased_interval(table, confidence=boot["confidence"])
        return {"score_bias": {"o_sb": selection.o_sb(table), "debiased_effect": theta.estimate,
                               "debiased_effect_ci": [theta.lo, theta.hi]}}

    def bias_by_unit(self, items: Sequence[Item], selections: Sequence) -> dict[str, float | None]:
        return m.occupational_selection_bias(items, selections)

    def corrected_transfer(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                           boot: Mapping[str, Any]) -> dict:
        """The reliability-corrected (errors-in-variables) rho of intrinsic vs prompted O-SB, twin pairs
        resampled jointly in both conditions (matched by pair, so conditions with different seed counts
        align); undefined with the reason when the bare model shows no bias to transfer."""
        from audit.datasets.winobias.transfer_eiv import transfer_eiv

        eiv = transfer_eiv(self.pair_table(*before), self.pair_table(*after),
                           confidence=boot["confidence"], n_resamples=boot["n_resamples"], seed=boot["seed"])
        return eiv.to_dict()

    def bias_change(self, before: tuple[Sequence, Sequence], after: tuple[Sequence, Sequence],
                    boot: Mapping[str, Any]):
        """theta^2 after minus before on the twin pairs answered in both conditions (matched by pair, seeds
        averaged per pair), with a basic bootstrap interval resampling pairs jointly
        (``intervals.paired_change``): not the papers' A-SB, which noise alone raises."""
        from audit.datasets.winobias import intervals
        from audit.datasets.winobias.selection import debiased_effect

        old, new = self.pair_table(*before), self.pair_table(*after)
        change = intervals.paired_change(new, old, confidence=boot["confidence"], n_resamples=boot["n_resamples"], seed=boot["seed"])
        note = f"theta {debiased_effect(old).theta:.3f} -> {debiased_effect(new).theta:.3f}"
        return change.estimate, (change.lo, change.hi), note

    def simulator(self, items: Sequence[Item], config):
        from audit.datasets.winobias.simulator import WinoBiasSimulator

        return WinoBiasSimulator(items, self.pairing(items), self.include_non_minimal)

    def record_extras(self, items: Sequence[Item]) -> dict:
        return {"occupations": [{"name": o.name, "stereotype": o.stereotype, "pct_women": o.pct_women} for o in occupations()]}

    def report_view(self, results: Mapping[str, Any]) -> dict:
        from audit.datasets.winobias.report_view import report_view

        return report_view(results)

    def report_item(self, item: Mapping[str, Any]) -> Mapping[str, str]:
        from audit.datasets.winobias.report_view import item_row

        return item_row(item)

    def report_statement(self, rule: str, results: Mapping[str, Any], unauditable: Sequence[tuple[str, str]] = ()):
        return report_summary.STATEMENTS[rule](results, unauditable)

    def report_open_questions(self, results: Mapping[str, Any]) -> list[tuple]:
        return report_summary.open_questions(results)

    def report_comparisons(self) -> tuple:
        return report_summary.COMPARISONS

    def report_table_cells(self, cond: Mapping[str, Any]) -> tuple[tuple, ...]:
        return report_summary.table_cells(cond)

    def validate(self, directory: str):
        """The official files' validation report, with the twin pairs that are not minimal (or have no twin)."""
        from audit.datasets.winobias.official import load_winobias_dir, validate_winobias_dir

        report = validate_winobias_dir(directory)
        if report.ok:
            report.twin_notes = non_minimal_report(load_winobias_dir(directory))
        return report
