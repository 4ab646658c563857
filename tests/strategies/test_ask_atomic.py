"""``Strategy.ask`` is atomic: a proposal that fails after drawing from the strategy's generator
leaves the generator, the method's state and ``pending`` as they were, so the retried ``ask``
proposes what a run without the failure proposes."""

import json

import pytest

from metanas.strategies.base import Strategy
from strategy_toys import LinearToy
from test_strategies_contract import make


class _Flaky(Strategy):
    """Uniform proposals; the first ``fail`` calls draw from ``self.rng`` (and mark an arch
    pending) and then raise, or return one arch too many with ``short=False``."""

    name = "flaky"

    def __init__(self, space, seed=0, fail=1, mode="raise"):
        super().__init__(space, seed=seed)
        self.fail, self.mode = fail, mode

    def _propose(self, n):
        out = self.sample_unseen(n)
        if self.fail:
            self.fail -= 1
            if self.mode == "raise":
                self.pending.append(out[0])  # a half-done proposal: undone too
                raise RuntimeError("surrogate failed")
            return out + self.sample_unseen(1, exclude=set(out))  # wrong length
        return out


def _fail_once(monkeypatch, obj, attr):
    """Make ``obj.attr`` run (drawing from the generator) and then raise, once."""
    orig = getattr(obj, attr)
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        out = orig(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("proposal failed")
        return out

    monkeypatch.setattr(obj, attr, flaky)
    return calls


def _step(st, ev, n):
    batch = st.ask(n)
    st.tell(batch, [e.value for e in ev.evaluate(batch)])
    return batch


@pytest.mark.parametrize("mode,error", [("raise", "surrogate failed"),
                                        ("length", "proposed 4 archs, asked for 3")])
def test_failed_ask_leaves_rng_and_pending(mode, error):
    ev = LinearToy()
    st = _Flaky(ev.space, seed=5, mode=mode)
    fresh = _Flaky(ev.space, seed=5, fail=0)
    with pytest.raises(RuntimeError, match=error):
        st.ask(3)
    assert st.pending == []
    assert st.ask(3) == fresh.ask(3)
    assert st.rng.bit_generator.state == fresh.rng.bit_generator.state
    assert st.pending == fresh.pending


@pytest.mark.parametrize("name,attr,rounds", [
    ("rs", "_propose", 4), ("rea", "_propose", 4), ("rea", "_child", 4), ("ls", "_propose", 4),
    ("gp-bo", "_propose", 4), ("gp-bo", "pick_greedy", 4), ("tnas", "_initial", 1),
    ("tnas", "_propose", 4), ("tnas", "pick_greedy", 4)])
def test_failed_ask_retry_matches_unfailed_run(name, attr, rounds, monkeypatch):
    """A proposal fails once after drawing (REA: while mutating; ``pick_greedy``: after the
    model fit drew its seed and cached hyper-parameters / an adaptation; TNAS ``_initial``:
    in its random initial design); the run then goes on exactly as a twin that never
    failed."""
    ev, ev2 = LinearToy(), LinearToy()
    st, twin = make(name, ev.space, seed=2), make(name, ev.space, seed=2)
    for _ in range(rounds):
        assert _step(st, ev, 2) == _step(twin, ev2, 2)
    pend = st.ask(1)  # pending while the failing ask runs
    assert twin.ask(1) == pend
    calls = _fail_once(monkeypatch, st, attr)
    with pytest.raises(RuntimeError, match="proposal failed"):
        st.ask(3)
    assert calls["n"] == 1 and st.pending == pend
    assert st.ask(3) == twin.ask(3)
    for s_, e_ in ((st, ev), (twin, ev2)):
        s_.tell(s_.pending, [e.value for e in e_.evaluate(s_.pending)])
    for _ in range(2):
        assert _step(st, ev, 2) == _step(twin, ev2, 2)
    assert json.dumps(st.state_dict()) == json.dumps(twin.state_dict())
