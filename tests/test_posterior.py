"""The parameter-ensemble sampler (sim.studies.posterior) against known answers.

- A linear-Gaussian model has a closed-form posterior: moments y = B theta, a normal prior and a
  Gaussian likelihood. One coordinate is pinned down by its targets, one loosely, and one not at all
  (no target reads it): its posterior is the prior. A sampler that only looks near the fit reports
  that third coordinate as determined (false precision).
- The same model with frozen noise in every evaluation (as replicates under common random numbers
  carry): the emulator averages it away and still finds the analytic posterior, with the noise's
  variance in the likelihood.
- With no information at all (a flat likelihood) the ensemble is the prior: on the parameters' own
  scale, the logistic prior centred in the middle is uniform over the bounds.
- A fit far from the posterior: the prior points of the first wave find it.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sim.studies import posterior

B = np.array([[1.0, 0.0, 0.0]] * 4 + [[0.0, 1.0, 0.0]] * 4)  # eight targets, as the calibration has; theta[2] unread
OBSERVED = np.array([1.0] * 4 + [-0.5] * 4)
SIGMA = np.array([0.1] * 4 + [1.0] * 4)  # sharp, loose
PRIOR_SD = 3.0
NORMAL_PRIOR = posterior.Prior(np.zeros(3), scale=PRIOR_SD, dist="norm")
QUIET = {"log": lambda *_: None}


def analytic(var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cov = np.linalg.inv(np.eye(3) / PRIOR_SD**2 + B.T @ np.diag(1 / var) @ B)
    return cov @ (B.T @ (OBSERVED / var)), cov


def linear(th: np.ndarray) -> np.ndarray:
    return np.atleast_2d(th) @ B.T


def noisy(th: np.ndarray, tau: float = 0.1) -> np.ndarray:
    """The linear model plus noise that is a fixed function of the parameter set."""
    th = np.atleast_2d(th)
    seeds = [int(abs(hash(tuple(np.round(t, 12)))) % 2**32) for t in th]
    return th @ B.T + np.vstack([np.random.default_rng(s).normal(0, tau, len(B)) for s in seeds])


def check_members(post: dict, mean: np.ndarray, cov: np.ndarray) -> None:
    """Members' mean and sd against the analytic ones, within 4 standard errors of the chains' ESS
    (the sd's relative error sqrt(1 / (2 ESS)))."""
    members, ess = post["members"], post["ess"]
    sd = np.sqrt(np.diag(cov))
    est_mean, est_sd = members.mean(axis=0), members.std(axis=0)
    se = sd * np.sqrt(1 / ess + 1 / len(members))
    assert np.all(np.abs(est_mean - mean) < 4 * se), (est_mean, mean, se)
    assert np.all(np.abs(est_sd / sd - 1) < 4 * np.sqrt(1 / (2 * ess) + 1 / (2 * len(members)))), (est_sd, sd)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_ensemble_reproduces_the_analytic_posterior(seed):
    mean, cov = analytic(SIGMA**2)
    post = posterior.sample_posterior(linear, mean + 0.1, NORMAL_PRIOR, OBSERVED, SIGMA, np.zeros(len(B)),
                                      n_per_stage=128, stages=3, size=400, seed=seed, **QUIET)
    assert post["ess"] > 100, post["ess"]
    check_members(post, mean, cov)
    assert post["members"][:, 2].std() > 0.7 * PRIOR_SD  # the unread coordinate keeps the prior's spread
    assert np.all(post["emulator_resid_sd"] < 0.02 * SIGMA)  # a linear model is emulated (almost: the ridge)


@pytest.mark.parametrize("seed", [3, 4])
def test_the_emulator_removes_the_frozen_noise_of_evaluations(seed):
    tau = 0.1
    mean, cov = analytic(SIGMA**2 + tau**2)
    post = posterior.sample_posterior(noisy, mean + 0.1, NORMAL_PRIOR, OBSERVED, SIGMA, np.full(len(B), tau**2),
                                      n_per_stage=128, stages=3, size=400, seed=seed, **QUIET)
    assert np.all(post["emulator_resid_sd"] == pytest.approx(tau, rel=0.3))  # it measured the noise
    # the likelihood then counts the noise twice (replicate variance and emulator error): the
    # posterior is that of variance SIGMA^2 + 2 tau^2, the conservative side of the analytic one
    mean2, cov2 = analytic(SIGMA**2 + 2 * tau**2)
    check_members(post, mean2, cov2)


def test_with_no_information_the_ensemble_is_the_prior():
    """A flat likelihood: the members follow the logistic prior; centred at 0, that is uniform on (0, 1)
    after the logistic map, as the calibration's bounded parameters see it."""
    prior = posterior.Prior(np.zeros(2))
    post = posterior.sample_posterior(lambda th: np.zeros((len(np.atleast_2d(th)), 1)), np.array([1.5, -1.0]),
                                      prior, np.zeros(1), np.ones(1), np.zeros(1), n_per_stage=64, stages=2,
                                      size=400, seed=7, **QUIET)
    on_bounds = 1 / (1 + np.exp(-post["members"]))
    for j in range(2):  # uniform over the bounds: a KS test at the 0.1% level
        assert stats.kstest(on_bounds[:, j], "uniform").pvalue > 1e-3


def test_a_fit_far_from_the_posterior_is_corrected_by_the_prior_points():
    mean, cov = analytic(SIGMA**2)
    post = posterior.sample_posterior(linear, np.array([8.0, 8.0, 8.0]), NORMAL_PRIOR, OBSERVED, SIGMA,
                                      np.zeros(len(B)), n_per_stage=128, stages=3, size=400, seed=5, **QUIET)
    check_members(post, mean, cov)


def test_chain_ess_of_independent_draws_is_their_number_and_of_a_sticky_chain_far_less():
    rng = np.random.default_rng(0)
    iid = rng.standard_normal((4000, 2))
    assert posterior.chain_ess(iid, 8) == pytest.approx(4000, rel=0.15)
    sticky = np.repeat(iid[:400], 10, axis=0)  # every value held for 10 steps of one chain
    assert posterior.chain_ess(sticky, 1) < 0.2 * 4000


def test_cross_terms_only_among_the_first_coordinates():
    """The calibration emulates 37 coordinates on 640 points: cross terms only among the 13 fitted ones
    (whose interactions the targets see), squares for all. Such a response is fitted exactly; one whose
    interaction involves a later coordinate is not representable, and its residual says so."""
    rng = np.random.default_rng(11)
    th = rng.normal(size=(300, 5))
    within = 1.0 + th[:, 0] * th[:, 1] - 0.5 * th[:, 1] ** 2 + 2.0 * th[:, 4] ** 2 - th[:, 3]
    beyond = th[:, 0] * th[:, 4]
    emu = posterior.QuadraticEmulator(cross_dims=2).fit(th, np.column_stack([within, beyond]), np.ones(len(th)))
    assert emu.cross and emu.features(th).shape[1] == 1 + 5 + 3 + 3  # constant, linear, (0,0) (0,1) (1,1), squares 2-4
    # the product of independent coordinates is uncorrelated with every feature: what it explains is chance
    # (about 11 of 299 degrees of freedom, 0.04; 0.098 with this seed), against all of it with every cross term
    assert emu.r2[0] > 1 - 1e-9 and emu.r2[1] < 0.2, emu.r2
    assert posterior.QuadraticEmulator().fit(th, beyond[:, None], np.ones(len(th))).r2[0] > 1 - 1e-9
    few = posterior.QuadraticEmulator(cross_dims=2).fit(th[:30], within[:30, None], np.ones(30))
    assert not few.cross and few.features(th).shape[1] == 1 + 5 + 5  # 30 < 3 x 12 points: squares only


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow)])  # 5 s each: one in the default run
def test_unread_coordinates_added_to_the_fitted_ones_keep_their_prior(seed):
    """The ensemble's coordinates are the fitted parameters and, after them, the assumptions without a
    source, most of which no target reads: with 20 unread coordinates appended (cross terms among the
    first three only, as the calibration asks), the read ones still have the analytic posterior and each
    unread one the prior's spread (within 4 standard errors of the chains' ESS)."""
    extra = 20
    prior = posterior.Prior(np.zeros(3 + extra), scale=PRIOR_SD, dist="norm")
    mean, cov = analytic(SIGMA**2)
    post = posterior.sample_posterior(lambda th: linear(np.atleast_2d(th)[:, :3]), np.concatenate([mean + 0.1, np.zeros(extra)]),
                                      prior, OBSERVED, SIGMA, np.zeros(len(B)), n_per_stage=128, stages=4, size=400,
                                      seed=seed, cross_dims=3, **QUIET)
    ess = post["ess"]
    assert ess > 50, ess
    check_members({"members": post["members"][:, :3], "ess": ess}, mean, cov)
    sds = post["members"][:, 3:].std(axis=0)
    tol = 4 * np.sqrt(1 / (2 * ess) + 1 / (2 * 400))
    assert np.all(np.abs(sds / PRIOR_SD - 1) < tol), (sds, tol)
