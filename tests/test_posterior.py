"""The parameter-ensemble sampler (sim.studies.posterior) against known answers.

- A linear-Gaussian model has a closed-form posterior: moments y = A theta, a normal prior and a
  Gaussian likelihood. One coordinate is pinned down by its target, one partly, and one not at all (no
  target reads it): its posterior is the prior. A sampler that only looks near the fit reports that
  third coordinate as determined (false precision).
- With no information at all (a flat likelihood) the ensemble is the prior: on the parameters' own
  scale, the logistic prior centred in the middle is uniform over the bounds.
- A fit far from the posterior: the prior component still finds it (a sampler without it does not).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.studies import posterior

A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # theta[2] is read by no target
OBSERVED = np.array([1.0, -0.5])
SIGMA = np.array([0.2, 2.0])  # sharp, loose
PRIOR_SD = 3.0
NORMAL_PRIOR = posterior.Prior(np.zeros(3), scale=PRIOR_SD, dist="norm")
QUIET = {"log": lambda *_: None}


def analytic() -> tuple[np.ndarray, np.ndarray]:
    prec = np.eye(3) / PRIOR_SD**2 + A.T @ np.diag(1 / SIGMA**2) @ A
    cov = np.linalg.inv(prec)
    return cov @ (A.T @ (OBSERVED / SIGMA**2)), cov


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_importance_weights_reproduce_the_analytic_posterior(seed):
    mean, cov = analytic()
    post = posterior.sample_posterior(lambda th: th @ A.T, mean + 0.1, NORMAL_PRIOR, OBSERVED, SIGMA, np.zeros(2),
                                      n_per_stage=256, stages=5, spread=0.3, size=200, seed=seed, **QUIET)
    thetas, ess = post["thetas"], post["ess"]
    assert ess > 50, ess
    w = np.exp(post["log_weight"] - post["log_weight"].max())
    w /= w.sum()
    est_mean = w @ thetas
    est_sd = np.sqrt(w @ (thetas - est_mean) ** 2)
    sd = np.sqrt(np.diag(cov))
    # standard errors of a weighted mean and sd with `ess` effective draws; 4 of them as tolerance
    assert np.all(np.abs(est_mean - mean) < 4 * sd / np.sqrt(ess)), (est_mean, mean)
    assert np.all(np.abs(est_sd / sd - 1) < 4 / np.sqrt(2 * ess)), (est_sd, sd)
    members = thetas[post["resampled"]]  # the stored ensemble says the same
    assert members[:, 2].std() > 0.6 * PRIOR_SD
    assert members[:, 0].std() < 0.5


def test_with_no_information_the_ensemble_is_the_prior():
    """A flat likelihood: the members follow the logistic prior; centred at 0, that is uniform on (0, 1)
    after the logistic map, as the calibration's bounded parameters see it."""
    prior = posterior.Prior(np.zeros(2))
    post = posterior.sample_posterior(lambda th: np.zeros((len(th), 1)), np.array([1.5, -1.0]), prior,
                                      np.zeros(1), np.ones(1), np.zeros(1), n_per_stage=256, stages=3,
                                      size=400, seed=7, **QUIET)
    on_bounds = 1 / (1 + np.exp(-post["thetas"][post["resampled"]]))
    for j in range(2):  # uniform over the bounds: a KS test at the 0.1% level
        assert stats.kstest(on_bounds[:, j], "uniform").pvalue > 1e-3


def test_a_fit_far_from_the_posterior_is_corrected_by_the_prior_draws():
    """Every weight is at most likelihood x prior / (share x prior): finite, and the prior draws find
    the posterior far from a bad fit. Without the prior component the ensemble stays at the bad fit."""
    far = np.array([8.0, 8.0, 8.0])
    kw = dict(n_per_stage=64, stages=3, spread=0.3, size=20, seed=4, **QUIET)
    post = posterior.sample_posterior(lambda th: th @ A.T, far, NORMAL_PRIOR, OBSERVED, SIGMA, np.zeros(2), **kw)
    assert np.all(np.isfinite(post["log_weight"]))
    best = post["thetas"][np.argmax(post["log_weight"])]
    assert abs(best[0] - 1.0) < 0.6
    blind = posterior.sample_posterior(lambda th: th @ A.T, far, NORMAL_PRIOR, OBSERVED, SIGMA, np.zeros(2),
                                       prior_share=0.0, **kw)
    assert abs(blind["thetas"][np.argmax(blind["log_weight"])][0] - 1.0) > 2  # the control: it fails


def test_tempering_keeps_the_requested_effective_sample_size():
    rng = np.random.default_rng(0)
    log_lik = -0.5 * rng.chisquare(3, 500) * 40  # a sharp likelihood: few draws carry the weight
    beta = posterior.tempered_beta(np.zeros(500), log_lik, 100)
    assert 0 < beta < 1
    assert posterior.effective_sample_size(beta * log_lik) == pytest.approx(100, rel=0.01)
    assert posterior.tempered_beta(np.zeros(500), np.zeros(500), 100) == 1.0
