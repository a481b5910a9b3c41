#!/usr/bin/env bash
# Goal-seek with Hydra's Optuna sweeper: the training and studio intensities that reach a 35%
# high-skill share in Chongqing by 2030 at the least cost. Each trial scores
#   share(Dec 2030) - 0.002 x spend 2023-2030 (billion yuan) - 10 x shortfall below 35%,
# averaged over 2 replicates that every trial shares (common random numbers); maximise it.
# Needs the `experiments` extra: pip install -e ".[experiments]"
set -euo pipefail
skillsim -m hydra/sweeper=optuna hydra.sweeper.direction=maximize \
  hydra.sweeper.n_trials="${TRIALS:-24}" hydra.sweeper.n_jobs=2 hydra.sweeper.sampler.seed=1 \
  'levers.training.intensity=interval(0,3)' 'levers.studio.intensity=interval(0,3)' \
  n_agents="${AGENTS:-20000}" horizon.end_year=2030 \
  objective.metric=high_skill_share objective.cost_weight=0.002 objective.target=0.35 objective.penalty=10 \
  objective.replicates=2 hydra.sweep.dir="${OUT:-results/sweeps/goal_seek}"
# The best settings and value: $OUT/optimization_results.yaml; every trial's run: $OUT/runs.csv.
