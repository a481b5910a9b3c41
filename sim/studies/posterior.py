"""Parameter uncertainty: an ensemble of behavioural parameter sets consistent with the targets.

Method: sampling-importance-resampling around the simulated-method-of-moments fit, with adaptive
proposals (adaptive multiple importance sampling, Cornuet et al. 2012), in the calibration's logit
coordinates.
Why this and not ABC-SMC or history matching: with 13 parameters, a handful of targets and about a
second per evaluation, ABC-SMC needs tens of thousands of runs and history matching an emulator per
wave; importance sampling around a fit that is already there needs a few hundred runs, and its
effective sample size says plainly how well the proposal covered the posterior.

1. Stage 1 draws from a normal around the fit (scale `spread` logit units per parameter; scrambled
   Sobol points mapped through the normal quantile, so the draws fill the space evenly).
2. Each later stage draws from a normal with the weighted mean and (inflated) covariance of all the
   draws so far (adaptive multiple importance sampling).
3. Every draw is weighted by prior x synthetic likelihood / mixture proposal (deterministic-mixture
   weights over all stages). The synthetic likelihood is Gaussian in the standardised gaps, with the
   target's own sigma plus the model's replicate variance of the mean (pooled from the fit check).
   The prior is the calibration's weak pull: normal in logit coordinates, variance 1 / (2 x 0.05).
   Where even the best fit misses the targets by more than their sigmas (reduced chi-square above
   1), the variances are scaled by that reduced chi-square: the usual allowance for model
   discrepancy, without which the ensemble would claim the model is exactly right at its best fit.
4. `size` sets are drawn by systematic resampling; each keeps its weight's provenance.

Identification: for each parameter the ratio of the posterior's 90% width to the prior's, on the
natural scale (1: the targets say nothing about it; near 0: pinned down).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

PRIOR_PULL = 0.05  # the objective's pull towards the assumed values (sim.studies.calibrate)


def _proposal_logpdf(theta: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return stats.multivariate_normal(mean, cov, allow_singular=True).logpdf(theta)


def normal_draws(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """n draws of N(mean, cov) from scrambled Sobol points (space-filling, reproducible)."""
    d = mean.size
    u = qmc.Sobol(d, scramble=True, seed=seed).random(n)
    z = stats.norm.ppf(np.clip(u, 1e-9, 1 - 1e-9))
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(d))
    return mean + z @ chol.T


def log_likelihood(sim_mean: np.ndarray, observed: np.ndarray, sigma: np.ndarray, model_var: np.ndarray) -> np.ndarray:
    """Gaussian synthetic log-likelihood of each row of simulated moment means."""
    var = sigma**2 + model_var
    return -0.5 * np.sum((sim_mean - observed) ** 2 / var, axis=1)


def log_prior(theta: np.ndarray, theta0: np.ndarray) -> np.ndarray:
    return -PRIOR_PULL * np.sum((theta - theta0) ** 2, axis=1)


def systematic_resample(weights: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of `size` draws by systematic resampling (low variance, reproducible)."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    u0 = np.random.default_rng(seed).random() / size
    positions = u0 + np.arange(size) / size
    return np.minimum(np.searchsorted(np.cumsum(w), positions), w.size - 1)


def effective_sample_size(log_w: np.ndarray) -> float:
    w = np.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / np.sum(w**2))


def sample_posterior(evaluate, theta_hat: np.ndarray, theta0: np.ndarray, observed: np.ndarray,
                     sigma: np.ndarray, model_var: np.ndarray, *, n_per_stage: int = 128, stages: int = 4,
                     spread: float = 0.3, size: int = 100, seed: int = 0, discrepancy: float = 1.0,
                     log=print) -> tuple:
    """Adaptive multiple importance sampling (AMIS; Cornuet et al. 2012).

    `evaluate(thetas) -> simulated moment means` (rows). Stage 1 draws around the fit; each later
    stage draws from a normal with the weighted mean and 1.5 x the weighted covariance of all draws so
    far (plus a small floor); every draw is then weighted against the mixture of all the stages'
    proposals (deterministic-mixture weights). Returns (thetas, log_weights, sim_means, stages,
    resampled indices, effective sample size).
    """
    d = theta_hat.size
    sigma = sigma * np.sqrt(discrepancy)
    model_var = model_var * discrepancy
    proposals = [(theta_hat, np.eye(d) * spread**2)]
    thetas = np.empty((0, d))
    sims = np.empty((0, observed.size))
    stage_of = np.empty(0, dtype=int)
    lw = np.empty(0)
    for k in range(stages):
        mean, cov = proposals[-1]
        th = normal_draws(n_per_stage, mean, cov, seed + k)
        thetas = np.vstack([thetas, th])
        sims = np.vstack([sims, evaluate(th)])
        stage_of = np.concatenate([stage_of, np.full(n_per_stage, k + 1)])
        mix = np.logaddexp.reduce([_proposal_logpdf(thetas, m, c) for m, c in proposals], axis=0) \
            - np.log(len(proposals))
        lw = log_prior(thetas, theta0) + log_likelihood(sims, observed, sigma, model_var) - mix
        ess = effective_sample_size(lw)
        log(f"posterior stage {k + 1}: {thetas.shape[0]} draws in all, effective sample size {ess:.1f}")
        w = np.exp(lw - lw.max())
        new_mean = np.average(thetas, axis=0, weights=w)
        new_cov = np.cov(thetas.T, aweights=w) if ess >= 2 else cov * 0.5
        proposals.append((new_mean, 1.5 * new_cov + np.eye(d) * 0.03**2))
    idx = systematic_resample(np.exp(lw - lw.max()), size, seed + 100)
    return thetas, lw, sims, stage_of, idx, effective_sample_size(lw)


def identification(names: list[str], posterior_values: np.ndarray, prior_values: np.ndarray,
                   ess: float = float("inf")) -> pd.DataFrame:
    """Posterior against prior 90% width per parameter (natural scale); undetermined when the
    effective sample size is too small to tell."""
    rows = []
    for j, name in enumerate(names):
        post = np.quantile(posterior_values[:, j], [0.05, 0.5, 0.95])
        prior = np.quantile(prior_values[:, j], [0.05, 0.95])
        width_ratio = (post[2] - post[0]) / max(prior[1] - prior[0], 1e-12)
        rows.append({"parameter": name, "posterior_q05": post[0], "posterior_median": post[1],
                     "posterior_q95": post[2], "prior_q05": prior[0], "prior_q95": prior[1],
                     "width_ratio": width_ratio,
                     "identified": ("undetermined (effective sample size below 10)" if ess < 10 else
                                    "well" if width_ratio < 0.33 else "partly" if width_ratio < 0.75 else "weakly")})
    return pd.DataFrame(rows)


def members_table(names: list[str], values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(values, columns=names)
    df.insert(0, "member", np.arange(len(df)))
    return df

