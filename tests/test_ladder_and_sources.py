"""The ladder and the published figures it is built from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim import ladder
from sim.errors import DataError
from sim.sources import DEFAULT_TARGETS, load_targets, target

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "targets.csv"


def test_eight_levels_in_order_with_high_skill_from_senior_worker():
    assert [lv.zh for lv in ladder.LEVELS] == ["学徒工", "初级工", "中级工", "高级工", "技师", "高级技师", "特级技师", "首席技师"]
    assert [lv.high_skill for lv in ladder.LEVELS] == [False] * 3 + [True] * 5
    assert ladder.HIGH_SKILL_MIN == 3 and ladder.LEVELS[ladder.HIGH_SKILL_MIN].en == "senior worker"


def test_waits_come_from_the_rule_rows():
    ids = ["rule_wait_L0_L1", "rule_wait_L1_L2", "rule_wait_L2_L3", "rule_wait_L3_L4", "rule_wait_L4_L5"]
    assert list(ladder.MIN_WAIT_YEARS) == [int(target(i).number) for i in ids]
    assert list(ladder.wait_months()) == [12 * int(target(i).number) for i in ids]


def test_pay_ratios_follow_the_shanghai_survey():
    wages = [target(f"wage_sh_2022_L{k}").number for k in range(1, 8)]
    ratios = ladder.pay_ratios(0.7)
    np.testing.assert_allclose(ratios[1:], np.array(wages) / wages[0], rtol=1e-12)
    assert ratios[0] == 0.7
    assert np.all(np.diff(ratios) > 0), "pay must rise with level"


@pytest.mark.skipif(not SHARED.exists(), reason="shared/ not beside the repository")
def test_packaged_targets_are_a_verbatim_copy_of_shared():
    assert DEFAULT_TARGETS.read_bytes() == SHARED.read_bytes()


def test_malformed_targets_file_is_a_data_error(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("id,value\nx,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="malformed header"):
        load_targets(str(bad))
    with pytest.raises(DataError, match="cannot be read"):
        load_targets(str(tmp_path / "missing.csv"))
    ragged = tmp_path / "r.csv"
    ragged.write_text(DEFAULT_TARGETS.read_text(encoding="utf-8").splitlines()[0] + "\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="wrong number of fields"):
        load_targets(str(ragged))


def test_ranges_and_row_dates():
    assert target("prior_mentoring").bounds == (1.5, 3.0)
    assert target("nat_hs_2021").year_end == pytest.approx(2022.0)
    with pytest.raises(DataError):
        target("wage_growth").number
