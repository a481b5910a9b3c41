"""What a sweep job returns to its sweeper: the objective (for Hydra's Optuna or Nevergrad sweepers).

Set with the `objective.*` keys of the composed config, which sit outside the model's RunConfig (they
do not change what runs, only what a job reports):

    skillsim -m hydra/sweeper=optuna hydra.sweeper.direction=maximize hydra.sweeper.n_trials=40 \\
        'levers.training.intensity=interval(0,3)' 'levers.studio.intensity=interval(0,3)' \\
        objective.metric=high_skill_share objective.year=2030 objective.cost_weight=0.01 \\
        objective.target=0.35 objective.penalty=10 objective.replicates=3

value = mean over replicates of [ metric in December of `year`
                                  - cost_weight x cumulative spend (funder `cost_funder`, billion yuan) to then
                                  - penalty x max(0, target - metric) ]
so maximise it. `metrics: [a, b]` returns one value per metric instead (for multi-objective samplers,
with `hydra.sweeper.direction=[maximize,minimize]`); a `spend_*` metric is summed from the start to
December of `year` (yuan). Replicates 0..replicates-1 are the same in every trial (common random
numbers), so trials differ by their settings, not their luck; replicate 0 is the job's written run, and
the sweep's runs.csv keeps the means of the terms over all of them (objective_metric, objective_spend_bn,
objective_shortfall, with objective_replicates), from which the objective is worked out again.
A failed job returns None, which Optuna's sweeper records as a failed trial without stopping the study
(NaN would stop it: hydra-optuna-sweeper 1.3 with optuna 2.10 then tells a failed trial a value).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from .lazy import pd

FUNDERS = ("total", "government", "employer")


@dataclass
class ObjectiveParams:
    """The `objective` node of the composed config (see the module docstring)."""

    metric: str = "high_skill_share"
    year: int | None = None  # default: the run's end year
    cost_weight: float = 0.0  # per billion yuan of cumulative spend
    cost_funder: str = "total"
    target: float | None = None
    penalty: float = 0.0
    replicates: int = 1
    metrics: list[str] = field(default_factory=list)  # several values, for multi-objective samplers


def parse(data: dict | None) -> ObjectiveParams:
    """ObjectiveParams from the composed `objective` node (OmegaConf has checked the types)."""
    from .errors import ConfigError

    data = dict(data or {})
    known = {f.name for f in dataclasses.fields(ObjectiveParams)}
    for key in data:
        if key not in known:
            raise ConfigError(f"objective.{key}", data[key], "a known key: " + ", ".join(sorted(known)))
    data["metrics"] = list(data.get("metrics") or [])
    return ObjectiveParams(**data)


def _check(p: ObjectiveParams, columns: list[str]) -> None:
    from .errors import ConfigError

    for name in (p.metrics or [p.metric]):
        if name not in columns:
            raise ConfigError("objective.metric", name, "a column of the monthly series: " + ", ".join(columns))
    if p.cost_funder not in FUNDERS:
        raise ConfigError("objective.cost_funder", p.cost_funder, "one of " + ", ".join(FUNDERS))
    if p.replicates < 1:
        raise ConfigError("objective.replicates", p.replicates, "an integer >= 1")
    # an infinite weight made every trial's objective -inf (reported as the best), a NaN one failed the whole
    # sweep after its jobs as "a bug", and a NaN target was dropped without a word
    for key in ("cost_weight", "penalty"):  # negative ones penalise under direction=minimize
        value = getattr(p, key)
        if not math.isfinite(value):
            raise ConfigError(f"objective.{key}", value, "a finite number")
    if p.target is not None and not math.isfinite(p.target):
        raise ConfigError("objective.target", p.target, "a finite number (the metric's value to reach)")
    if p.target is not None and "_share" in p.metric and not 0.0 <= p.target <= 1.0:  # high_skill_share_workforce too
        # 1.5 of a share: every trial short by at least 0.5, the penalty the same for all (a user trial)
        raise ConfigError("objective.target", p.target, f"a share in [0, 1], as {p.metric} is")


def check(data: dict | None) -> ObjectiveParams:
    """Parse and check the `objective` node against the monthly series' columns (at start-up)."""
    from .metrics import column_names

    p = parse(data)
    _check(p, column_names())
    return p


def spend(series: pd.DataFrame, funder: str) -> pd.Series:
    """Monthly spend of one funder (or the total), yuan."""
    if funder == "total":
        return series["spend_total"]
    return series[[c for c in series.columns if c.startswith("spend_") and c.endswith("_" + funder)]].sum(axis=1)


def values(series: pd.DataFrame, p: ObjectiveParams, year: int) -> list[float]:
    """The objective's value(s) for one run's monthly series (start state first, as series.csv)."""
    _check(p, [c for c in series.columns if c != "date"])
    upto = series[series["date"] <= f"{year}-12"]
    if upto.empty or upto["date"].iloc[-1] != f"{year}-12":
        from .errors import ConfigError

        raise ConfigError("objective.year", year, f"a year the run reaches ({series['date'].iloc[0][:4]}-"
                                                  f"{series['date'].iloc[-1][:4]})")
    flows = upto.iloc[1:]  # money spent in the months simulated, not in the start state

    def at(name: str) -> float:
        return float(flows[name].sum()) if name.startswith("spend_") else float(upto[name].iloc[-1])

    if p.metrics:
        return [at(m) for m in p.metrics]
    v, cost, shortfall = _terms(flows, p, at(p.metric))
    return [v - p.cost_weight * cost - p.penalty * shortfall]


def _terms(flows: pd.DataFrame, p: ObjectiveParams, v: float) -> tuple[float, float, float]:
    """The metric, the spend in billion yuan and the shortfall below the target of one run."""
    cost = float(spend(flows, p.cost_funder).sum()) / 1e9
    return v, cost, (max(0.0, p.target - v) if p.target is not None else 0.0)


def terms(series: pd.DataFrame, p: ObjectiveParams, year: int) -> tuple[float, float, float]:
    """`values`' three terms of one run (a single metric's objective): metric (a `spend_*` metric summed
    over the months, as `values` takes it), spend (bn yuan), shortfall."""
    values(series, p, year)  # its checks
    upto = series[series["date"] <= f"{year}-12"]
    flows = upto.iloc[1:]
    v = float(flows[p.metric].sum()) if p.metric.startswith("spend_") else float(upto[p.metric].iloc[-1])
    return _terms(flows, p, v)


def job_objective(data: dict | None, cfg, series: pd.DataFrame) -> float | list[float]:
    """The value a sweep job returns (`job_evaluation`'s value)."""
    return job_evaluation(data, cfg, series)[0]


def job_evaluation(data: dict | None, cfg, series: pd.DataFrame) -> tuple[float | list[float], dict]:
    """The value a sweep job returns, and what it is made of: `series` is the job's written run; further
    replicates (common random numbers: 1..replicates-1 in every trial) run in memory and are written
    nowhere, so the means of the objective's terms over them are kept with the value (runs.csv:
    objective_metric - cost_weight x objective_spend_bn - penalty x objective_shortfall = objective)."""
    from .model import WorkforceModel

    p = parse(data)
    year = p.year if p.year is not None else cfg.horizon.end_year
    series_all = [series]
    for k in range(1, p.replicates):
        series_all.append(WorkforceModel(dataclasses.replace(cfg, replicate=cfg.replicate + k)).run().series())
    runs = [values(s, p, year) for s in series_all]
    mean = [sum(r[i] for r in runs) / len(runs) for i in range(len(runs[0]))]
    detail: dict = {"replicates": len(runs)}
    if not p.metrics:
        parts = [terms(s, p, year) for s in series_all]
        detail.update({name: sum(t[i] for t in parts) / len(parts)
                       for i, name in enumerate(("metric", "spend_bn", "shortfall"))})
    return (mean if len(p.metrics) > 1 else mean[0]), detail  # one metric, listed or not: one number


def record_path(job_dir) -> Path:
    """Where a job's objective is kept: hidden beside its folder (the folder itself is sealed by its
    manifest), one file per job, so concurrent workers never write the same file."""
    job_dir = Path(job_dir)
    return job_dir.parent / f".objective-{job_dir.name}.json"


def record(job_dir, data: dict | None, value, error: str | None = None, detail: dict | None = None) -> None:
    """Keep the value a job returned to its sweeper, with the metric names, for runs.csv (best effort:
    the sweeper has the value already). `error`: why the job's objective could not be had (its run
    finished, so its status stays ok): runs.csv then says so instead of leaving the value out."""
    import json
    import os

    p = parse(data)
    names = p.metrics or [p.metric]
    rec = {"metrics": names, "error": error} if error is not None else {
        "metrics": names, "values": value if isinstance(value, list) else [value], "detail": detail or {}}
    path = record_path(job_dir)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(rec), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def recorded(job_dir) -> dict[str, float | str]:
    """The recorded objective as runs.csv columns: `objective`, or `objective_<metric>` for each of
    several; for a job whose objective failed, those columns empty and `objective_error` saying why;
    {} if the job has none (a sweep whose sweeper does not use it)."""
    import json

    try:
        rec = json.loads(record_path(job_dir).read_text(encoding="utf-8"))
        names = list(rec["metrics"])
        if rec.get("error") is not None:
            cols = ["objective"] if len(names) == 1 else [f"objective_{n}" for n in names]
            return {c: float("nan") for c in cols} | {"objective_error": str(rec["error"])}
        values = [float(v) for v in rec["values"]]
        detail = {f"objective_{k}": float(v) for k, v in (rec.get("detail") or {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    if len(values) == 1:
        return {"objective": values[0], **detail}
    return {f"objective_{n}": v for n, v in zip(names, values)} | detail


def failed(data: dict | None) -> None:
    """What a failed job returns: None, a failed trial for Optuna (see the module docstring)."""
    return None
