"""Every command of the README's cookbook, run in README order in an empty folder (slow).

Commands run as written, except for their size: agents, horizon and replicates are cut so the whole
README runs in a few minutes (`fast`), `...` stands for a two-job sweep, a SLURM launch is composed but
not submitted (no cluster here), and calibrations get a tiny budget and never write the package's
calibration file. Anything else (a renamed option, a path that does not exist, a command that no
longer works) fails the test with the command and its stderr.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import own_preset

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SKIP = ("pip install", "python -m pytest", "python3.11 -m venv")


def readme_commands() -> list[str]:
    """Shell commands of the README's bash blocks (comments and the set-up/test lines dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line and not line.startswith("#") and not any(s in line for s in SKIP):
                out.append(line)
    return out


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def _set(args: list[str], key: str, value: str) -> list[str]:
    if any(a.startswith(f"{key}=") for a in args):
        return [f"{key}={value}" if a.startswith(f"{key}=") else a for a in args]
    return [*args, f"{key}={value}"]


def fast(line: str, k: int) -> tuple[list[str], str]:
    """The command to run for a README line, and what it checks ('run' or 'compose')."""
    args = shlex.split(line)
    tool, args = args[0], args[1:]
    if tool == "skillsim-calibrate":
        out = [] if any(a.startswith("out=") for a in args) else [f"out=results/calibration/readme_{k}"]
        return [tool, *args, "n_agents=400", "replicates=2", "max_evals=3", "draws=8", "ensemble=4",
                "write=false", *out], "run"
    if tool == "skillsim-forecast":
        return [tool, *args, "params=2", "structural=2", "replicates=2", "n_agents=1000",
                "horizon.end_year=2024"], "run"
    if tool == "skillsim-backtest":
        return [tool, *[a for a in args if not a.startswith("origins=")], "origins=2016", "n_agents=400",
                "max_evals=3", "draws=8", "ensemble=4", "params=2", "structural=2", "forecast_agents=1000"], "run"
    if tool != "skillsim" or any(a in ("--help", "--cfg") for a in args):
        return [tool, *args], "run"
    if "hydra/launcher=slurm" in args:  # no cluster: compose the launcher's config, do not submit
        return [tool, *[a for a in args if a.startswith(("hydra/launcher", "hydra.launcher"))], "--cfg", "hydra"], "compose"
    if "..." in args:
        i = args.index("...")
        args[i:i + 1] = ["scenario=baseline,no_policy", "replicate=0"]
    multirun = "-m" in args
    if multirun:
        args = [("replicate=range(0,2)" if a.startswith("replicate=range(") else
                 "draw=range(0,2)" if a.startswith("draw=range(") else a) for a in args]
        if "+experiments" in line or "+sweep" in line:
            args = _set(args, "replicate", "range(0,2)")
    full = any(a == "n_agents=5700000" for a in args)
    args = _set(args, "n_agents", "5700000" if full else "1000")
    args = _set(args, "horizon.end_year", "2023" if full or multirun else "2024")
    return [tool, *args], "run"


@pytest.mark.slow  # every README command: a few minutes on 2 cores
def test_every_readme_command_works_in_an_empty_folder(tmp_path):
    lines = readme_commands()
    assert len(lines) >= 25 and any("skillsim-rerun" in x for x in lines) and any("--config-dir" in x for x in lines)
    # the README's own region preset folder (Configuration: "Your own region")
    (tmp_path / "my_conf" / "region").mkdir(parents=True)
    (tmp_path / "my_conf" / "region" / "my_city.yaml").write_text(own_preset("my_city"), encoding="utf-8")
    ran = []
    for k, line in enumerate(lines):
        cmd, kind = fast(line, k)
        exe = BIN / cmd[0]
        proc = subprocess.run([str(exe) if exe.exists() else cmd[0], *cmd[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, f"README: {line}\nran: {shlex.join(cmd)}\n{proc.stderr[-3000:]}"
        if kind == "compose":
            assert "submitit" in proc.stdout
        ran.append(line)
    for block in python_blocks():
        proc = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"README python block:\n{block}\n{proc.stderr[-3000:]}"
    assert (tmp_path / "results" / "cq_baseline" / "report" / "report.md").exists()
    assert (tmp_path / "results" / "my_sweep" / "report_zh" / "report.md").exists()
    assert (tmp_path / "results" / "reruns" / "cq_baseline" / "series.csv").read_bytes() == \
        (tmp_path / "results" / "cq_baseline" / "series.csv").read_bytes()
    assert len(ran) == len(lines)
