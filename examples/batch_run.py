"""Mesa's batch_run over skillsim's lever keywords: `python examples/batch_run.py`.

Two training intensities x three replicates of Chongqing to 2030 at 20,000 agents; one row per run
(December of the end year, `data_collection_period=-1`), keyed by the parameters, with its date.
"""

from __future__ import annotations

import pandas as pd
from mesa import batch_run

from sim import WorkforceModel


def main() -> pd.DataFrame:
    rows = batch_run(WorkforceModel, {"training_intensity": [1.0, 2.0], "replicate": [0, 1, 2], "seed": 1,
                                      "n_agents": 20000, "end_year": 2030},
                     number_processes=1, data_collection_period=-1, display_progress=False)
    df = pd.DataFrame(rows)[["training_intensity", "replicate", "date", "high_skill_share", "income_median",
                             "spend_total"]]
    df = df.rename(columns={"spend_total": "spend_total_that_month"})  # a row is one month (README "Python API")
    print(df.to_string(index=False))
    print(df.groupby("training_intensity")["high_skill_share"].agg(["mean", "std"]))
    return df


if __name__ == "__main__":
    main()
