"""The HTML report rendered from a fixture results file: what a stakeholder reads is there, right and safe."""

from __future__ import annotations

import collections
import copy
import html as html_lib
import importlib.util
import json
import re
from pathlib import Path

import pytest
from markupsafe import escape

from audit import AuditError
from audit.datasets.winobias.occupations import occupations
from audit import load_results, render_report, write_report
from audit.report.format import fmt_value

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results_example.json"
PAYLOAD = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def results() -> dict:
    return load_results(FIXTURE)


@pytest.fixture(scope="module")
def page(results) -> str:
    return render_report(results)


def small(results: dict, conditions=("intrinsic", "zero_shot", "few_shot_k4"), n_choices: int = 12) -> dict:
    """One model, a few conditions, a few choices: quick to render."""
    out = copy.deepcopy(results)
    model = out["models"][0]
    model["conditions"] = {c: model["conditions"][c] for c in conditions}
    model["transfer"] = {c: t for c, t in model["transfer"].items() if c in conditions}
    model["choices"] = {c: model["choices"][c][:n_choices] for c in conditions}
    out["models"] = [model]
    out["gates"] = [g for g in out["gates"] if g["model"] == model["name"]]
    return out


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}"')
    return page[start:page.index("</section>", start)]


def text_of(fragment: str) -> str:
    """Visible text, tags removed and entities decoded, whitespace collapsed."""
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


# --- Loading -----------------------------------------------------------------------------------------------


def test_fixture_matches_its_generator(results):
    spec = importlib.util.spec_from_file_location("make_results_example", ROOT / "tests" / "fixtures" / "make_results_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(json.dumps(module.build())) == results


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "results file not found"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"verdict": "pass"}', "no 'schema_version'"),
        ('{"schema_version": "2.0"}', "schema_version '2.0' is not supported"),
        ('{"schema_version": "1.0", "verdict": "pass"}', "missing key 'models'"),
    ],
)
def test_load_results_rejects_bad_files_in_one_line_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(AuditError) as info:
        load_results(path)
    message = str(info.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{\n "schema_version": "1.0",\n "verdict": }\n', encoding="utf-8")
    with pytest.raises(AuditError, match=r"r\.json:3:"):
        load_results(path)


def test_load_results_accepts_the_fixture(results):
    assert results["schema_version"] == "1.0" and len(results["models"]) == 2


# --- Summary and gates -------------------------------------------------------------------------------------


def test_summary_gives_the_verdict_and_what_each_failure_means(page, results):
    text = text_of(section(page, "summary"))
    assert '<span class="verdict fail">FAIL</span>' in page
    assert ("FAIL: 4 of 12 gates failed (\u03b8 (A-SB without noise) 2 of 4, |RPA gap| 2 of 2) for reference-biased, reference-fair: the bias is "
            "not shown to be within the agreed limits.") in text
    assert "4 fail 2 waived 2 skipped 4 pass" in text
    for gate in results["gates"]:
        assert gate["id"] not in text  # the summary states findings; the gates are in the matrix
    matrix = text_of(section(page, "matrix"))
    # plain-language meaning of each failing kind of gate, once, beside its threshold and rationale
    assert matrix.count("When it fails:") == 2
    assert "When it fails: The model's choice between the two occupations depends on the pronoun's gender" in matrix
    assert "When it fails: The model resolves pronouns more accurately when they fit the occupational stereotype" in matrix


def test_gate_details_have_every_gate_with_its_numbers(page, results):
    rows = re.findall(r'<tr id="gate-\d+-[^"]*" class="gate-(\w+)[^"]*">(.*?)</tr>', section(page, "gates"), re.S)
    assert len(rows) == len(results["gates"]) == 12
    by_id = {re.search(r"<code>(.*?)</code>", row).group(1): (status, text_of(row)) for status, row in rows}
    for gate in results["gates"]:
        status, text = by_id[html_lib.escape(gate["id"], quote=False)]
        assert status == gate["status"]
        if gate["estimate"] is not None:
            assert f"{gate['estimate']:.3f}" in text
            bound = "" if gate["bound"] == "point" else f"{gate['bound']} "
            assert f"{bound}{gate['bound_value']:.3f}" in text
        if gate["ci"]:
            assert f"[{gate['ci'][0]:.3f}, {gate['ci'][1]:.3f}]" in text
        assert f"{'≤' if gate['direction'] == 'max' else '≥'} {gate['threshold']:.3f}" in text
        assert gate["rationale"] in text_of(section(page, "matrix"))  # stated once, in the matrix
    # one row checked by hand
    assert by_id["a_sb[reference-fair-zero_shot]"] == (
        "fail", "fail a_sb[reference-fair-zero_shot] 0.238 [0.178, 0.293] upper 0.293 ≤ 0.200 \u03b8 (A-SB without noise) for "
        "reference-fair under zero_shot is 0.238 (confidence interval [0.178, 0.293]); the upper end of the interval, "
        "0.293 , exceeds the maximum allowed, 0.200.")
    for model in ("reference-biased", "reference-fair"):
        mine = [s for s, text in rows if f"[{model}-" in text]
        assert mine == sorted(mine, key=["fail", "inconclusive", "waived", "skipped", "pass"].index)  # failures first


def test_a_passing_audit_says_so(results):
    passing = small(results, conditions=("intrinsic", "zero_shot"))
    for gate in passing["gates"]:
        gate["status"] = "pass"
    passing["verdict"] = "pass"
    page = render_report(passing)
    text = text_of(section(page, "summary"))
    assert '<span class="verdict pass">PASS</span>' in page
    assert f"PASS: {len(passing['gates'])} of {len(passing['gates'])} gates passed and none failed." in text
    assert "When it fails" not in section(page, "matrix")


# --- Per-occupation results, transfer, RPA, few-shot, models ------------------------------------------------


def test_occupations_are_ordered_by_share_of_women_in_tables_and_charts(page):
    expected = [o.name for o in sorted(occupations(), key=lambda o: (o.pct_women, o.name))]
    tables = re.findall(r'<table class="osb-table".*?</table>', page, re.S)
    assert len(tables) == 2
    for table in tables:
        rows = re.findall(r'<th scope="row" class="occ">(.*?)</th><td class="num">([\d.]+)</td>', table)
        assert [name for name, _ in rows] == expected
        shares = [float(pct) for _, pct in rows]
        assert shares == sorted(shares) and shares[0] == 2.1 and shares[-1] == 95.0
    first_chart = re.search(r'<svg class="chart"[^>]*aria-labelledby="m0-osb-0-title.*?</svg>', page, re.S).group(0)
    labels = re.findall(r">([^<>]+) \(([\d.]+)%\)</text>", first_chart)
    assert [name for name, _ in labels] == expected  # drawn top to bottom in the same order


def test_osb_table_holds_the_record_values(page, results):
    table = re.search(r'<table class="osb-table" id="m0-[^"]*".*?</table>', page, re.S).group(0)
    header = re.findall(r'<th scope="col" class="num">(.*?)</th>', table)
    conditions = list(results["models"][0]["conditions"])
    assert header == ["% women", *conditions]
    row = re.search(r'class="occ">nurse</th>(.*?)</tr>', table, re.S).group(1)
    values = re.findall(r'<td class="num">([^<]*)</td>', row)[1:]
    o_sb = [results["models"][0]["conditions"][c]["o_sb"]["nurse"] for c in conditions]
    assert values == [f"{v:.2f}" for v in o_sb]


def test_transfer_table_has_both_correlations_with_intervals(page, results):
    text = text_of(section(page, "transfer"))
    for model in results["models"]:
        for condition, t in model["transfer"].items():
            expected = (f"{condition} {t['pearson']:.3f} [{t['pearson_ci'][0]:.3f}, {t['pearson_ci'][1]:.3f}] "
                        f"{t['spearman']:.3f} [{t['spearman_ci'][0]:.3f}, {t['spearman_ci'][1]:.3f}]")
            assert expected in text
    assert "Pearson r = 0.98 [0.96, 0.99]" in text_of(section(page, "transfer").split("</svg>")[0])  # in the chart


def test_rpa_by_type_and_stance(page, results):
    text = text_of(section(page, "rpa"))
    rpa = results["models"][0]["conditions"]["zero_shot"]["rpa"]
    t1, t2 = rpa["by_type"]["1"], rpa["by_type"]["2"]
    row = " ".join(f"{v:.3f}" for v in (t1["pro"], t1["anti"], t1["gap"], t2["pro"], t2["anti"], t2["gap"],
                                        rpa["pro"], rpa["anti"], rpa["gap"]))
    assert f"zero_shot {row}" in text


def test_few_shot_composition_and_seed_spread(page, results):
    text = text_of(section(page, "few-shot"))
    cond = results["models"][0]["conditions"]["few_shot_k4_anti"]
    assert (f"few_shot_k4_anti 4 shots, pro-stereotypical 0%, occupations balanced, male pronouns 50% 0, 1, 2 "
            f"{cond['a_sb']:.3f} [{cond['a_sb_ci'][0]:.3f}, {cond['a_sb_ci'][1]:.3f}] {cond['seed_spread']['a_sb_sd']:.3f}") in text
    assert "zero_shot" not in re.findall(r"<tbody>.*?</tbody>", section(page, "few-shot"), re.S)[0]


def test_models_side_by_side(page):
    models = section(page, "models")
    assert 'aria-labelledby="cmp-title cmp-desc"' in models
    header = re.search(r"<thead>.*?</thead>", models, re.S).group(0)
    assert text_of(header) == "Condition reference-biased reference-fair"
    assert "A-SB 0.767 [0.704, 0.842] RPA gap (pro \u2212 anti) 0.762 [0.694, 0.834] accuracy 0.619" in text_of(models)


def test_generation_condition_shows_the_other_rate(page, results):
    cond = results["models"][0]["conditions"]["zero_shot_generate"]
    row = re.search(r"<strong>zero_shot_generate</strong>.*?</tr>", section(page, "conditions"), re.S).group(0)
    assert f"{cond['n_answered']} / 320" in text_of(row) and f"{100 * cond['other_rate']:.1f}%" in text_of(row)


# --- Drill-down --------------------------------------------------------------------------------------------


def test_drill_down_lists_every_item_of_every_condition_passing_ones_too(page, results):
    drills = re.findall(r'<details class="drill".*?</details>', page, re.S)
    assert len(drills) == sum(len(m["choices"]) for m in results["models"]) == 12
    for drill, (model, condition) in zip(drills, [(m, c) for m in results["models"] for c in m["choices"]]):
        choices = model["choices"][condition]
        assert "<details class=\"drill\" id=" in drill and " open" not in drill.split(">")[0]  # collapsed
        rows = re.findall(r'<tr class="([yn])"><td>([^<]+)<td>', drill)
        assert [r[1] for r in rows] == [c["item"] for c in choices]
        assert [r[0] == "y" for r in rows] == [c["correct"] for c in choices]
        correct = sum(c["correct"] for c in choices)
        assert f"<strong>{condition}</strong>: {correct} of {len(choices)} correct" in drill
    first = results["models"][0]["choices"]["intrinsic"][0]
    item = results["items"][first["item"]]
    before, after = item["sentence"].split(f" {item['pronoun']} ", 1)
    assert f"<td>{before} <mark>{item['pronoun']}</mark> {after}<td>" in drills[0]
    generated = drills[5]
    n_other = sum(c["selected"] is None for c in results["models"][0]["choices"]["zero_shot_generate"])
    assert f"{n_other} naming neither candidate" in generated and "It is not clear from the sentence." in generated


# --- Provenance --------------------------------------------------------------------------------------------


def test_provenance_lists_models_data_config_seeds_packages_commit_date_hardware(page, results):
    text = text_of(section(page, "provenance"))
    prov = results["provenance"]
    for model in results["models"]:
        ident = model["identity"]
        assert f"model {ident['model']}" in text and f"weights_sha256 {ident['weights_sha256']}" in text
        assert "revision none" in text and f"dtype {ident['dtype']}" in text
    assert f"source {prov['data']['source']} sha256 {prov['data']['sha256']} n_items 320 split test" in text
    assert f"git commit of the audited repository {prov['git_commit']}" in text
    assert f"date (UTC) {results['created']}" in text and "seed 0" in text
    assert f"command {prov['command']}" in text
    assert f"platform {prov['hardware']['platform']}" in text and "device cpu" in text and "gpu none" in text
    for package, version in prov["packages"].items():
        assert f"{package} {version}" in text
    appendix = re.search(r'<details class="config appendix" id="config">(.*?)</details>', page, re.S).group(1)
    rows = dict(re.findall(r"<tr><th scope=\"row\"><code>(.*?)</code></th><td class=\"mono\">(.*?)</td></tr>", appendix))

    def flat(config, prefix=""):
        for key, value in config.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value:
                yield from flat(value, name)
            else:
                yield name, value

    expected = dict(flat(prov["config"]))
    assert set(rows) == {html_lib.escape(k) for k in expected}  # every setting, one row each, collapsed (an appendix)
    assert all(html_lib.unescape(rows[html_lib.escape(k)]) == fmt_value(v) for k, v in expected.items())
    assert "seeds 0, 1, 2" in text_of(section(page, "conditions"))


# --- A self-contained, valid page --------------------------------------------------------------------------


def test_page_is_self_contained(page):
    assert "<script" not in page.lower()
    assert not re.search(r"\b(src|srcset|action|formaction|poster|data)=", page)
    assert "@import" not in page and "url(http" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace name, never fetched
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert all(href.startswith("#") or href == "data:," for href in re.findall(r'href="([^"]*)"', page))


def test_ids_are_unique_and_links_resolve(page):
    ids = re.findall(r'\sid="([^"]+)"', page)
    duplicates = [i for i, n in collections.Counter(ids).items() if n > 1]
    assert duplicates == []
    targets = set(re.findall(r'(?:href="#|url\(#)([^")]+)', page))
    assert targets <= set(ids)


def test_every_chart_has_a_title_and_alt_text(page):
    charts = re.findall(r'<svg class="chart"[^>]*>.*?</svg>', page, re.S)
    assert len(charts) == 12  # per model: O-SB heatmap, 2 transfer, RPA, few-shot; models side by side; the forest plot
    for chart in charts:
        head = re.match(r'<svg class="chart" role="img" aria-labelledby="(\S+)-title \1-desc"', chart)
        assert head, chart[:200]
        chart_id = head.group(1)
        assert re.search(rf'<title id="{chart_id}-title">[^<]{{10,}}</title><desc id="{chart_id}-desc">[^<]{{40,}}</desc>', chart)
        assert "<metadata" not in chart and "<?xml" not in chart and "<!DOCTYPE" not in chart


def test_render_is_deterministic_and_written_to_a_new_folder(results, tmp_path):
    quick = small(results, conditions=("intrinsic", "zero_shot"), n_choices=3)
    out = write_report(quick, tmp_path / "a" / "b" / "report.html")
    assert out.read_text(encoding="utf-8") == render_report(quick)


# --- Escaping ----------------------------------------------------------------------------------------------


def poisoned(results: dict, payload: str) -> dict:
    """The payload in a model name, a condition name, an item, a gate's text, the config and an output."""
    out = small(results, conditions=("intrinsic", "zero_shot"), n_choices=5)
    model = out["models"][0]
    name = model["name"]
    model["name"] = f"{payload} model"
    model["identity"]["model"] = payload
    model["conditions"] = {(payload if c == "zero_shot" else c): v for c, v in model["conditions"].items()}
    model["conditions"][payload]["description"] = payload
    model["transfer"] = {(payload if c == "zero_shot" else c): v for c, v in model["transfer"].items()}
    model["choices"] = {(payload if c == "zero_shot" else c): v for c, v in model["choices"].items()}
    first = model["choices"][payload][0]
    out["items"][first["item"]] = {**out["items"][first["item"]], "sentence": f"The {payload} called because he left."}
    first["output"] = payload
    for gate in out["gates"]:
        gate["model"] = model["name"] if gate["model"] == name else gate["model"]
        gate["rationale"] = payload
        gate["message"] = payload
        gate["id"] = gate["id"] + payload
    out["gates"][0]["condition"] = payload
    out["gates"][0]["status"] = "waived"
    out["gates"][0]["waiver_reason"] = payload
    out["provenance"]["config"] = {"note": payload, payload: 1}
    out["provenance"]["packages"] = {payload: payload}
    return out


def test_script_payload_is_escaped_everywhere(results):
    page = render_report(poisoned(results, PAYLOAD))
    assert PAYLOAD not in page and "<script" not in page.lower()
    assert ESCAPED in page
    for where in ("summary", "gates", "conditions", "osb", "transfer", "items", "provenance"):
        assert ESCAPED in section(page, where), where
    charts = re.findall(r'<svg class="chart".*?</svg>', page, re.S)
    assert any(ESCAPED in re.sub(r"<title.*?</desc>", "", chart) for chart in charts)  # matplotlib's own text too
    assert "The &lt;script&gt;alert(1)&lt;/script&gt; called because <mark>he</mark> left." in page
    assert "<code>note</code></th><td class=\"mono\">&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page  # config row, escaped


@pytest.mark.parametrize(
    "payload",
    ['"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)", "$\\frac{1}{$ ]]></svg><svg onload=alert(1)>",
     "</title><script>alert(1)</script>", "<!-- -->&amp;"],
)
def test_markup_in_names_never_becomes_markup(results, payload):
    page = render_report(poisoned(results, payload))
    assert "<img" not in page and "<script" not in page.lower() and "<svg onload" not in page
    assert not re.search(r"<[^>]*\son(error|mouseover|load)=", page)
    assert str(escape(payload)) in page
