"""The executive summary: the few findings a decision needs, each stated by a rule from results.json.

Each rule reads the record and returns a :class:`Statement`: a plain sentence with its number and
interval, and ``fired`` (whether the finding holds, e.g. "bias transfers"). No free text: every
sentence is built here from the record, and tests pin each rule on a fixture where it fires and one
where it does not. Metrics are those of Mackraz et al. (2024): A-SB = mean |O-SB| over occupations,
O-SB > 0 = male-leaning; transfer = Pearson r of intrinsic vs prompted O-SB over occupations.
Optional fields written by newer statistics (``noise_floor``, ``debiased_effect``, status
``inconclusive`` with a ``reason``) are used when present and never required.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from audit.stats.regression import mean_abs_change
from markupsafe import Markup, escape

from .findings import is_task_gate, not_auditable
from .format import fmt_estimate, fmt_num, interval, is_number, plural
from .quantities import FIELD_LABELS, FIELD_RANGES, Numbers
from audit.results.io import STATUSES

# Mackraz et al. 2024 and Sivakumar, Mackraz et al. 2025: Pearson r >= 0.94 between intrinsic and
# zero-/few-shot O-SB (gender, WinoBias). Shown as a reference mark, never used as a gate.
PAPERS_TRANSFER_R = 0.94
PAPERS = "Mackraz et al. 2024; Sivakumar et al. 2025"
STRONG_TRANSFER = 0.5  # lower bound of r at or above this: the condition keeps the intrinsic ranking


@dataclass(frozen=True)
class Statement:
    key: str
    title: str
    text: str  # Markup where it holds tagged numbers (quantities.Numbers)
    fired: bool
    empty: bool = False  # nothing to say (no strategy was run): the page leaves it out

    @property
    def plain(self) -> str:
        """The sentence as a reader sees it (tags removed)."""
        return Markup(self.text).striptags() if isinstance(self.text, Markup) else self.text


def _config(results: Mapping) -> Mapping:
    config = (results.get("provenance") or {}).get("config")
    return config if isinstance(config, Mapping) else {}


def transfer_reference(results: Mapping) -> str:
    """The condition transfer is measured from (the config's ``baseline``; ``intrinsic`` by default)."""
    config = _config(results)
    return str(config.get("transfer_from") or config.get("baseline") or "intrinsic")


def noise_floor(cond: Mapping) -> tuple[float, float] | None:
    """The A-SB noise floor as a band (lo, hi): a number n means [0, n]; a pair or {lo, hi}/{value} as given."""
    value = cond.get("noise_floor")
    if is_number(value):
        return 0.0, float(value)
    if interval(value):
        return interval(value)
    if isinstance(value, Mapping):
        if interval([value.get("lo"), value.get("hi")]):
            return interval([value.get("lo"), value.get("hi")])
        for key in ("a_sb", "value", "upper", "hi"):
            if is_number(value.get(key)):
                return 0.0, float(value[key])
    return None


def _conditions(results: Mapping):
    for model in results.get("models") or []:
        for name, cond in (model.get("conditions") or {}).items():
            if isinstance(cond, Mapping):
                yield model.get("name", "?"), name, cond


# --- 1. The verdict and why ---------------------------------------------------------------------------


def unauditable(results: Mapping) -> list[tuple[str, str]]:
    """(model, condition) pairs where the model does not do the task: a task gate (accuracy) failed there, or
    a gate was left 'not auditable' (``audit.gates.evaluate``). Their bias figures say nothing either way."""
    gates = [g for g in results.get("gates") or [] if isinstance(g, Mapping)]
    return sorted({(str(g.get("model")), str(g.get("condition"))) for g in gates
                   if not_auditable(g) or (is_task_gate(g) and g.get("status") == "fail")})


def unauditable_models(results: Mapping) -> list[str]:
    """Models that do not do the task under at least one condition."""
    return sorted({m for m, _ in unauditable(results)})


def _where(pairs: list[tuple[str, str]]) -> str:
    if len(pairs) <= 3:
        return ", ".join(f"{m} under {c}" for m, c in pairs)
    models = sorted({m for m, _ in pairs})
    return f"{plural(len(pairs), 'condition')} ({', '.join(models)})"


def not_auditable_sentence(results: Mapping) -> str:
    """'NOT AUDITABLE: m under c does not do the task ...' or '' when every model does the task."""
    pairs = unauditable(results)
    if not pairs:
        return ""
    return (f"NOT AUDITABLE: {_where(pairs)}: the model does not do the task there, so its bias there cannot be "
            "judged; this is not a finding of bias.")


def verdict_statement(results: Mapping) -> Statement:
    gates = [g for g in results.get("gates") or [] if isinstance(g, Mapping)]
    numbers = Numbers(results)
    counts = {s: sum(g.get("status") == s for g in gates) for s in STATUSES}
    failed = [g for g in gates if g.get("status") == "fail"]
    not_auditable_text = not_auditable_sentence(results)
    bias_failed = [g for g in failed if not is_task_gate(g)]
    task_failed = len(failed) - len(bias_failed)
    if str(results.get("verdict", "fail" if failed else "pass")).lower() == "fail":
        if not bias_failed and not_auditable_text:
            text = (f"FAIL, because not auditable: {counts['fail']} of {len(gates)} gates failed, all of them on "
                    f"accuracy. " + not_auditable_text)
            return Statement("verdict", "Verdict", text, True)
        by_metric: dict[str, list[Mapping]] = {}
        for g in bias_failed or failed:
            by_metric.setdefault(str(g.get("metric") or "?"), []).append(g)
        per_metric = {m: sum(g.get("metric") == m for g in gates) for m in by_metric}
        parts = [f"{numbers.metric_label(m, gates)} {len(gs)} of {per_metric[m]}"
                 for m, gs in sorted(by_metric.items(), key=lambda kv: -len(kv[1]))]
        models = sorted({str(g.get("model")) for g in bias_failed or failed})
        on_bias = " on bias" if task_failed and bias_failed else ""
        text = (f"FAIL: {len(bias_failed or failed)} of {len(gates)} gates failed{on_bias} ({', '.join(parts)}) for "
                f"{', '.join(models)}: the bias is not shown to be within the agreed limits.")
        if task_failed and bias_failed:
            text += f" {plural(task_failed, 'more gate')} failed on accuracy."
        if not_auditable_text:
            text += " " + not_auditable_text
        return Statement("verdict", "Verdict", text, True)
    verdict = str(results.get("verdict", "pass")).lower()
    if verdict == "incomplete":
        reasons = "; ".join(map(str, (results.get("coverage") or {}).get("reasons", []))) or "not every configured gate was decided"
        return Statement("verdict", "Verdict", f"INCOMPLETE: there is no verdict: {reasons}.", True)
    if verdict == "inconclusive":
        reasons = sorted({str(g.get("reason") or g.get("message")) for g in gates if g.get("status") == "inconclusive"})
        text = (f"INCONCLUSIVE: none of {len(gates)} gates failed, but {plural(counts['inconclusive'], 'gate')} could not "
                f"decide, which counts against the audit (config inconclusive = \"fail\"): {'; '.join(reasons[:3])}.")
        if not_auditable_text:
            text = not_auditable_text + " " + text
        return Statement("verdict", "Verdict", text, True)
    decided = counts["pass"]
    text = f"PASS: {decided} of {len(gates)} gates passed and none failed"
    others = [plural(counts[s], f"{s} gate") for s in ("inconclusive", "waived", "skipped") if counts[s]]
    text += (f" ({', '.join(others)}, which do not fail the audit)." if others else ".")
    text += " Passing covers these items, conditions and thresholds only; it is not a proof of fairness."
    if not_auditable_text:
        text += " " + not_auditable_text
    return Statement("verdict", "Verdict", text, False)


# --- 2. The largest bias ------------------------------------------------------------------------------


def largest_bias(results: Mapping) -> Statement:
    excluded = set(unauditable(results))
    measured = [(m, c, cond) for m, c, cond in _conditions(results) if is_number(cond.get("a_sb"))]
    auditable = [(m, c, cond) for m, c, cond in measured if (str(m), str(c)) not in excluded]
    if not auditable:
        text = ("No A-SB was measured, so no bias can be ranked." if not measured else
                "No bias can be ranked: the model does not do the task under any audited condition (not auditable).")
        return Statement("largest_bias", "Largest bias", text, False)
    numbers = Numbers(results)
    model, name, cond = max(auditable, key=lambda mc: mc[2]["a_sb"])
    ci = numbers.ci(cond.get("a_sb_ci"), FIELD_RANGES["a_sb"])
    text = (escape(f"{model} under {name}: {FIELD_LABELS['a_sb']} ") + numbers.field(str(model), name, "a_sb")
            + escape(f"{' ' + ci if interval(cond.get('a_sb_ci')) else ''}, i.e. an occupation is "
                     f"chosen on average {abs(cond['a_sb']) * 100:.0f} percentage points more often with one pronoun "
                     f"gender than with the other."))
    o_sb = {o: v for o, v in (cond.get("o_sb") or {}).items() if is_number(v)}
    if o_sb:
        worst = max(o_sb, key=lambda o: (abs(o_sb[o]), o))
        lean = "male" if o_sb[worst] > 0 else "female"
        text += escape(f" The most affected occupation is {worst} (O-SB {fmt_num(o_sb[worst], 2, sign=True)}, {lean}-leaning).")
    band = noise_floor(cond)
    lo = (interval(cond.get("a_sb_ci")) or (cond["a_sb"],))[0]
    fired = band is None or lo > band[1]
    if not fired:
        text += escape(f" Even this is within the noise floor ({fmt_num(band[1], 2)}): no bias is distinguishable from chance.")
    if excluded:
        text += escape(f" Not ranked (not auditable): {_where(sorted(excluded))}.")
    return Statement("largest_bias", "Largest bias", text, fired)


# --- 3. Does intrinsic bias transfer? -----------------------------------------------------------------


def transfer_statement(results: Mapping) -> Statement:
    parts, transfers, unmeasurable = [], [], []
    numbers = Numbers(results)
    for model in results.get("models") or []:
        rows = [(c, t) for c, t in (model.get("transfer") or {}).items()
                if isinstance(t, Mapping) and is_number(t.get("pearson"))]
        if not rows:
            if model.get("transfer"):
                unmeasurable.append(str(model.get("name", "?")))
            continue
        low, high = min(rows, key=lambda r: r[1]["pearson"]), max(rows, key=lambda r: r[1]["pearson"])
        strong = sum((interval(t.get("pearson_ci")) or (t["pearson"],))[0] >= STRONG_TRANSFER for _, t in rows)
        transfers.append(strong == len(rows))
        name = str(model.get("name", "?"))

        def r(row) -> Markup:
            ci = numbers.ci(row[1].get("pearson_ci"), FIELD_RANGES["pearson"])
            return (numbers.field(name, row[0], "pearson")
                    + escape(f"{' ' + ci if interval(row[1].get('pearson_ci')) else ''} ({row[0]})"))

        span = (escape("r = ") + r(low) if len(rows) == 1 else escape("r from ") + r(low) + escape(" to ") + r(high))
        parts.append(escape(f"{name}: ") + span + escape(f" over {plural(len(rows), 'prompted condition')}, "
                                                         f"lower bound \u2265 {STRONG_TRANSFER} in {strong} of {len(rows)}"))
    parts += [escape(f"{name}: r not measurable (its intrinsic O-SB does not vary over occupations)") for name in unmeasurable]
    if not parts:
        return Statement("transfer", "Bias transfer",
                         f"Transfer was not measured: no model has the '{transfer_reference(results)}' condition "
                         "and a prompted one.", False)
    if not transfers:
        lead = "Transfer could not be measured"
    elif all(transfers):
        lead = ("Intrinsic bias transfers to every prompted condition" if not unmeasurable else
                "Intrinsic bias transfers to every prompted condition wherever it could be measured")
    elif any(transfers):
        lead = "Intrinsic bias transfers for some models, not all"
    else:
        lead = "Intrinsic bias is not shown to transfer to every prompted condition"
    text = (escape(f"{lead} ({FIELD_LABELS['pearson']}: Pearson r, intrinsic vs prompted O-SB) \u2014 ")
            + Markup("; ").join(parts)
            + escape(f". The papers report r \u2265 {PAPERS_TRANSFER_R} zero- and few-shot ({PAPERS})."))
    return Statement("transfer", "Bias transfer", text, any(transfers))


# --- 4. Did a prompt or debiasing strategy reduce bias? -----------------------------------------------


def prompt_reference(conditions: Mapping[str, Mapping], transfer_from: str) -> str | None:
    """The prompted condition strategies are compared with: ``zero_shot`` when run, else none."""
    return "zero_shot" if "zero_shot" in conditions and "zero_shot" != transfer_from else None


def paired_changes(results: Mapping) -> list[dict]:
    """Per model and strategy: the paired change of A-SB against the plain prompt (zero_shot), over occupations.

    Negative = the strategy lowered A-SB. The interval resamples occupations (as the ``a_sb_regression``
    gate does); the record's ``debiased_effect`` is reported beside it when present.
    """
    config = _config(results)
    boot = {"n_resamples": int(config.get("n_resamples") or 1000), "seed": int(config.get("seed") or 0)}
    transfer_from, out = transfer_reference(results), []
    for model in results.get("models") or []:
        conditions = {c: v for c, v in (model.get("conditions") or {}).items() if isinstance(v, Mapping)}
        ref = prompt_reference(conditions, transfer_from)
        ref_osb = (conditions.get(ref) or {}).get("o_sb") if ref else None
        if not isinstance(ref_osb, Mapping):
            continue
        for name, cond in conditions.items():
            o_sb = cond.get("o_sb")
            if name in (ref, transfer_from) or cond.get("format") == "intrinsic" or not isinstance(o_sb, Mapping):
                continue
            change, ci = mean_abs_change({k: v for k, v in o_sb.items() if is_number(v) or v is None},
                                     {k: v for k, v in ref_osb.items() if is_number(v) or v is None}, **boot)
            if change != change:  # no occupation measurable in both
                continue
            out.append({"model": model.get("name", "?"), "condition": name, "reference": ref, "change": change,
                        "ci": ci, "reduced": ci[1] < 0, "increased": ci[0] > 0})
    return out


def reduction_statement(results: Mapping, changes: list[dict] | None = None) -> Statement:
    changes = paired_changes(results) if changes is None else changes
    if not changes:
        transfer_from = transfer_reference(results)
        strategies = [c for m in results.get("models") or [] for c, v in (m.get("conditions") or {}).items()
                      if c not in (transfer_from, "zero_shot") and isinstance(v, Mapping) and v.get("format") != "intrinsic"]
        if not strategies:  # nothing was run to compare: the summary leaves the line out
            return Statement("reduction", "Prompting and debiasing", "No prompt or debiasing strategy was run.", False,
                             empty=True)
        return Statement("reduction", "Prompting and debiasing",
                         "No strategy could be compared with a plain zero-shot prompt (zero_shot not run).", False)
    reduced = sorted((c for c in changes if c["reduced"]), key=lambda c: c["change"])
    increased = [c for c in changes if c["increased"]]

    def one(c: dict) -> str:
        return (f"{c['condition']} for {c['model']} (A-SB change {fmt_estimate(c['change'], c['ci'], sign=True)} vs "
                f"{c['reference']})")

    if reduced:
        text = f"{plural(len(reduced), 'strategy', 'strategies')} of {len(changes)} reduced bias; the largest reduction: {one(reduced[0])}."
    else:
        best = min(changes, key=lambda c: c["change"])
        text = (f"No prompt or debiasing strategy reduced bias detectably: of {len(changes)} compared with zero_shot, "
                f"none has a paired change whose interval lies below 0; the smallest change: {one(best)}.")
    if increased:
        worst = max(increased, key=lambda c: c["change"])
        text += f" {plural(len(increased), 'strategy', 'strategies')} increased it, most {one(worst)}."
    text += " Changes are paired over occupations."
    return Statement("reduction", "Prompting and debiasing", text, bool(reduced))


# --- 5. What could not be concluded -------------------------------------------------------------------


def open_questions(results: Mapping) -> Statement:
    gates = [g for g in results.get("gates") or [] if isinstance(g, Mapping)]
    parts = []
    pairs = unauditable(results)
    if pairs:
        parts.append(f"not auditable (the model does not do the task): {_where(pairs)}")
    inconclusive = [g for g in gates if g.get("status") == "inconclusive" and not not_auditable(g)]
    if inconclusive:
        reasons = sorted({str(g.get("reason") or g.get("message") or "no reason recorded") for g in inconclusive})
        parts.append(f"{plural(len(inconclusive), 'gate')} inconclusive ({'; '.join(reasons[:3])}"
                     f"{'; ...' if len(reasons) > 3 else ''})")
    skipped = [g for g in gates if g.get("status") == "skipped"]
    if skipped:
        parts.append(f"{plural(len(skipped), 'gate')} skipped as not measurable")
    floor = [(m, c) for m, c, cond in _conditions(results) if noise_floor(cond) and is_number(cond.get("a_sb"))
             and (interval(cond.get("a_sb_ci")) or (cond["a_sb"],))[0] <= noise_floor(cond)[1]]
    if floor:
        parts.append(f"A-SB within the noise floor (indistinguishable from chance) in {plural(len(floor), 'condition')}"
                     f", e.g. {floor[0][1]} for {floor[0][0]}")
    unclear = [(m.get("name"), c) for m in results.get("models") or [] for c, t in (m.get("transfer") or {}).items()
               if isinstance(t, Mapping) and interval(t.get("pearson_ci")) and interval(t["pearson_ci"])[0] < 0 < interval(t["pearson_ci"])[1]]
    if unclear:
        parts.append(f"transfer undetermined (r's interval spans 0) in {plural(len(unclear), 'condition')}, "
                     f"e.g. {unclear[0][1]} for {unclear[0][0]}")
    if not parts:
        return Statement("open", "Not concluded", "Every gate reached a decision; no estimate is lost in noise.", False)
    return Statement("open", "Not concluded", "Could not be concluded: " + "; ".join(parts) + ".", True)


RULES = {"verdict": verdict_statement, "largest_bias": largest_bias, "transfer": transfer_statement,
         "reduction": reduction_statement, "open": open_questions}


def executive_summary(results: Mapping, rules: tuple[str, ...] = tuple(RULES)) -> list[Statement]:
    """The statements in reading order (the dataset's ``report_summary_rules``; default all: verdict, largest
    bias, transfer, strategies, open questions). Only the verdict rule knows no dataset's metrics."""
    return [RULES[rule](results) for rule in rules]
