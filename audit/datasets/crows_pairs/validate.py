"""``bias-audit data validate crows-pairs:DIR``: what the file holds and what is wrong with it.

Errors (non-zero exit): malformed rows (each named ``file:line``). Reported: repeated pairs, the file's
SHA-256 against the pinned official one, counts per bias type and direction against the official
counts, the annotator-agreement distribution, and the pairs that differ in more than
``NON_MINIMAL_WORDS`` words (one of the problems Blodgett et al. 2021 describe: not a minimal edit).
"""

from __future__ import annotations

import difflib
from collections import Counter

from .official import (ANNOTATORS, OFFICIAL_COUNTS, OFFICIAL_SHA256, OFFICIAL_TOTAL, parse_source, resolve_file,
                       scan_file, select, sha256)

NON_MINIMAL_WORDS = 3
MAX_LISTED = 50


def changed_words(a: str, b: str) -> int:
    """Words of the longer side not in the two sentences' common word sequence."""
    wa, wb = a.split(), b.split()
    common = sum(block.size for block in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_matching_blocks())
    return max(len(wa), len(wb)) - common


class ValidationReport:
    def __init__(self, report: dict):
        self._report = report
        self.ok = report["ok"]

    @classmethod
    def of(cls, source: str) -> "ValidationReport":
        where, min_agreement, types = parse_source(source)
        path = resolve_file(where)
        pairs, errors = scan_file(path)
        digest = sha256(path)
        seen: dict[tuple[str, str], str] = {}
        repeats = []
        for p in pairs:
            key = (p.sent_more, p.sent_less)
            if key in seen:
                repeats.append(f"{p.source}: the same pair as {seen[key]}")
            seen.setdefault(key, p.source)
        counts = Counter(p.bias_type for p in pairs)
        warnings = []
        if digest != OFFICIAL_SHA256:
            warnings.append(f"SHA-256 {digest} is not the official file's ({OFFICIAL_SHA256})")
        if len(pairs) != OFFICIAL_TOTAL:
            warnings.append(f"{len(pairs)} pairs, the official file has {OFFICIAL_TOTAL}")
        for t, n in OFFICIAL_COUNTS.items():
            if counts.get(t, 0) != n:
                warnings.append(f"bias type {t}: {counts.get(t, 0)} pairs, the official file has {n}")
        warnings += [f"repeated pair (kept; the official file has one) {r}" for r in repeats]
        non_minimal = [p for p in pairs if changed_words(p.sent_more, p.sent_less) > NON_MINIMAL_WORDS]
        kept = select(pairs, min_agreement, types)
        report = {
            "ok": not errors, "file": str(path), "sha256": digest, "official": digest == OFFICIAL_SHA256,
            "pairs": len(pairs), "errors": errors[:MAX_LISTED], "error_count": len(errors), "warnings": warnings,
            "bias_types": {t: counts.get(t, 0) for t in OFFICIAL_COUNTS},
            "directions": dict(Counter(p.direction for p in pairs)),
            "agreement": {str(k): sum(p.agreement == k for p in pairs) for k in range(ANNOTATORS + 1)},
            "selected": {"min_agreement": min_agreement, "bias_types": list(types) if types else None, "pairs": len(kept)},
            "non_minimal": {"words_over": NON_MINIMAL_WORDS, "count": len(non_minimal),
                            "examples": [p.source for p in non_minimal[:MAX_LISTED]]},
        }
        return cls(report)

    def to_dict(self) -> dict:
        return self._report

    def format_text(self) -> str:
        r = self._report
        lines = [f"CrowS-Pairs {r['file']}: {r['pairs']} pairs, SHA-256 {'official' if r['official'] else r['sha256']}"]
        lines.append("bias types: " + ", ".join(f"{t} {n}" for t, n in r["bias_types"].items()))
        lines.append("directions: " + ", ".join(f"{d} {n}" for d, n in r["directions"].items()))
        lines.append("validators choosing the pair's bias type (of 5): "
                     + ", ".join(f"{k}: {n}" for k, n in r["agreement"].items()))
        sel = r["selected"]
        lines.append(f"selected (min_agreement {sel['min_agreement']}"
                     f"{', bias_types ' + ','.join(sel['bias_types']) if sel['bias_types'] else ''}): {sel['pairs']} pairs")
        lines.append(f"pairs differing in more than {r['non_minimal']['words_over']} words (not minimal edits, "
                     f"Blodgett et al. 2021): {r['non_minimal']['count']}")
        lines += [f"warning: {w}" for w in r["warnings"]]
        lines += [f"error: {e}" for e in r["errors"]]
        if r["error_count"] > len(r["errors"]):
            lines.append(f"... {r['error_count'] - len(r['errors'])} more errors")
        lines.append("OK" if r["ok"] else f"FAILED: {r['error_count']} bad rows")
        return "\n".join(lines)
