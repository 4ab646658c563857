"""Strategy settings are checked when the strategy is built: ``adapt.py --set METHOD.KEY=VALUE``
promises that an unknown key or a bad value is a one-line error, not a crash mid-run, a
silently clamped value or a silently different method."""

import numpy as np
import pytest

from metanas import spaces, strategies
from metanas.cli import adapt_main

NB201 = spaces.get("nb201")

#: (method, setting, bad value, other settings it is bad with, text the message must hold)
BAD = [
    # crashed later ("range() arg 3 must not be zero", KeyError at the first model step,
    # "alpha < 0", "negative dimensions")
    ("gp-bo", "chunk_size", 0, {}, None),
    ("tnas", "chunk_size", 0, {}, None),
    ("metad2a", "batch_size", 0, {}, None),
    ("gp-bo", "encoding", "foo", {}, None),
    ("bananas", "encoding", "foo", {}, None),
    ("proxybo", "encoding", "foo", {}, None),
    ("gp-bo", "kernel", "foo", {}, None),
    ("anasod-bo", "beta0", -1, {}, None),
    ("anasod-biased-rs", "beta_max", -1, {}, None),
    ("proxybo", "n_random", -5, {}, None),
    # silently wrong
    ("gp-bo", "ucb_beta", -1, {"acquisition": "ucb"}, None),
    ("tnas", "ucb_beta", -1, {}, None),
    ("proxybo", "tau0", 0, {}, None),
    ("proxybo", "tau0", -0.5, {}, None),
    ("tnas", "adapt_lr", -1, {}, None),
    ("tnas", "adapt_lr", 0, {}, None),
    ("metad2a", "hidden", 0, {}, None),
    ("metad2a", "epochs", 0, {}, None),
    ("tnas", "adapt", "False", {}, None),  # a string: bool("False") would be True
    ("gp-bo", "standardize", "no", {}, None),
    ("gp-bo", "ucb_beta", float("nan"), {"acquisition": "ucb"}, None),
    ("gp-bo", "ucb_beta", float("inf"), {"acquisition": "ucb"}, None),
    ("bananas", "epochs", 0, {}, None),
    ("bananas", "lr", 0, {}, None),
    ("metad2a", "lr", 0, {}, None),
    ("metad2a", "layers", -1, {}, None),
    # silently clamped
    ("gp-bo", "n_init", 0, {}, None),
    ("gp-bo", "n_init", -3, {}, None),
    ("anasod-bo", "n_init", 0, {}, None),
    ("tnas", "n_init", 0, {}, None),
    ("proxybo", "n_init", 0, {}, None),
    ("bananas", "n_init", 0, {}, None),
    ("bananas", "n_init", 1, {}, None),  # was silently run as n_init=2
    ("proxybo", "proxies", {"a": 1}, {}, None),  # crashed at the first model step
    ("proxybo", "proxies", "Table", {}, "unknown proxies string 'Table'; use 'table' or 'live'"),
    ("proxybo", "proxies", ["synflow", 3], {"task": "nb201/cifar10"}, None),
    ("metad2a", "exclude_sources", "digits_live", {}, None),
    ("metad2a", "exclude_sources", ["no_such_collection"], {}, "no_such_collection"),
    ("bananas", "n_models", 0, {}, None),
    ("bananas", "n_models", 1, {}, None),
    ("anasod-bo", "pool_size", 0, {}, None),
    ("proxybo", "n_folds", 0, {}, None),
    ("proxybo", "n_folds", 1, {}, None),
    ("proxybo", "n_incumbents", 0, {}, None),
    ("anasod-biased-rs", "anneal_steps", 0, {}, None),
    ("anasod-bo", "success_tol", 0, {}, None),
    ("anasod-bo", "failure_tol", 0, {}, None),
    ("rea", "max_mutation_tries", -1, {}, None),
    ("tnas", "adapt_steps", -1, {}, None),
    ("tnas", "adapt_every", 0, {}, None),
    ("tnas", "adapt_patience", 0, {}, None),
    # more ranges and types
    ("anasod-bo", "beta_max", 0.1, {}, "beta_min"),  # below beta_min (0.125)
    ("anasod-bo", "beta_min", -1, {}, None),
    ("gp-bo", "fit_maxiter", 0, {}, None),
    ("gp-bo", "fit_ftol", 0, {}, None),
    ("anasod-bo", "fit_ftol", -1e-6, {}, None),
    ("gp-bo", "n_init", 1.5, {}, None),
    ("gp-bo", "n_init", True, {}, None),
    ("tnas", "n_init", "abc", {}, None),
    ("bananas", "acquisition", "ei", {}, None),
    ("bananas", "ucb_kappa", -1, {}, None),
    ("tnas", "adapt_prox", -1, {}, None),
    ("tnas", "explore_every", -1, {}, None),
    ("tnas", "explore_from", -1, {}, None),
    ("tnas", "residual_from", -1, {}, None),
    ("tnas", "explorer", "gp-bo", {}, None),
    ("tnas", "explorer", {"chunk_size": 0}, {}, "chunk_size"),
    ("tnas", "explorer", {"foo": 1}, {}, "foo"),
    ("metad2a", "predictor_seed", -1, {}, None),
    ("darts", "derive_samples", -1, {}, None),
    ("snas", "config", {"lr": 0}, {}, "config.lr"),
    ("darts+", "config", {"batch_size": 0}, {}, "config.batch_size"),
    ("darts", "config", {"hard": "yes"}, {}, "config.hard"),
    ("darts", "config", "fast", {}, None),
    # rejected before, still rejected
    ("rea", "population_size", -5, {}, None),
    ("rea", "tournament_size", 0, {}, None),
    ("ls", "n_init", 0, {}, None),
    ("ls", "n_restart", 0, {}, None),
    ("gp-bo", "acquisition", "nope", {}, None),
    ("tnas", "acquisition", "nope", {}, None),
    ("gp-bo", "warp", "log", {}, None),
    ("tnas", "warp", "log", {}, None),
    ("proxybo", "coverage", "everything", {}, None),
    ("darts", "steps", -1, {}, None),
    ("base", "steps", -1, {}, None),
]


def _message(exc: BaseException) -> str:
    return exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)


@pytest.mark.parametrize("method,key,value,extra,needle", BAD,
                         ids=[f"{m}.{k}={v!r}" for m, k, v, _, _ in BAD])
def test_bad_setting_fails_at_construction(method, key, value, extra, needle):
    with pytest.raises((ValueError, KeyError, TypeError)) as e:
        strategies.make(method, NB201, seed=0, **{**extra, key: value})
    msg = _message(e.value)
    assert (needle or key) in msg and "\n" not in msg


@pytest.mark.parametrize("method,key,value,needle", [
    ("gp-bo", "chunk_size", 0, "gp-bo: chunk_size must be an integer >= 1, got 0"),
    ("proxybo", "tau0", 0, "proxybo: tau0 must be a finite number > 0, got 0"),
    ("anasod-bo", "beta0", -1, "anasod-bo: beta0 must be a finite number >= 0, got -1"),
    ("gp-bo", "kernel", "foo", "gp-bo: kernel must be one of matern52, rbf, matern52-gamma"),
    ("bananas", "encoding", "foo", "bananas: encoding must be one of onehot, path, opdist, "
                                   "got 'foo'"),
])
def test_message_names_method_setting_value_and_rule(method, key, value, needle):
    with pytest.raises(ValueError, match="^" + needle.replace("(", r"\(").replace(")", r"\)")):
        strategies.make(method, NB201, seed=0, **{key: value})


@pytest.mark.parametrize("space", ["nb201", "transnas_micro"])
@pytest.mark.parametrize("method", strategies.available())
def test_defaults_construct(method, space):
    st = strategies.make(method, spaces.get(space), seed=0)
    assert st.name == method


@pytest.mark.parametrize("method,kw", [
    # the edges of the allowed ranges (values that mean something) are accepted
    ("gp-bo", dict(n_init=1, ucb_beta=0, acquisition="ucb", fit_ftol=None)),
    ("gp-bo", dict(encoding=lambda sp, a: np.zeros((len(a), 3)), kernel=lambda d: None)),
    ("gp-bo", dict(n_init=np.int64(4), chunk_size=100.0, standardize=0, warm_start=np.bool_(1))),
    ("tnas", dict(n_init=1, adapt_steps=0, adapt_prox=0, ucb_beta=0, explore_every=0,
                  explore_from=0, residual_from=0, explorer={"n_init": 3, "warp": "none"})),
    ("anasod-bo", dict(n_init=1, beta0=0, beta_min=0, beta_max=0, pool_size=1)),
    ("anasod-biased-rs", dict(beta_max=0, anneal_steps=1)),
    ("rea", dict(population_size=1, tournament_size=1, max_mutation_tries=0)),
    ("proxybo", dict(n_init=1, n_random=0, n_local=0, n_folds=2, n_incumbents=1)),
    ("bananas", dict(n_init=2, n_models=2, layers=0, ucb_kappa=0, weight_decay=0)),
    ("metad2a", dict(layers=0, min_task_archs=1, predictor_seed=0)),
    ("darts", dict(steps=2, derive_samples=0, config={"lr": 1e-4})),
    ("snas", dict(steps=1, config={"hard": True})),
])
def test_edge_values_accepted(method, kw):
    strategies.make(method, NB201, seed=0, **kw)


def test_accepted_values_stored_as_before():
    st = strategies.make("gp-bo", NB201, seed=0, n_init=np.int64(4), chunk_size=100.0,
                         ucb_beta=3, standardize=0)
    assert (st.n_init, st.chunk_size, st.ucb_beta, st.standardize) == (4, 100, 3.0, False)
    assert type(st.n_init) is int and type(st.chunk_size) is int and type(st.ucb_beta) is float
    assert strategies.make("bananas", NB201, seed=0, n_init=2).n_init == 2
    tn = strategies.make("tnas", NB201, seed=0, residual_from=0, explore_from=1)
    assert (tn.residual_from, tn.explore_from) == (2, 2)


def test_proxybo_without_random_candidates_proposes_local_ones():
    """``n_random=0``: the candidates are the local ones only (it used to slip in up to ten
    random archs)."""
    from metanas.spaces.encodings import opdist
    from metanas.strategies.proxybo import FunctionProvider

    prov = FunctionProvider({"op1": lambda sp, a: opdist(sp, a)[:, 1]})
    st = strategies.make("proxybo", NB201, seed=0, proxies=prov, n_init=3, n_random=0,
                         n_local=5, fit_maxiter=10)
    assert st._random(0, set()) == []
    archs = st.ask(3)
    st.tell(archs, [1.0, 2.0, 3.0])
    assert len(st.ask(2)) == 2 and st.last_step["Q"] <= 5


def test_gp_kernel_names_match_surrogate():
    from metanas.strategies._checks import GP_KERNELS
    from metanas.surrogates.gp import KERNELS

    assert GP_KERNELS == KERNELS


@pytest.mark.parametrize("setting,needle", [
    ("gp-bo.chunk_size=0", "gp-bo: chunk_size must be an integer >= 1, got 0"),
    ("gp-bo.encoding=foo", "gp-bo: encoding must be one of"),
    ("gp-bo.standardize=False", "gp-bo: standardize must be true or false, got 'False'"),
])
def test_cli_reports_bad_value_in_one_line(setting, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        adapt_main(["--method", "gp-bo", "--set", setting, "--budget", "5", "--seeds", "1",
                    "--output", str(tmp_path / "a.json"), "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err
    assert not (tmp_path / "a.json").exists()
