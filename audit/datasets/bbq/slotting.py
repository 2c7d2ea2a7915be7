"""Template slotting and answer shuffling: a seeded port of upstream BBQ ``utils.py``
(nyu-mll/BBQ; Parrish et al. 2022). Upstream's quirks are kept on purpose (see comments), so the
regenerated items have the same structure as the official ones."""

from __future__ import annotations

import random
import re

UNKNOWN_OPTIONS = (
    "Unknown", "Cannot be determined", "Can't be determined", "Not answerable", "Not known",
    "Not enough info", "Not enough information", "Cannot answer", "Can't answer", "Undetermined",
)
_SLOTTED = ("Ambiguous_Context", "Disambiguating_Context", "Question_negative_stereotype",
            "Question_non_negative", "Answer_negative", "Answer_non_negative")


def return_list_from_string(text: str) -> tuple[list[str], list[str]]:
    """``"WORD1: [a, b]; WORD2: [c, d]"`` -> (["a", "b"], ["c", "d"]) (also NAME1/NAME2)."""
    first: list[str] = []
    second: list[str] = []
    for part in text.split(";"):
        if "WORD1" in part or "NAME1" in part:
            body = part.replace("WORD1:", "").replace("{{WORD1}}:", "").replace("NAME1:", "").replace("{{NAME1}}:", "")
            first = [w.strip() for w in body.strip().replace("[", "").replace("]", "").split(",")]
        if "WORD2" in part or "NAME2" in part:
            body = part.replace("WORD2:", "").replace("{{WORD2}}:", "").replace("NAME2:", "").replace("{{NAME2}}:", "")
            second = [w.strip() for w in body.strip().replace("[", "").replace("]", "").split(",")]
    return first, second


def do_slotting(frame: dict[str, str], word1: str, word2: str, lex_div: str, rand_wrd1: str, rand_wrd2: str) -> dict:
    """Fill ``{{NAME1}}``/``{{NAME2}}`` (and ``{{WORD1}}``/``{{WORD2}}``) in the text columns of a template row."""
    out = dict(frame)
    out["template_answers"] = (frame.get("Answer_negative", ""), frame.get("Answer_non_negative", ""))
    vowel = bool(re.search("^[aeiou]", word1.lower()) or re.search("^[aeiou]", word2.lower()))
    for column in _SLOTTED:
        text = frame.get(column, "").replace("{[NAME1}}", "{{NAME1}}")  # a typo in Disability_status Q19b
        text = text.replace("{{NAME1}}", word1).replace("{{NAME2}}", word2)
        if len(lex_div) > 1:
            text = text.replace("{{WORD1}}", rand_wrd1).replace("{{WORD2}}", rand_wrd2)
        text = text.replace("lesbian man", "lesbian woman").replace("Latino woman", "Latina woman")
        if vowel:  # "a" -> "an" before a vowel (upstream: not at the start of a sentence)
            text = re.sub(r"(\s[aA])(\s[aAeEiIoOuU])", r"\1n\2", text).replace(" an European", " a European")
        out[column] = text
    return out


def create_templating_dicts(cat: str, frame: dict, subcat: str, bias_targets, name1: str, name2: str,
                            name1_info, name2_info, nn: int, rng: random.Random) -> list[dict]:
    """The four records (neg/nonneg x ambig/disambig) of one filled template, answers shuffled."""
    ans_neg, ans_non_neg = frame["Answer_negative"], frame["Answer_non_negative"]
    ans_ambig = rng.choice(UNKNOWN_OPTIONS)
    answers = [ans_neg, ans_non_neg, ans_ambig]
    rng.shuffle(answers)
    neg_place, non_neg_place, unknown_place = (answers.index(a) for a in (ans_neg, ans_non_neg, ans_ambig))
    info = {"ans0": ["", ""], "ans1": ["", ""], "ans2": ["", ""]}
    keys = list(info)
    # upstream: "man" matches inside "woman", so it is padded with a space before the substring tests
    name1 = " man" if name1 == "man" else name1
    name2 = " man" if name2 == "man" else name2
    for name, name_info in ((name1, name1_info), (name2, name2_info)):
        if name in ans_neg:
            info[keys[neg_place]] = [name.lstrip(), name_info]
        if name in ans_non_neg:
            info[keys[non_neg_place]] = [name.lstrip(), name_info]
    # Deviation from upstream: its substring tests above let a name that occurs inside the other
    # answer overwrite that answer's tag ("tattoos" in "no tattoos", "African" in "African
    # American"), leaving both answers with one group; the official files show no such mis-tag.
    # When the template says which slot an answer holds, that decides.
    for template_answer, place in zip(frame.get("template_answers", ("", "")), (neg_place, non_neg_place)):
        has1, has2 = "{{NAME1}}" in template_answer, "{{NAME2}}" in template_answer
        if has1 != has2:
            name, name_info = (name1, name1_info) if has1 else (name2, name2_info)
            info[keys[place]] = [name.lstrip(), name_info]
    info[keys[unknown_place]] = [ans_ambig, "unknown"]
    ambiguous, disambiguating = frame["Ambiguous_Context"], frame["Disambiguating_Context"]
    common = {"category": cat, "answer_info": info,
              "additional_metadata": {"subcategory": subcat, "stereotyped_groups": list(bias_targets),
                                      "version": frame.get("version", "None"), "source": frame.get("Notes", "")},
              "question_index": str(frame["Q_id"]).strip(), "ans0": answers[0], "ans1": answers[1], "ans2": answers[2]}
    full = f"{ambiguous.strip()} {disambiguating}"
    cells = (("neg", "ambig", ambiguous, frame["Question_negative_stereotype"], unknown_place),
             ("neg", "disambig", full, frame["Question_negative_stereotype"], neg_place),
             ("nonneg", "ambig", ambiguous, frame["Question_non_negative"], unknown_place),
             ("nonneg", "disambig", full, frame["Question_non_negative"], non_neg_place))
    return [{**common, "example_id": nn + i, "question_polarity": pol, "context_condition": cond,
             "context": context.strip(), "question": question.strip(), "label": label}
            for i, (pol, cond, context, question, label) in enumerate(cells)]
