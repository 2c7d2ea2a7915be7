"""The executive summary: the few findings a decision needs, each stated by a rule from results.json.

Each rule reads the record and returns a :class:`Statement`: a plain sentence with its number and
interval, and ``fired`` (whether the finding holds, e.g. "bias transfers"). No free text: every
sentence is built from the record, and tests pin each rule on a fixture where it fires and one where
it does not. Two rules are generic: the verdict and what could not be concluded; the others are the
record's dataset's (``Dataset.report_summary_rules`` and ``report_statement``), declared as parts
(``audit.datasets.report_data``) that are written here with the report's register of numbers.
Optional fields (status ``inconclusive`` with a ``reason``) are used when present and never required.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup

from audit.datasets.base import Dataset
from audit.datasets.report_data import Finding, transfer_reference  # noqa: F401  (transfer_reference: re-exported)
from audit.results.io import STATUSES

from .findings import is_task_gate, not_auditable
from .format import interval, plural
from .quantities import Numbers
from .recorded import record_dataset
from .written import where as _where
from .written import plain, written


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


# --- 2. What could not be concluded -------------------------------------------------------------------


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
    dataset = record_dataset(results)
    if dataset is not None:  # what the dataset's own statistics leave undecided
        numbers = Numbers(results)
        parts += ["".join(plain(p, numbers) for p in clause) for clause in dataset.report_open_questions(results)]
    unclear = [(m.get("name"), c) for m in results.get("models") or [] for c, t in (m.get("transfer") or {}).items()
               if isinstance(t, Mapping) and interval(t.get("pearson_ci")) and interval(t["pearson_ci"])[0] < 0 < interval(t["pearson_ci"])[1]]
    if unclear:
        parts.append(f"transfer undetermined (r's interval spans 0) in {plural(len(unclear), 'condition')}, "
                     f"e.g. {unclear[0][1]} for {unclear[0][0]}")
    if not parts:
        return Statement("open", "Not concluded", "Every gate reached a decision; no estimate is lost in noise.", False)
    return Statement("open", "Not concluded", "Could not be concluded: " + "; ".join(parts) + ".", True)


# --- 3. The dataset's own findings --------------------------------------------------------------------


def statement(finding: Finding, numbers: Numbers) -> Statement:
    """A dataset's finding written with the report's register of numbers."""
    return Statement(finding.key, finding.title, written(finding.parts, numbers), finding.fired, finding.empty)


def dataset_statement(results: Mapping, rule: str, numbers: Numbers | None = None) -> Statement:
    """The record's dataset's summary rule ``rule`` (``Dataset.report_statement``)."""
    dataset = record_dataset(results)
    if dataset is None:
        raise KeyError(f"no installed dataset states the summary rule '{rule}'")
    return statement(dataset.report_statement(rule, results, unauditable(results)), numbers or Numbers(results))


RULES = {"verdict": verdict_statement, "open": open_questions}  # the generic rules; the others are the dataset's


def executive_summary(results: Mapping, rules: tuple[str, ...] | None = None) -> list[Statement]:
    """The statements in reading order: ``rules``, by default the record's dataset's ``report_summary_rules``
    (the generic ones, the verdict and what could not be concluded, and the dataset's own)."""
    if rules is None:
        dataset = record_dataset(results)
        rules = (dataset or Dataset).report_summary_rules
    numbers = Numbers(results)
    return [RULES[rule](results) if rule in RULES else dataset_statement(results, rule, numbers) for rule in rules]
