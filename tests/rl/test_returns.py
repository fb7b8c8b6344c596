import pytest
import torch

from metaloop.rl.returns import LinearFeatureBaseline, discounted_returns, gae, normalize


def test_discounted_returns_hand_computed_with_padding():
    # trajectory 0: rewards 1, 2, 3 (3 steps); trajectory 1: rewards 4, 5 then ended (pad 9 ignored)
    rewards = torch.tensor([[1.0, 4.0], [2.0, 5.0], [3.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    g = discounted_returns(rewards, 0.5, mask)
    # G0 = 1 + .5*2 + .25*3 = 2.75 ; G1 = 2 + 1.5 = 3.5 ; G2 = 3
    # G0' = 4 + .5*5 = 6.5 ; G1' = 5 ; G2' = 0
    assert torch.allclose(g, torch.tensor([[2.75, 6.5], [3.5, 5.0], [3.0, 0.0]]))


def test_gae_lambda_one_is_return_minus_value_and_lambda_zero_is_td_error():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [-1.0]])
    gamma = 0.9
    adv1 = gae(rewards, values, gamma, 1.0)
    assert torch.allclose(adv1, discounted_returns(rewards, gamma) - values)
    adv0 = gae(rewards, values, gamma, 0.0)
    # δ_t = r_t + γ V_{t+1} − V_t with V after the end = 0
    expected = torch.tensor([[1 + 0.9 * 1.0 - 0.5], [2 + 0.9 * -1.0 - 1.0], [3 - (-1.0)]])
    assert torch.allclose(adv0, expected)


def test_gae_intermediate_lambda_and_mask_by_hand():
    rewards = torch.tensor([[1.0], [1.0], [7.0]])
    values = torch.tensor([[1.0], [2.0], [100.0]])
    mask = torch.tensor([[1.0], [1.0], [0.0]])  # ended after 2 steps: the 100 must not leak in
    adv = gae(rewards, values, 1.0, 0.5, mask)
    d1 = 1.0 - 2.0  # r1 + V(after end)=0 − V1
    d0 = 1.0 + 2.0 - 1.0
    assert torch.allclose(adv, torch.tensor([[d0 + 0.5 * d1], [d1], [0.0]]))


def test_linear_baseline_recovers_linear_returns_exactly():
    torch.manual_seed(0)
    obs = torch.randn(20, 5, 2, dtype=torch.float64)
    feats = LinearFeatureBaseline.features(obs)
    w = torch.randn(feats.shape[-1], dtype=torch.float64)
    returns = feats @ w
    mask = torch.ones(20, 5, dtype=torch.float64)
    pred = LinearFeatureBaseline(reg_coeff=1e-10).fit(obs, returns, mask).predict(obs)
    assert torch.allclose(pred, returns, atol=1e-6)


def test_baseline_predict_before_fit_raises():
    with pytest.raises(ValueError, match="before fit"):
        LinearFeatureBaseline().predict(torch.zeros(3, 2, 2))


def test_normalize_ignores_padding():
    x = torch.tensor([1.0, 3.0, 1000.0])
    m = torch.tensor([1.0, 1.0, 0.0])
    out = normalize(x, m)
    assert torch.allclose(out, torch.tensor([-1.0, 1.0, 0.0]), atol=1e-6)
