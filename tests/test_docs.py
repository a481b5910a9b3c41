"""docs/model.md cannot drift from the code: parameter table, cited row ids, presets and columns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sim import paramtable
from sim.metrics import column_names
from sim.paramtable import extract_table, is_numeric, parameter_table, replace_table, walk
from sim.sources import DEFAULT_TARGETS, load_targets
from sim.workforce import FIELDS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "model.md"
REGIONS = ROOT / "sim" / "conf" / "region"

#: Prefixes that mark a token as a targets.csv row id.
ID_PREFIXES = ("nat_", "cq_", "zx_", "hb_", "wage_", "rule_", "prior_")
#: Lower-case word, underscore, then word characters (upper case allowed after the first underscore, as
#: in wage_sh_2022_L1), optionally ending in the wildcard `*` (rule_wait_*).
TOKEN = re.compile(r"\b[a-z][a-z0-9]*_[A-Za-z0-9_]+\*?")
#: Code identifiers that share a prefix with row ids but are not row ids (worker state variables).
CODE_NAMES = frozenset(FIELDS)


@pytest.fixture(scope="module")
def ids() -> set[str]:
    return set(load_targets(str(DEFAULT_TARGETS)))


@pytest.fixture(scope="module")
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def cited_ids(text: str, ids: set[str]) -> set[str]:
    """Tokens in `text` that are, or look like, targets.csv row ids."""
    text = text.replace("\\*", "*")  # Markdown-escaped wildcard
    found = set()
    for tok in TOKEN.findall(text):
        if tok in CODE_NAMES:
            continue
        if tok in ids or tok.startswith(ID_PREFIXES):
            found.add(tok)
    return found


def unknown_ids(text: str, ids: set[str]) -> list[str]:
    """Cited ids that are not rows of targets.csv; `prefix_*` is fine if some row starts with `prefix_`."""
    bad = []
    for tok in sorted(cited_ids(text, ids)):
        if tok.endswith("*"):
            stem = tok[:-1]
            if not any(i.startswith(stem) for i in ids):
                bad.append(tok)
        elif tok not in ids:
            bad.append(tok)
    return bad


# -- (1) the parameter table in the docs is the generated one -------------------------------------------

def test_doc_table_equals_generated(doc_text):
    assert extract_table(doc_text) == parameter_table(), (
        "docs/model.md parameter table is out of date; run `python -m sim.paramtable --write docs/model.md`")


def test_table_has_one_row_per_parameter():
    table = parameter_table()
    rows = [ln for ln in table.splitlines() if ln.startswith("| `")]
    names = [p.name for p in walk()]
    assert len(rows) == len(names) == len(set(names))
    for ln, name in zip(rows, names):
        assert ln.startswith(f"| `{name}` |")
    assert "levers.training.cost_per_place" in names  # nested dataclasses are walked


def test_table_drift_is_detected(doc_text):
    stale = doc_text.replace("| `seed` | 20221231 |", "| `seed` | 1 |")
    assert stale != doc_text
    assert extract_table(stale) != parameter_table()


def test_every_parameter_has_a_meaning():
    missing = [p.name for p in walk() if not paramtable.meaning(p)]
    assert not missing, f"parameters without doc metadata: {missing}"


def test_write_and_check_cli(tmp_path):
    f = tmp_path / "m.md"
    f.write_text(f"intro\n{paramtable.BEGIN}\nold\n{paramtable.END}\noutro\n", encoding="utf-8")
    assert paramtable.main(["--check", str(f)]) == 1
    assert paramtable.main(["--write", str(f)]) == 0
    text = f.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert extract_table(text) == parameter_table()
    assert paramtable.main(["--check", str(f)]) == 0
    f.write_text("no markers\n", encoding="utf-8")
    assert paramtable.main(["--write", str(f)]) == 2


def test_replace_table_requires_markers():
    with pytest.raises(ValueError):
        replace_table("nothing here", "table")


# -- (2) sources in the config metadata ------------------------------------------------------------------

def test_numeric_fields_have_a_source():
    missing = [p.name for p in walk() if is_numeric(p) and not str(p.meta.get("source", "")).strip()]
    assert not missing, f"numeric parameters without a source: {missing}"
    assert any(is_numeric(p) for p in walk())


def test_config_sources_cite_existing_rows(ids):
    bad = {p.name: unknown_ids(str(p.meta.get("source", "")), ids) for p in walk()}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"sources citing rows not in targets.csv: {bad}"
    cited = set().union(*(cited_ids(str(p.meta.get("source", "")), ids) for p in walk()))
    assert {"cq_training_cost", "rule_wait_*", "prior_turnover"} <= cited  # the scanner sees real citations


# -- (3) row ids cited anywhere in docs/model.md -----------------------------------------------------------

def test_doc_cites_existing_rows(doc_text, ids):
    bad = unknown_ids(doc_text, ids)
    assert not bad, f"docs/model.md cites rows not in targets.csv: {bad}"
    assert len(cited_ids(doc_text, ids)) > 20


@pytest.mark.parametrize("text, bad", [
    ("see cq_training_costs", ["cq_training_costs"]),
    ("rule_wait_L9_L10 and rule_wait_*", ["rule_wait_L9_L10"]),
    ("wage_sh_2023_* is not a prefix", ["wage_sh_2023_*"]),
    ("prior_happiness", ["prior_happiness"]),
    ("zx_hs, hb_comp, wage_sh_2022_*, nat_mix_2021_L3..L5", []),
    ("code names: levy_rate, wage_factor, level_3", []),
])
def test_id_checker_can_fail(ids, text, bad):
    assert unknown_ids(text, ids) == bad


# -- presets and output columns documented as in the code --------------------------------------------------

def _yaml_scalars(path: Path) -> dict[str, str]:
    """key -> value as written in the YAML file (comments and quotes stripped)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([a-z_]+):\s*([^#]+?)\s*(#.*)?$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"')
    return out


@pytest.mark.parametrize("preset", sorted(p.stem for p in REGIONS.glob("*.yaml")))
def test_region_presets_table(doc_text, preset):
    section = doc_text.split("## 8. Region presets", 1)[1].split("\n## ", 1)[0]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)` \|.*$", section, flags=re.M)}
    header = next(ln for ln in section.splitlines() if ln.startswith("| parameter"))
    col = [c.strip().split(" ")[0] for c in header.strip("|").split("|")].index(preset)
    values = _yaml_scalars(REGIONS / f"{preset}.yaml")
    yaml.safe_load((REGIONS / f"{preset}.yaml").read_text(encoding="utf-8"))  # the file is valid YAML
    for key, value in values.items():
        if key in ("name", "label_en", "label_zh"):
            continue
        assert key in rows, f"docs region table lacks `{key}`"
        cell = [c.strip() for c in rows[key].strip().strip("|").split(" | ")][col]
        assert cell.startswith(value), f"{preset}.{key}: docs say {cell!r}, YAML says {value!r}"


def test_series_columns_documented(doc_text):
    section = doc_text.split("### 7.9", 1)[1].split("\n### ", 1)[0]
    for col in column_names():
        generic = re.sub(r"_\d+$", "_k", col)
        assert f"`{col}`" in section or f"`{generic}`" in section, f"series column {col} not documented"
