import pytest
import torch
from torch.func import functional_call

from metaloop.rl import MAMLRL, GaussianMLPPolicy, Navigation2DFamily
from metaloop.rl.policies import expand_params, params_of
from metaloop.rl.trpo import flatten, trust_region_step, unflatten


def _setup(tasks=2, rollouts=4, horizon=6, seed=0):
    torch.manual_seed(seed)
    fam = Navigation2DFamily(horizon=horizon)
    policy = GaussianMLPPolicy(2, 2, (8, 8), init_std=0.1).double()
    learner = MAMLRL(policy, fam, inner_lr=0.5, rollouts=rollouts)
    gen = torch.Generator().manual_seed(seed)
    goals = fam.sample_tasks(tasks, gen).double()
    return learner, policy, goals, gen


def _loop_inner_loss(policy, params, traj, adv, i):
    """Reference: task i alone, no vmap: −mean over valid steps of log π(a|s) Â."""
    mean, log_std = functional_call(policy, params, (traj.obs[:, i],))
    dist = torch.distributions.Normal(mean, log_std.exp())
    logp = dist.log_prob(traj.actions[:, i]).sum(-1)
    m = traj.mask[:, i]
    return -(logp * adv[:, i] * m).sum() / m.sum()


def test_batched_inner_step_equals_per_task_loop():
    learner, policy, goals, gen = _setup(tasks=3)
    theta = {k: v.detach().requires_grad_() for k, v in params_of(policy).items()}
    traj, adv = learner.sample(expand_params(theta, 3), goals, 4, gen)
    adapted = learner.adapt(expand_params(theta, 3), traj, adv, 0.5, create_graph=False)
    for i in range(3):
        loss = _loop_inner_loss(policy, theta, traj, adv, i)
        grads = torch.autograd.grad(loss, list(theta.values()))
        for (k, v), g in zip(theta.items(), grads, strict=True):
            assert torch.allclose(adapted[k][i], v - 0.5 * g, atol=1e-12), k


def test_meta_gradient_is_second_order_against_finite_differences():
    learner, policy, goals, gen = _setup()
    batch = learner.collect(goals, gen)
    theta = {k: v.detach().requires_grad_() for k, v in params_of(policy).items()}
    names = list(theta)
    loss, _ = learner.objective(theta, batch, create_graph=True)
    grad = flatten(torch.autograd.grad(loss, [theta[k] for k in names]))
    loss_fo, _ = learner.objective(theta, batch, create_graph=False)
    grad_fo = flatten(torch.autograd.grad(loss_fo, [theta[k] for k in names]))
    v = torch.randn(grad.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    eps = 1e-6
    base = flatten([theta[k] for k in names]).detach()

    def f(vec):
        th = {k: t.detach().requires_grad_() for k, t in unflatten(vec, theta).items()}
        return float(learner.objective(th, batch, create_graph=False)[0].detach())

    fd = (f(base + eps * v) - f(base - eps * v)) / (2 * eps)
    assert float(grad @ v) == pytest.approx(fd, rel=1e-5, abs=1e-9)
    # dropping the second-order term gives a measurably different directional derivative
    assert abs(float(grad_fo @ v) - fd) > 1e3 * abs(float(grad @ v) - fd)


def test_two_inner_steps_use_their_own_step_sizes_and_stay_second_order():
    torch.manual_seed(0)
    fam = Navigation2DFamily(horizon=6)
    policy = GaussianMLPPolicy(2, 2, (8, 8), init_std=0.1).double()
    learner = MAMLRL(policy, fam, inner_lr=[0.5, 0.25], inner_steps=2, rollouts=4)
    gen = torch.Generator().manual_seed(0)
    goals = fam.sample_tasks(2, gen).double()
    batch = learner.collect(goals, gen)
    theta = {k: v.detach().requires_grad_() for k, v in params_of(policy).items()}
    # the post-update rollouts were drawn from θ adapted with 0.5, then 0.25, on the two pre batches
    p = expand_params(theta, 2)
    for (traj, adv), lr in zip(batch.pre, [0.5, 0.25], strict=True):
        p = learner.adapt(p, traj, adv, lr, create_graph=False)
    assert torch.allclose(learner._dist(p, batch.post).loc, batch.old.loc, atol=1e-12)
    names = list(theta)
    loss, _ = learner.objective(theta, batch, create_graph=True)
    grad = flatten(torch.autograd.grad(loss, [theta[k] for k in names]))
    v = torch.randn(grad.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    base = flatten([theta[k] for k in names]).detach()

    def f(vec):
        th = {k: t.detach().requires_grad_() for k, t in unflatten(vec, theta).items()}
        return float(learner.objective(th, batch, create_graph=False)[0].detach())

    fd = (f(base + 1e-6 * v) - f(base - 1e-6 * v)) / 2e-6
    assert float(grad @ v) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_every_step_objective_averages_the_surrogates_after_each_inner_step():
    torch.manual_seed(0)
    fam = Navigation2DFamily(horizon=6)
    policy = GaussianMLPPolicy(2, 2, (8, 8), init_std=0.1).double()
    learner = MAMLRL(policy, fam, inner_lr=[0.5, 0.25], inner_steps=2, rollouts=4,
                     meta_objective="every_step")
    gen = torch.Generator().manual_seed(0)
    goals = fam.sample_tasks(2, gen).double()
    batch = learner.collect(goals, gen)
    assert len(batch.pre_old) == 1
    theta = {k: v.detach().requires_grad_() for k, v in params_of(policy).items()}
    # at the sampling policy every ratio is 1 and every KL 0
    loss0, kl0 = learner.objective(theta, batch, create_graph=True)
    assert float(kl0.detach()) == pytest.approx(0.0, abs=1e-12)
    assert float(loss0.detach()) == pytest.approx(0.0, abs=1e-10)  # normalised advantages, ratio 1
    # away from it: the mean of the step-1 surrogate (on the rollouts drawn after step 1) and the
    # step-2 surrogate (on the post-update rollouts), each written out here
    shifted = {k: (v + 0.01 * torch.randn_like(v)).detach().requires_grad_() for k, v in theta.items()}

    def by_hand(params, traj, adv, old):
        dist = learner._dist(params, traj)
        acts = traj.task_first(traj.actions)
        ratio = torch.exp(dist.log_prob(acts).sum(-1) - old.log_prob(acts).sum(-1))
        m = traj.task_first(traj.mask)
        return (-(ratio * traj.task_first(adv) * m).sum((1, 2)) / m.sum((1, 2))).mean()

    p1 = learner.adapt(expand_params(shifted, 2), *batch.pre[0], 0.5, create_graph=False)
    p2 = learner.adapt(p1, *batch.pre[1], 0.25, create_graph=False)
    expected = 0.5 * (by_hand(p1, *batch.pre[1], batch.pre_old[0])
                      + by_hand(p2, batch.post, batch.post_advantages, batch.old))
    loss, kl = (t.detach() for t in learner.objective(shifted, batch, create_graph=False))
    assert float(loss) == pytest.approx(float(expected.detach()), rel=1e-10)
    last = MAMLRL(policy, fam, inner_lr=[0.5, 0.25], inner_steps=2, rollouts=4)
    assert float(last.objective(shifted, batch, False)[0].detach()) == pytest.approx(
        float(by_hand(p2, batch.post, batch.post_advantages, batch.old).detach()), rel=1e-10)
    assert float(kl) > 0


def test_kl_is_zero_with_zero_gradient_at_the_sampling_policy():
    learner, policy, goals, gen = _setup()
    batch = learner.collect(goals, gen)
    theta = {k: v.detach().requires_grad_() for k, v in params_of(policy).items()}
    loss, kl = learner.objective(theta, batch, create_graph=True)
    assert float(kl.detach()) == pytest.approx(0.0, abs=1e-12)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-10)  # normalised advantages, ratio 1
    g = flatten(torch.autograd.grad(kl, list(theta.values())))
    assert g.abs().max() < 1e-10


def test_trust_region_step_is_the_natural_gradient_scaled_to_the_kl_radius():
    # quadratic KL 0.5 (x-x0)' F (x-x0) and linear loss g'x: the step is -F^-1 g scaled so that
    # 0.5 s' F s = max_kl, which needs CG to solve F s = g exactly (6 iterations, 6 unknowns)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=gen, dtype=torch.float64)
    fisher = a @ a.T + 6 * torch.eye(6, dtype=torch.float64)
    g = torch.randn(6, generator=gen, dtype=torch.float64)
    x0 = torch.zeros(6, dtype=torch.float64)
    params = {"x": x0.clone().requires_grad_(True)}

    def loss_kl(p):
        d = p["x"] - x0
        return p["x"] @ g, 0.5 * d @ fisher @ d

    loss, kl = loss_kl(params)
    new, info = trust_region_step(
        loss, kl, params, lambda p: tuple(float(t) for t in loss_kl(p)), max_kl=1e-2,
        cg_iters=6, cg_damping=0.0, ls_backtrack=0.99)
    natural = torch.linalg.solve(fisher, g)
    expected = -natural * torch.sqrt(2e-2 / (natural @ fisher @ natural))
    assert info["accepted"] == 1.0
    step = new["x"] - x0
    assert torch.allclose(step / step.norm(), expected / expected.norm(), atol=1e-8)


def test_meta_step_respects_trust_region_and_improves_surrogate():
    learner, policy, goals, gen = _setup(rollouts=6, horizon=10)
    learner.trpo["max_kl"] = 1e-3
    before = {k: v.detach().clone() for k, v in policy.named_parameters()}
    info = learner.meta_step(goals, gen)
    assert info["accepted"] == 1.0
    assert info["kl"] < 1e-3 and info["loss_after"] < info["loss_before"]
    moved = sum(float((v.detach() - before[k]).abs().sum()) for k, v in policy.named_parameters())
    assert moved > 0


def test_evaluate_adaptation_shape_and_reproducibility():
    learner, policy, goals, _ = _setup(tasks=3)
    r1 = learner.evaluate_adaptation(goals, [0.1, 0.05], 5, torch.Generator().manual_seed(3))
    r2 = learner.evaluate_adaptation(goals, [0.1, 0.05], 5, torch.Generator().manual_seed(3))
    assert r1.shape == (3, 3) and torch.equal(r1, r2) and (r1 <= 0).all()


def test_bad_arguments_raise():
    policy = GaussianMLPPolicy(2, 2)
    with pytest.raises(ValueError, match="inner_steps"):
        MAMLRL(policy, Navigation2DFamily(), inner_steps=-1)
    with pytest.raises(ValueError, match="rollouts"):
        MAMLRL(policy, Navigation2DFamily(), rollouts=1)
    with pytest.raises(ValueError, match="2 step sizes for inner_steps=1"):
        MAMLRL(policy, Navigation2DFamily(), inner_lr=[0.5, 0.25], inner_steps=1)
    with pytest.raises(ValueError, match="meta_objective"):
        MAMLRL(policy, Navigation2DFamily(), meta_objective="first")


def test_min_std_floors_the_policy_std_and_blocks_its_gradient_below():
    policy = GaussianMLPPolicy(2, 2, (4,), init_std=1.0, min_std=0.3)
    with torch.no_grad():
        policy.log_std.copy_(torch.tensor([0.1, 0.6]).log())
    obs = torch.zeros(3, 2)
    _, log_std = policy(obs)
    torch.testing.assert_close(log_std[0].exp(), torch.tensor([0.3, 0.6]))
    log_std.sum().backward()
    assert policy.log_std.grad[0] == 0 and policy.log_std.grad[1] == 3  # 3 rows of obs
    with pytest.raises(ValueError, match="min_std"):
        GaussianMLPPolicy(2, 2, min_std=2.0)
