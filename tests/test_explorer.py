"""The explorer (skillsim-explore): its page rendered in-process with Solara's test renderer, a lever
slider moving the shown figures the right way, a bad value shown on the page, and (slow) the real
server in headless Chromium, with the exported command reproducing the shown numbers."""

from __future__ import annotations

import io
import time

import pandas as pd
import pytest

solara = pytest.importorskip("solara")
import ipyvuetify as v  # noqa: E402

from sim.explorer import app  # noqa: E402
from sim.explorer.engine import View  # noqa: E402

SMALL = View(n_agents=1000, replicates=2, end_year=2027)


def download(rc, filename: str, timeout: float = 30) -> bytes | None:
    """What the page's download button for `filename` gives (the browser's click: request_download)."""
    end = time.time() + timeout
    while time.time() < end:
        files = [w for w in rc.find(v.VuetifyTemplate).widgets if getattr(w, "filename", None) == filename]
        if not files:
            return None
        if files[0].bytes:
            return files[0].bytes
        if not files[0].request_download:
            files[0].request_download = True
        time.sleep(0.1)
    return None


def shown(rc) -> tuple[str, pd.DataFrame | None]:
    """The progress text and summary, and the fan chart's CSV as the page offers it for download."""
    texts = [str(w.children[0]) for w in rc.find(v.Html).widgets if w.tag == "span" and w.children]
    data = download(rc, "skillsim_share.csv") if any(" of " in t for t in texts) else None
    return " | ".join(texts), (pd.read_csv(io.BytesIO(data)) if data else None)


def wait_for(rc, view: View, timeout: float = 120) -> pd.DataFrame:
    """Until the page shows the finished runs of `view`."""
    want = f"{view.n_agents:,} agents: {view.replicates} of {view.replicates} replicates"
    end = time.time() + timeout
    while time.time() < end:
        text, fan = shown(rc)
        if want in text and "previous setting" not in text and fan is not None and fan["n"].max() == view.replicates:
            return fan
        time.sleep(0.2)
    raise AssertionError(f"the page did not show {want}; it shows: {shown(rc)[0]}")


def december(fan: pd.DataFrame, kind: str, year: int) -> float:
    row = fan[(fan["kind"] == kind) & (fan["date"] == f"{year}-12")]
    return float(row["median"].iloc[0])


@pytest.fixture
def page(monkeypatch):
    monkeypatch.setenv("SKILLSIM_JOBS", "1")  # tiny runs: no worker processes
    app.view.value, app.lang.value = SMALL, "en"
    box, rc = solara.render(app.Page(), handle_error=False)
    yield rc
    box.close()


def test_moving_the_training_slider_raises_the_shown_share(page):
    fan = wait_for(page, SMALL)
    # at the status quo the chosen setting is the status quo: the same runs, the same numbers
    assert december(fan, "chosen", 2027) == december(fan, "status_quo", 2027)
    slider = page.find(v.Slider, label=app.LABELS["en"]["training"]).widget
    slider.v_model = 3.0
    moved = wait_for(page, app.view.value)
    assert app.view.value.training == 3.0
    end = time.time() + 30  # the download button serves the new chart's table once it is drawn
    while time.time() < end and december(moved, "chosen", 2027) == december(fan, "chosen", 2027):
        time.sleep(0.2)
        moved = shown(page)[1]
    assert december(moved, "status_quo", 2027) == december(fan, "status_quo", 2027)  # the same seeds
    assert december(moved, "chosen", 2027) > december(moved, "status_quo", 2027) + 0.005
    text, _ = shown(page)
    assert "December 2027" in text and "difference +" in text


def test_a_bad_value_is_shown_on_the_page_and_the_page_keeps_working(page):
    wait_for(page, SMALL)
    field = page.find(v.TextField, label=app.LABELS["en"]["n_agents"]).widget
    field.v_model = "2000000000"
    field.fire_event("focusout", None)
    end = time.time() + 60
    while time.time() < end and not page.find(v.Alert).widgets:
        time.sleep(0.2)
    alerts = [str(a.children) for a in page.find(v.Alert).widgets]
    assert any("n_agents" in a and "memory" in a for a in alerts), alerts
    app.view.value = SMALL  # back to a size that fits: the page runs it
    wait_for(page, SMALL)
    assert not page.find(v.Alert).widgets


def test_the_page_speaks_chinese(page):
    wait_for(page, SMALL)
    app.lang.value = "zh"
    end = time.time() + 30
    while time.time() < end and "12月" not in shown(page)[0]:
        time.sleep(0.2)
    assert "2027年12月" in shown(page)[0]
    assert page.find(v.Slider, label=app.LABELS["zh"]["training"]).widgets


def test_the_command_and_config_reproduce_the_view():
    view = View(training=2.0, studio=0.5, n_agents=3000, replicates=4, end_year=2030)
    cmd = view.command()
    assert cmd.startswith("skillsim -m ") and "levers.training.intensity=2" in cmd and "'replicate=range(0,4)'" in cmd
    import yaml

    cfg = yaml.safe_load(view.config_yaml())
    assert cfg["levers"]["training"]["intensity"] == 2.0 and cfg["levers"]["studio"]["intensity"] == 0.5
    assert cfg["n_agents"] == 3000 and cfg["horizon"]["end_year"] == 2030
