"""The explorer (skillsim-explore): its page rendered in-process with Solara's test renderer, a lever
slider moving the shown figures the right way, a bad value shown on the page, and (slow) the real
server in headless Chromium, with the exported command reproducing the shown numbers."""

from __future__ import annotations


import dataclasses
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
    from sim.explorer.engine import progress_text

    want = progress_text(view, view.replicates)
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


@pytest.mark.slow  # about 16 s alone; the fast suite keeps under 3 minutes
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
    # the right way: up, on the same seeds (0.45 points at 2027 here, above 0.5 with the previous ensemble,
    # whose draws did not carry the training lever's own assumptions, some with a slow gain: a fixed 0.5
    # said more than the test knows)
    assert december(moved, "chosen", 2027) > december(moved, "status_quo", 2027)
    text, _ = shown(page)
    # the shares are medians and the difference is the mean of the paired differences: said as such (a
    # planner read 44.1% - 37.1% beside "+5.7" as an arithmetic error)
    assert "December 2027: median high-skill share" in text and "mean of the paired differences (same seeds) +" in text


@pytest.mark.slow  # eight runs behind the page, about 9 s (the fast suite keeps under 3 minutes)
def test_choosing_a_scenario_shows_and_runs_its_lever_settings(monkeypatch, request):
    """studio_expansion is studios x2: the studio slider shows 2, the command carries no intensity of
    its own (the preset's is run), and the page's figures move: twice the studio spend, and the chosen
    fan is the scenario's own. Not a higher share: under the calibration of 2026-12-03, doubling the
    studios moves a 1,000-agent run's 2027 share by -0.3 to +0.9 points from one replicate to the next."""
    monkeypatch.setenv("SKILLSIM_JOBS", "1")
    app.view.value, app.lang.value = dataclasses.replace(SMALL, replicates=1), "en"
    box, page = solara.render(app.Page(), handle_error=False)
    request.addfinalizer(box.close)
    select = page.find(v.Select, label=app.LABELS["en"]["scenario"]).widget
    select.v_model = "studio_expansion"
    chosen = app.view.value
    assert chosen.scenario == "studio_expansion" and chosen.studio == 2.0 and chosen.training == 1.0
    slider = page.find(v.Slider, label=app.LABELS["en"]["studio"]).widget
    end = time.time() + 10  # the page re-renders on the thread that set the view; under load it can lag
    while time.time() < end and slider.v_model != 2.0:
        time.sleep(0.05)
    assert slider.v_model == 2.0
    assert "levers.studio.intensity" not in chosen.command()
    # The default view's page (chosen = status quo) shows the same progress text as the scenario's once
    # it has finished, so wait until the costs show the scenario's studios, then read its fan.
    end = time.time() + 60
    while True:
        wait_for(page, chosen)
        costs = pd.read_csv(io.BytesIO(download(page, "skillsim_cost.csv")))
        studio = costs[costs["lever"] == "studio"].groupby("kind")["cumulative_yuan"].sum()
        if 1.8 < studio["chosen"] / studio["status_quo"] < 2.2 or time.time() > end:
            break
        time.sleep(0.2)
    assert 1.8 < studio["chosen"] / studio["status_quo"] < 2.2
    fan = wait_for(page, chosen)
    # the scenario's own fan: its monthly medians differ from the status quo's somewhere (one December of a
    # 1,000-agent run can hold the same counts by chance: the studio pace of 2026-12-07 gave 2027 exactly so)
    share = fan[fan["metric"] == "high_skill_share"].pivot(index="date", columns="kind", values="median")
    assert (share["chosen"] != share["status_quo"]).any()


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://localhost:8765/"), ("::1", "http://localhost:8765/"),
                                       ("localhost", "http://localhost:8765/"), ("0.0.0.0", "http://0.0.0.0:8765/"),
                                       ("::", "http://[::]:8765/"), ("10.1.2.3", "http://10.1.2.3:8765/")])
def test_the_page_is_given_at_localhost_for_this_machine(host, url):
    """Solara's session cookie is set for `localhost`: this machine's page is given by that name (the
    browser test checks the cookie warning is gone); other addresses as they are, IPv6 in brackets."""
    from sim.explorer.cli import page_url

    assert page_url(host, 8765) == url


def test_an_unexpected_error_is_shown_on_the_page_in_one_line(monkeypatch):
    """A fault that is not a SkillsimError is said in the page's alert (type and message), not lost."""
    def broken(view, update, cancelled=None):
        raise RuntimeError("the engine broke\non two lines")

    monkeypatch.setattr(app, "compute", broken)
    app.view.value, app.lang.value = SMALL, "en"
    box, rc = solara.render(app.Page(), handle_error=False)
    try:
        end = time.time() + 5
        while time.time() < end and not rc.find(v.Alert).widgets:
            time.sleep(0.05)
        alerts = [" ".join(map(str, a.children)) for a in rc.find(v.Alert).widgets]
        assert alerts == ["Not run: RuntimeError: the engine broke on two lines"], alerts
    finally:
        box.close()


@pytest.mark.slow  # in-process too, but it runs the page three times
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


def test_every_slider_shows_its_value_on_its_own_steps_so_the_untouched_page_is_the_status_quo(page):
    """A browser snaps a slider's value to its steps and sends it back: the studio-places slider (steps of
    0.5) turned the default 17.4 into 17.5, so the untouched page compared a changed setting against the
    status quo (and its command carried members_per_studio=17.5). Every slider's value lies on its grid,
    and a value sent back with float noise is the view's own."""
    for w in page.find(v.Slider).widgets:
        k = (w.v_model - w.min) / w.step
        assert abs(k - round(k)) < 1e-9, (w.label, w.v_model, w.min, w.step)
    members = page.find(v.Slider, label=app.LABELS["en"]["members"]).widget
    members.v_model = 5 + 124 * 0.1  # 17.400000000000002, as a browser's arithmetic may send 17.4
    assert app.view.value.members_per_studio == SMALL.members_per_studio == 17.4


@pytest.mark.slow
def test_the_page_speaks_chinese(page):
    wait_for(page, SMALL)
    app.lang.value = "zh"
    end = time.time() + 30
    while time.time() < end and "12月" not in shown(page)[0]:
        time.sleep(0.2)
    assert "2027年12月" in shown(page)[0]
    assert page.find(v.Slider, label=app.LABELS["zh"]["training"]).widgets


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_the_command_and_study_file_reproduce_the_view(tmp_path):
    """The shown command and the exported study file compose to the view's own settings (a preset's
    levers moved by hand included), and sweep the same draws."""
    import shlex

    import yaml

    from sim.cli import compose_config
    from sim.config import to_dict
    from sim.explorer.engine import EXPERIMENT_NAME, chosen_config, with_preset

    view = dataclasses.replace(with_preset(View(scenario="training_boost", n_agents=3000, replicates=4,
                                                end_year=2030)), studio=0.5, allocation="random")
    want = to_dict(chosen_config(view))
    assert want["levers"]["training"]["intensity"] == 2.0 and want["levers"]["studio"]["intensity"] == 0.5
    assert want["levers"]["training"]["allocation"] == "random" and want["n_agents"] == 3000

    cmd = shlex.split(view.command())
    assert cmd[:2] == ["skillsim", "-m"] and cmd[-1] == f"{view.over}=range(0,4)"
    assert to_dict(compose_config(cmd[2:-1])) == want

    text = view.experiment_yaml()
    assert text.startswith("# @package _global_\n")
    assert yaml.safe_load(text)["hydra"]["sweeper"]["params"] == {view.over: "range(0,4)"}
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / f"{EXPERIMENT_NAME}.yaml").write_text(text)
    run = [line.split("#", 1)[1].strip() for line in text.splitlines() if "skillsim -m --config-dir" in line][0]
    assert run == f"skillsim -m --config-dir views +experiments={EXPERIMENT_NAME}"
    # what `skillsim -m --config-dir DIR +experiments=...` composes (the folder joins the search path)
    got = compose_config([f"hydra.searchpath=[file://{tmp_path}]", f"+experiments={EXPERIMENT_NAME}"])
    assert to_dict(got) == want


@pytest.mark.slow
def test_the_server_serves_a_page_that_headless_chromium_draws(tmp_path):
    """skillsim-explore serves the page; headless Chromium (Debian's, installed by .ci/run) loads it,
    moves the training slider by keyboard, and the charts are drawn (not blank); the page's exported
    command, run with skillsim, gives the share the page shows."""
    import re
    import shutil
    import socket
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from matplotlib.image import imread
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "Debian's chromium and chromium-driver are needed (.ci/run installs them)"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = Path(sys.executable).parent
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    server = subprocess.Popen([str(bin_dir / "skillsim-explore"), "--port", str(port), "--n-agents", "1000",
                               "--replicates", "2", "--end-year", "2027", "--cache-dir", str(cache)], cwd=work,
                              stderr=open(tmp_path / "server.log", "w"))  # a file: a full pipe would block it
    url = f"http://localhost:{port}/"
    browser = None
    try:
        end = time.time() + 60
        while time.time() < end:
            if f"serving on {url} " not in (tmp_path / "server.log").read_text():
                time.sleep(0.2)  # the address the explorer gives the user is the one loaded here
                continue
            try:
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with urllib.request.urlopen(url, timeout=10) as page:  # the title shown before its script runs: Solara's
            assert "<title>skillsim explorer</title>" in page.read().decode("utf-8", "replace")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200"):
            options.add_argument(arg)
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
        browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        browser.get(url)
        wait = WebDriverWait(browser, 180, poll_frequency=0.5)

        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException

        def summary_after(previous: str | None, command_has: str = "", waiting=wait) -> str:
            """The summary of the next finished view that differs from `previous` (and whose exported
            command holds `command_has`)."""
            def ready(b):
                body = b.find_element(By.TAG_NAME, "body").text
                done = " agents: 2 of 2 " in body and "previous setting" not in body
                found = b.find_elements(By.CLASS_NAME, "skillsim-summary")
                text = found[0].text if found else ""
                commands = [e.text for e in b.find_elements(By.TAG_NAME, "pre") if "skillsim -m" in e.text]
                return text if done and text and text != previous and command_has in " ".join(commands) else False

            try:
                return waiting.until(ready)
            except TimeoutException:  # say what the page showed instead
                body = browser.find_element(By.TAG_NAME, "body").text
                raise AssertionError(f"the page never showed a finished view; it shows:\n{body[-3000:]}\n"
                                     f"server log:\n{(tmp_path / 'server.log').read_text()[-3000:]}") from None

        def training_slider() -> float:
            thumb = browser.find_elements(By.CSS_SELECTOR, "[role=slider]")[0]  # training, the first slider
            return float(thumb.get_attribute("aria-valuenow"))

        first = summary_after(None)
        assert training_slider() == 1.0
        # +0.1 a key press: training 1 -> 2. Under load the page can lose a press (1 run in 13 here ended
        # at 1.9; the README names this as a known weakness, its cause not pinned down). The user sees the
        # value on the thumb and presses again; so does this test, up to three times, and then requires
        # the finished view of exactly 2.
        for attempt in range(3):
            for _ in range(40):
                try:
                    value = round(training_slider(), 6)
                    if value == 2.0:
                        break
                    key = Keys.ARROW_RIGHT if value < 2.0 else Keys.ARROW_LEFT
                    browser.find_elements(By.CSS_SELECTOR, "[role=slider]")[0].send_keys(key)
                except StaleElementReferenceException:  # re-rendered between finding and pressing
                    continue
            assert round(training_slider(), 6) == 2.0
            try:
                moved = summary_after(first, "levers.training.intensity=2 ",
                                      WebDriverWait(browser, 60 if attempt < 2 else 180, poll_frequency=0.5))
                break
            except AssertionError:
                if attempt == 2:
                    raise
        share = lambda text: float(re.search(r"high-skill share ([0-9.]+)% with", text).group(1))  # noqa: E731
        # the page ran the new setting (its exported command says so, above) and shows its figure; whether
        # training x2 raises a 1,000-agent, two-replicate 2027 share is the runs' noise (37.7% then 37.6% on
        # 2026-12-07): the direction is the model's, checked over seeds in tests/test_model.py
        assert 0 < share(moved) < 100 and 0 < share(first) < 100 and moved != first
        assert "[object Object]" not in browser.find_element(By.TAG_NAME, "body").text  # drop-downs show labels
        images = [i for i in browser.find_elements(By.TAG_NAME, "img") if i.size["height"] > 100]
        assert len(images) >= 4
        browser.save_screenshot(str(tmp_path / "page.png"))
        chart = imread(io.BytesIO(images[0].screenshot_as_png))[..., :3]
        assert (chart.mean(axis=2) < 0.9).mean() > 0.02 and chart.std() > 0.05  # drawn, not blank
        command = next(e.text for e in browser.find_elements(By.TAG_NAME, "pre") if "skillsim -m" in e.text)
        assert "levers.training.intensity=2 " in command  # exactly 2 (the next override follows)
        # each chart's PNG and CSV and the study file are buttons the browser shows and downloads (with
        # ipyvuetify 3 the buttons were never drawn: empty containers, nothing to click)
        buttons = {b.text.upper(): b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip()}
        assert sum(": PNG" in t for t in buttons) >= 4 and sum(": CSV" in t for t in buttons) >= 4, list(buttons)
        csv_button = next(b for t, b in buttons.items() if t.startswith("HIGH-SKILL SHARE") and t.endswith("CSV"))
        browser.execute_script("arguments[0].scrollIntoView()", csv_button)
        csv_button.click()
        got = downloads / "skillsim_share.csv"
        end = time.time() + 60
        while not got.exists() and time.time() < end:
            time.sleep(0.3)
        table = pd.read_csv(got)
        assert {"kind", "date", "median"} <= set(table.columns) and (table["date"] == "2027-12").any()
        failed = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not failed, failed  # every script and style served locally
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=60)
        log = (tmp_path / "server.log").read_text()
        assert "Could not load URL" not in log, log[-2000:]  # nothing fetched from the network
        assert "samesite" not in log.lower(), log[-2000:]  # no cookie warning at the address it gives
    assert f"cache folder {cache}" in log and not list(work.iterdir())  # it wrote only in its cache folder
    import shlex

    args = shlex.split(command)
    run = subprocess.run([str(bin_dir / "skillsim"), *args[1:], "hydra.sweep.dir=sweep"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    ens = pd.read_csv(tmp_path / "sweep" / "ensemble.csv")
    row = ens[(ens["metric"] == "high_skill_share") & (ens["date"] == "2027-12")]
    assert f"{100 * float(row['median'].iloc[0]):.1f}" == f"{share(moved):.1f}", (row, moved)


def test_the_server_writes_only_in_its_cache_folder(tmp_path, monkeypatch):
    """skillsim-explore's set-up (not the server) points every library that writes files into
    --cache-dir; a variable the user set is kept."""
    import os
    import socket
    import tempfile

    from sim.explorer import cli

    for var in [*cli.CACHE_ENV, cli.VIEW_ENV]:
        monkeypatch.setenv(var, "")  # restored after the test, whatever set-up sets
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mine"))
    monkeypatch.delenv("SKILLSIM_CACHE_DIR")  # unset: the shared histories went to ~/.cache/skillsim
    monkeypatch.setattr(tempfile, "tempdir", tempfile.tempdir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = cli.parse(["--port", str(port), "--cache-dir", str(tmp_path / "cache")])
    cli.setup(args)
    cache = (tmp_path / "cache").resolve()
    assert os.environ["MPLCONFIGDIR"] == str(tmp_path / "mine")
    for var in ("NUMBA_CACHE_DIR", "JOBLIB_TEMP_FOLDER", "TMPDIR", "SOLARA_HOME", "SKILLSIM_CACHE_DIR"):
        assert os.environ[var].startswith(str(cache) + os.sep) and os.path.isdir(os.environ[var]), var
    assert tempfile.gettempdir() == os.environ["TMPDIR"]
    monkeypatch.setenv("SKILLSIM_CACHE_DIR", "")  # the user turned skillsim's caches off: kept off
    cli.use_cache_dir(cache)
    assert os.environ["SKILLSIM_CACHE_DIR"] == ""


@pytest.mark.parametrize("args,says", [
    (["--end-year", "2020"], "--end-year 2020 is invalid; allowed: 2026-2035"),  # the page showed 2026
    (["--end-year", "2040"], "--end-year 2040 is invalid; allowed: 2026-2035"),
    (["--replicates", "50"], "--replicates 50 is invalid; allowed: 1-32 (the page's slider)"),  # the page ran 32
    # the page's box takes any whole number from 1: this said "at least 100 agents (the page's slider)"
    (["--n-agents", "0"], "--n-agents 0 is invalid; allowed: a whole number of agents, at least 1"),
    (["--host", "999.1.1.1"], "--host 999.1.1.1 cannot be listened on here"),  # it blamed the port
])
def test_a_first_view_the_page_cannot_show_or_a_bad_host_is_refused_in_one_line(args, says, capsys):
    from sim.explorer import cli

    with pytest.raises(SystemExit) as exc:
        cli.parse(args + ["--port", "8899"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and says in err[0], err


def test_a_newer_view_cancels_the_rest_of_an_older_one(monkeypatch):
    """compute() stops between runs once cancelled: after the first update no further runs start. Counted
    as the runs asked of run_pairs at the first update and at the end (the status quo's runs cached by
    earlier views make the first step two runs long: a count of reads depended on earlier tests)."""
    import collections
    import threading

    from sim.explorer import engine

    monkeypatch.setenv("SKILLSIM_JOBS", "1")
    asked: list = []
    real, here = engine.run_pairs, threading.current_thread()

    def counted(configs, *a, **k):  # this test's runs only: an earlier test's page may still be computing
        if threading.current_thread() is here:
            asked.extend(configs)
        return real(configs, *a, **k)

    monkeypatch.setattr(engine, "run_pairs", counted)
    at_update: list[int] = []

    def update(res, text):
        at_update.append(len(asked))  # a newer view arrives as the first answer is shown

    view = View(n_agents=1000, replicates=6, end_year=2026)
    out = engine.compute(view, update, cancelled=lambda: bool(at_update))
    assert out is None and at_update == [len(asked)]  # nothing asked after the first update
    monkeypatch.setattr(engine, "_status_quo", collections.OrderedDict())  # a fresh explorer: nothing cached
    asked.clear()
    at_update.clear()
    assert engine.compute(view, update, cancelled=lambda: bool(at_update)) is None
    assert at_update == [4] and len(asked) == 4  # runs 0 and 1, each chosen and status quo


def fake_run(months: int, workers, spend, share: float = 0.3) -> dict:
    """A run's series as engine.read_series gives it, from the start (2025-12) for `months` months;
    workers(t) and spend(t) give month t's high-skill workers and total spend (t = 0: the start)."""
    from sim.explorer.engine import FUNDERS, LEVER_KINDS

    dates = ["2025-12"] + [f"{2026 + m // 12}-{m % 12 + 1:02d}" for m in range(months)]
    t = range(len(dates))
    run = {"date": dates, "high_skill_share": [share + 0.001 * i for i in t],
           "high_skill_workers": [float(workers(i)) for i in t], "income_mean": [60000.0 + 10 * i for i in t],
           "income_median": [55000.0] * len(dates), "spend_total": [float(spend(i)) for i in t]}
    run.update({f"level_{k}": [1000.0 / (k + 1)] * len(dates) for k in range(8)})
    run.update({f"spend_{lever}_{funder}": [float(spend(i)) / 8 for i in t]
                for lever in LEVER_KINDS for funder in FUNDERS})
    return run


def test_the_cost_per_additional_worker_chart_has_the_known_answer():
    """Two runs on common draws: run 0 spends 10 more a month and adds 1 high-skill worker a month over
    the status quo (10 yuan a worker), run 1 spends 40 more and adds 2 (20 a worker); the chart's CSV
    gives each December the median 15 and 50% band 12.5-17.5 (the start's spend not counted); a setting
    that adds no workers gives no numbers and says so on the chart."""
    from sim.explorer import charts
    from sim.explorer.engine import Result

    base = fake_run(24, lambda t: 1000, lambda t: 100)
    chosen = [fake_run(24, lambda t, a=a: 1000 + a * t, lambda t, e=e: 999 if t == 0 else 100 + e)
              for a, e in ((1, 10), (2, 40))]
    res = Result(SMALL, 1000, {"chosen": chosen, "status_quo": [base, base]}, final=True)
    fig, data = dict(charts.CHARTS)["cost_per_worker"](res, {"label_en": "Testland"}, "en")
    csv = pd.read_csv(io.StringIO(data.to_csv(index=False)))
    assert list(csv["date"]) == ["2026-12", "2027-12"]
    assert list(csv["adding"]) == [2, 2] and list(csv["n"]) == [2, 2]
    assert csv["median"].tolist() == pytest.approx([15.0, 15.0])
    assert csv["q25"].tolist() == pytest.approx([12.5, 12.5]) and csv["q75"].tolist() == pytest.approx([17.5, 17.5])
    assert csv["extra_spend_mean"].tolist() == pytest.approx([12 * 25, 24 * 25])  # (10 + 40) / 2 a month
    assert csv["extra_workers_mean"].tolist() == pytest.approx([12 * 1.5, 24 * 1.5])

    same = Result(SMALL, 1000, {"chosen": [base, base], "status_quo": [base, base]}, final=True)
    fig, data = dict(charts.CHARTS)["cost_per_worker"](same, {"label_en": "Testland"}, "en")
    assert data["median"].isna().all() and (data["adding"] == 0).all()
    said = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "adds no high-skill workers" in said


def test_the_page_in_chinese_shows_no_english(monkeypatch, request):
    """In Chinese every word the page shows is Chinese: controls, drop-down options (their values
    unchanged), progress, '(previous setting)', the summary, downloads and an error's prefix. The
    page is shown a made-up result (no runs) and then an agent count beyond the memory limit; one chart
    is drawn (the charts' own words are charts.TEXT, drawn in Chinese by test_the_page_speaks_chinese)."""
    import ipywidgets

    from sim.explorer import charts
    from sim.explorer.engine import Result, TooBig

    def fake(view, update, cancelled=None):
        runs = [fake_run(24, lambda t: 1000 + t, lambda t: 100 + (t > 0) * 10)] * 2
        base = [fake_run(24, lambda t: 1000, lambda t: 100)] * 2
        update(Result(dataclasses.replace(view, training=2.0), 1000, {"chosen": runs, "status_quo": base}, True), 2)
        raise TooBig(view.n_agents, 9.0, 4.0)

    monkeypatch.setattr(app, "compute", fake)
    monkeypatch.setattr(charts, "CHARTS", charts.CHARTS[-1:])
    app.view.value, app.lang.value = SMALL, "zh"
    box, rc = solara.render(app.Page(), handle_error=False)
    request.addfinalizer(box.close)

    def widgets(value, seen: set) -> list:
        """Every widget under `value` (the finder stops at a match: a walk of its own)."""
        if isinstance(value, (list, tuple)):
            return [w for x in value for w in widgets(x, seen)]
        if isinstance(value, dict):
            return widgets(list(value.values()), seen)
        if not isinstance(value, ipywidgets.Widget) or id(value) in seen:
            return []
        seen.add(id(value))
        return [value, *widgets([getattr(value, k) for k in value.keys if k != "layout"], seen)]

    def texts() -> list[str]:
        out = []
        for w in widgets(rc.find(ipywidgets.Widget).widgets, set()):
            if getattr(w, "tag", None) == "pre":
                continue  # the skillsim command: identifiers, the same in both languages
            for name in ("label", "hint", "placeholder", "description"):
                if isinstance(getattr(w, name, None), str):
                    out.append(getattr(w, name))
            out += [c for c in getattr(w, "children", []) or [] if isinstance(c, str)]
            out += [i["title"] if isinstance(i, dict) else str(i) for i in getattr(w, "items", []) or []]
        return out

    end = time.time() + 10
    while time.time() < end and not (rc.find(v.Alert).widgets and any("12月" in t for t in texts())):
        time.sleep(0.05)
    page = " | ".join(texts())
    for english in ("agents:", " of 2 ", "first look", "previous setting", "December", "high-skill", "Not run",
                    "config error", "is invalid", "allowed", "fits in memory", "intensity", "Reproduce", "study file",
                    "share:", "composition", "Baseline", "Training boost", "Chongqing", "Zhong County", "China",
                    "lowest", "nearest", "random", "progressing", "horizon", "region", "scenario"):
        assert english not in page, (english, page)
    for chinese in ("培训强度", "（上一设置）", "1,000个主体：已完成2/2次", "2027年12月", "未运行：配置错误：n_agents",
                    "内存能容纳的规模", "基准情景（现行政策）", "忠县", "重庆", "低等级优先", "进步最快者",
                    "每增加一名高技能人才的成本：PNG", "用 skillsim 复现"):
        assert chinese in page, (chinese, page)
    select = rc.find(v.Select, label=app.LABELS["zh"]["allocation"]).widget
    assert [i["value"] for i in select.items] == ["random", "lowest_level", "near_standard"]


def fake_result():
    """A made-up result of two runs a setting (no model runs), as the charts draw it."""
    from sim.explorer.engine import Result

    runs = [fake_run(24, lambda t: 1000 + 3 * t, lambda t: 100 + (t > 0) * 10)] * 2
    base = [fake_run(24, lambda t: 1000 + t, lambda t: 100)] * 2
    return Result(SMALL, 1000, {"chosen": runs, "status_quo": base}, final=True)


def test_a_charts_png_has_the_resolution_asked_for_whatever_the_process_settings_say():
    """png_bytes draws at the figure's own resolution (what the page shows) or at the one asked for
    (downloads), also while the process's savefig.dpi says otherwise (the reports' settings say 300:
    savefig's default would follow them, as solara.FigureMatplotlib did)."""
    import matplotlib
    from PIL import Image

    for key, fig, _ in app.draw_all(fake_result(), "en"):
        with matplotlib.rc_context({"savefig.dpi": 300}):
            shown, download = app.png_bytes(fig), app.png_bytes(fig, app.DOWNLOAD_DPI)
        for png, dpi in ((shown, fig.dpi), (download, app.DOWNLOAD_DPI)):
            assert Image.open(io.BytesIO(png)).size == (round(fig.get_figwidth() * dpi),
                                                        round(fig.get_figheight() * dpi)), (key, dpi)


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_the_page_shows_each_charts_png_and_downloads_it_sharper(monkeypatch, request):
    """The page's images are the charts' PNGs at the figure's resolution (what solara.FigureMatplotlib
    showed), the same bytes as drawing the result again; a chart's PNG download is at DOWNLOAD_DPI."""
    import ipywidgets
    from PIL import Image

    res = fake_result()
    monkeypatch.setattr(app, "compute", lambda view, update, cancelled=None: update(res, 2))
    app.view.value, app.lang.value = SMALL, "en"
    box, rc = solara.render(app.Page(), handle_error=False)
    request.addfinalizer(box.close)
    end = time.time() + 20
    while time.time() < end and len(rc.find(ipywidgets.Image).widgets) < len(app.charts.CHARTS):
        time.sleep(0.05)
    shown = [w.value for w in rc.find(ipywidgets.Image).widgets]
    expected = app.shown_charts(res, "en")
    assert shown == [png for _, png, _, _ in expected]
    fan = download(rc, "skillsim_share.png")
    assert fan is not None and fan == expected[0][2]()
    dpi = app.draw_all(res, "en")[0][1].dpi
    assert Image.open(io.BytesIO(fan)).size[0] == round(Image.open(io.BytesIO(shown[0])).size[0] * app.DOWNLOAD_DPI / dpi)


def test_the_share_chart_draws_each_target_once_and_says_whose_it_is():
    """China's preset target is the national one: it was drawn and listed twice. A region preset's
    own target (Chongqing's 35% by 2030 is an assumption in its preset) is labelled as the preset's."""
    import matplotlib.pyplot as plt

    from sim.explorer.charts import fan_chart
    from sim.explorer.engine import chosen_config

    for region, labels in (("national", ["national target 33.3% by 2025"]),
                           ("chongqing", ["the region preset's target 35% by 2030", "national target 33.3% by 2025"])):
        res = fake_result()
        res.view = dataclasses.replace(res.view, region=region)
        fig, _ = fan_chart(res, dataclasses.asdict(chosen_config(res.view, n_agents=1000).region), "en")
        lines = [h for h in fig.axes[0].get_lines() if "target" in h.get_label()]
        assert [h.get_label() for h in lines] == labels, region
        plt.close(fig)


def test_a_bad_values_allowed_range_is_said_in_chinese_where_the_words_are_the_checks_usual_ones():
    """A Chinese page showed a config error's "allowed" part in English. The checks' usual phrases
    (sim.config.range_text) are now given in Chinese; an unusual phrase stays as it is."""
    from sim.errors import ConfigError

    cases = {"an integer, a number >= 1": "整数，不小于 1 的数", "a number in [0, 100]": "[0, 100] 之间的数",
             "a finite number, a number in (0, 1]": "有限的数，(0, 1] 之间的数", "true or false": "true 或 false",
             "a number <= 5": "不大于 5 的数", "a date YYYY-MM": "a date YYYY-MM"}
    for en, zh in cases.items():
        assert app.error_text(ConfigError("k", 0, en), "zh") == f"配置错误：k = 0 无效；允许：{zh}"
        assert app.error_text(ConfigError("k", 0, en), "en").endswith(f"allowed: {en}")


def test_a_first_view_beyond_the_memory_limit_is_refused_before_the_server_starts(tmp_path, monkeypatch, capsys):
    """--n-agents 100000000 started the server, whose page then refused the view (a user trial)."""
    import argparse

    from sim.explorer import cli, engine

    monkeypatch.setattr(engine, "memory_limit_gb", lambda: 0.5)  # the same on any machine
    args = argparse.Namespace(region="chongqing", n_agents=5_000_000, replicates=2, end_year=2027)
    with pytest.raises(SystemExit) as exc:
        cli.refuse_a_first_view_too_big(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("skillsim-explore: --n-agents 5000000 is invalid; allowed: a size that fits in memory "
                             "(this one needs about ") and err[0].endswith("the explorer allows 0.5 GB)"), err
    cli.refuse_a_first_view_too_big(argparse.Namespace(**{**vars(args), "n_agents": 1000}))  # fits: nothing said
    # beyond the config's own limit (max_memory_gb), which the composition checks first: a traceback before
    with pytest.raises(SystemExit) as exc:
        cli.refuse_a_first_view_too_big(argparse.Namespace(**{**vars(args), "n_agents": 999_999_999}))
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith(
        "skillsim-explore: --n-agents 999999999 is invalid; allowed: at most about"), err


def test_solaras_cookie_warning_for_a_page_opened_by_another_name_is_not_printed(recwarn):
    """Opening the page at 127.0.0.1 or by the machine's name printed twelve lines about iframes and https
    on every load (a user trial). The filter matches the start of Solara's own text, so a change there shows."""
    import inspect
    import warnings

    from solara.server import starlette as solara_starlette

    from sim.explorer import cli

    assert cli.COOKIE_WARNING in inspect.getsource(solara_starlette)  # still Solara's words
    with warnings.catch_warnings():
        cli.quiet_cookie_warning()
        warnings.warn(cli.COOKIE_WARNING + ", but according to the asgi framework, the scheme is 'http'", UserWarning)
        warnings.warn("another warning", UserWarning)
    said = [str(w.message) for w in recwarn]
    assert "another warning" in said and not any(m.startswith(cli.COOKIE_WARNING) for m in said), said
