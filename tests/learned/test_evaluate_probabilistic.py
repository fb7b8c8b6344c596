"""`evaluate` reads a probabilistic regressor's MSE and NLL from one forward pass per episode."""

import pytest
import torch

from metaloop import metrics
from metaloop.algorithms import get_algorithm
from metaloop.evaluate import evaluate
from metaloop.learned.bar_distribution import quantile_bin_edges

SMALL = dict(d_model=16, heads=2, layers=1, ff=32)


def learners():
    gaussian = get_algorithm("incontext")(**SMALL)
    binned = get_algorithm("incontext")(output="binned", bins=12, **SMALL)
    binned.model.set_bin_edges(quantile_bin_edges(torch.linspace(-5, 5, 501).sin(), 12))
    cnp = get_algorithm("cnp")()
    npl = get_algorithm("np")(samples=4)
    return {"gaussian": gaussian, "binned": binned, "cnp": cnp, "np": npl}


@pytest.mark.parametrize("name", ["gaussian", "binned", "cnp", "np"])
def test_one_forward_per_episode_and_the_same_numbers(sine_batch, name):
    torch.manual_seed(0)
    alg = learners()[name].double()
    b = sine_batch(3, shots=5, queries=4, dtype=torch.float64)
    episodes = [b[i] for i in range(3)]
    calls = []  # module calls anywhere in the network (NP samples through model.predictive)
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in alg.model.modules()]
    with torch.no_grad():
        alg.predict(alg.adapt(episodes[0].support_x, episodes[0].support_y), episodes[0].query_x)
    per_pass, calls[:] = len(calls), []
    result = evaluate(alg, episodes)
    for h in hooks:
        h.remove()
    assert per_pass > 0 and len(calls) == 3 * per_pass, f"{len(calls) / per_pass} passes for 3 episodes"
    mses, nlls = [], []
    with torch.no_grad():  # the two-call reference: predict, then the predictive
        for ep in episodes:
            adapted = alg.adapt(ep.support_x, ep.support_y)
            mses.append(metrics.mse(alg.predict(adapted, ep.query_x), ep.query_y))
            if name == "binned":
                nlls.append(float(alg.predictive(adapted, ep.query_x).nll(ep.query_y)))
            else:
                mean, var = alg.predict_distribution(adapted, ep.query_x)
                nlls.append(metrics.gaussian_nll(mean, var, ep.query_y))
    assert result.mean == pytest.approx(sum(mses) / 3, rel=1e-12)
    assert result.extra["nll"][0] == pytest.approx(sum(nlls) / 3, rel=1e-12)
