"""The splitting math against autograd: σ'', the splitting matrices, their products, the
eigen-solvers and the schemes' predicted loss changes (float64 throughout)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from growdsl import api
from growdsl.compile.ops import RBF
from growdsl.grow.splitting.curvature import CURVATURES
from growdsl.grow.splitting.eigen import exact_eigenpairs, fast_eigenpairs, min_rayleigh, row_space
from growdsl.grow.splitting.factors import SplitFactors, collect_factors, neuron_layer
from growdsl.grow.splitting.matrices import splitting_matrices, splitting_product
from growdsl.grow.splitting.schemes import POSITIVE, predicted_change, signed_three, signed_two
from growdsl.grow.splitting.sites import NotSplittable, find_site
from growdsl.ir import lower
from growdsl.lang import parse_text

ACTIVATION_MODULES = {
    "tanh": nn.Tanh(),
    "sigmoid": nn.Sigmoid(),
    "gelu": nn.GELU(),
    "silu": nn.SiLU(),
    "rbf": RBF(),
}


def _net(body: str, input_shape: tuple[int, ...], classes: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    graph = lower(parse_text(f"model m {{ {body} }}", "t.grow"), input_shape, classes)
    model = api.build_model(graph).double()
    for module in model.modules():  # BN with non-trivial statistics, so its factor c matters
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.3, 0.3)
    return graph, model


def _factors(graph, model, node, x, y):
    return collect_factors(model, [find_site(graph, node)], x, y, F.cross_entropy)[0]


@pytest.mark.parametrize("name", sorted(CURVATURES))
def test_curvature_is_the_activations_second_derivative(name):
    u = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
    if name == "relu":  # the authors' surrogate: softplus with beta 3
        f = F.softplus(u, beta=3.0)
    else:
        f = ACTIVATION_MODULES[name](u)
    (d1,) = torch.autograd.grad(f.sum(), u, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), u)
    torch.testing.assert_close(CURVATURES[name](u.detach()), d2, atol=1e-10, rtol=1e-8)


def _neuron_hessian(model, site, x, neuron):
    """∇²_θ Σ g σ(bn(layer_θ(h))) for one neuron, g detached, by autograd: the definition of S."""
    layer = neuron_layer(model, site.node)
    act = model.module_at(site.act)
    seen = {}

    def keep_output(_m, _i, out):
        out.retain_grad()
        seen["out"] = out

    hooks = [
        layer.register_forward_hook(lambda m, i, o: seen.__setitem__("h", i[0].detach())),
        act.register_forward_hook(keep_output),
    ]
    model.eval()
    F.cross_entropy(model(x), torch.arange(len(x)) % 3).backward()
    for hook in hooks:
        hook.remove()
    g = seen["out"].grad[:, neuron].detach()
    bn = model.module_at(site.bn) if site.bn else None
    conv = isinstance(layer, nn.Conv2d)
    weight_shape = layer.weight.shape[1:]

    def loss_like(theta):
        w = theta[: weight_shape.numel()].reshape(1, *weight_shape)
        b = theta[weight_shape.numel() :] if layer.bias is not None else None
        if conv:
            z = F.conv2d(seen["h"], w, b, layer.stride, layer.padding)[:, 0]
        else:
            z = F.linear(seen["h"], w, b)[:, 0]
        if bn is not None:
            z = (z - bn.running_mean[neuron]) / torch.sqrt(bn.running_var[neuron] + bn.eps)
            z = z * bn.weight[neuron] + bn.bias[neuron]
        return (g * act(z)).sum() if site.activation != "relu" else (g * F.softplus(z, beta=3.0)).sum()

    theta = layer.weight[neuron].detach().flatten()
    if layer.bias is not None:
        theta = torch.cat([theta, layer.bias[neuron].detach()[None]])
    return torch.autograd.functional.hessian(loss_like, theta, vectorize=True)


LAYERS = {
    "linear": ("linear(4) as p", (5,)),
    "linear_nobias": ("linear(4, bias: false) as p", (5,)),
    "conv": ("conv(3, k: 3) as p", (2, 4, 4)),
    "sepconv": ("sepconv(3, k: 3) as p", (2, 4, 4)),
}


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "relu", "rbf"])
@pytest.mark.parametrize("with_bn", [False, True])
@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_splitting_matrix_equals_autograd_hessian(layer, with_bn, activation):
    text, shape = LAYERS[layer]
    tail = " flatten" if len(shape) == 3 else ""
    graph, model = _net(f"{text} {'bn ' if with_bn else ''}{activation}{tail} linear(classes)", shape)
    x = torch.randn(6, *shape, dtype=torch.float64)
    factors = _factors(graph, model, "m.p", x, torch.arange(6) % 3)
    s = splitting_matrices(factors)
    for neuron in range(factors.neurons):
        torch.testing.assert_close(
            s[neuron], _neuron_hessian(model, factors.site, x, neuron), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_splitting_product_equals_dummy_term_gradient(layer):
    """Wang et al.'s trick: a zero-valued term σ''(u) c² (yᵀh)(vᵀh) has ∂L/∂y = S v at y = 0."""
    text, shape = LAYERS[layer]
    tail = " flatten" if len(shape) == 3 else ""
    graph, model = _net(f"{text} bn tanh{tail} linear(classes)", shape)
    x, y = torch.randn(7, *shape, dtype=torch.float64), torch.arange(7) % 3
    factors = _factors(graph, model, "m.p", x, y)
    v = torch.randn(factors.neurons, factors.dim, dtype=torch.float64)
    dummy = torch.zeros_like(v, requires_grad=True)
    layer_mod = neuron_layer(model, "m.p")
    bn = model.module_at(factors.site.bn)
    c = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    seen = {}

    def add_term(_m, inputs, out):
        h = seen["h"]  # [N, C_in(, H, W)]
        if layer == "conv":
            rows = F.unfold(h, 3, padding=1).transpose(1, 2)  # [N, L, D-1]
            rows = torch.cat([rows, rows.new_ones(*rows.shape[:2], 1)], 2)
            hy, hv = rows @ dummy.T, rows @ v.T  # [N, L, C]
            term = CURVATURES["tanh"](inputs[0]).flatten(2).transpose(1, 2) * c**2 * hy * hv
            return out + term.transpose(1, 2).reshape(out.shape)
        rows = torch.cat([h, h.new_ones(len(h), 1)], 1)
        return out + CURVATURES["tanh"](inputs[0]) * c**2 * (rows @ dummy.T) * (rows @ v.T)

    hooks = [
        layer_mod.register_forward_hook(lambda m, i, o: seen.__setitem__("h", i[0].detach())),
        model.module_at(factors.site.act).register_forward_hook(add_term),
    ]
    model.eval()
    F.cross_entropy(model(x), y).backward()
    for hook in hooks:
        hook.remove()
    torch.testing.assert_close(splitting_product(factors, v), dummy.grad, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_fast_eigenpairs_match_exact_within_two_percent(layer, seed):
    text, shape = LAYERS[layer]
    tail = " flatten" if len(shape) == 3 else ""
    graph, model = _net(
        "linear(6) tanh linear(5) as p tanh" if layer == "linear" else f"{text} bn gelu{tail}",
        (5,) if layer == "linear" else shape,
        seed=seed,
    )
    x = torch.randn(40, *((5,) if layer == "linear" else shape), dtype=torch.float64)
    factors = _factors(graph, model, "m.p", x, torch.arange(40) % 3)
    exact = exact_eigenpairs(factors, largest=True)
    fast = fast_eigenpairs(factors, largest=True, generator=torch.Generator().manual_seed(seed))
    for got, want in ((fast.lam_min, exact.lam_min), (fast.lam_max, exact.lam_max)):
        assert ((got - want).abs() <= 0.02 * want.abs() + 1e-12).all(), (got, want)


@pytest.mark.parametrize("seed", range(3))
def test_fast_eigenpairs_in_the_row_space_match_exact(seed):
    """Fewer samples than inputs (a wide layer): the solver runs in the samples' row space."""
    graph, model = _net("linear(30) tanh linear(8) as p tanh", (5,), seed=seed)
    x = torch.randn(12, 5, dtype=torch.float64)
    factors = _factors(graph, model, "m.p", x, torch.arange(12) % 3)
    reduced, basis = row_space(factors)
    assert basis is not None and reduced.h.shape == (12, 12)  # M = 12 < D = 31
    torch.testing.assert_close(basis.T @ basis, torch.eye(12, dtype=torch.float64))
    torch.testing.assert_close(reduced.h @ basis.T, factors.h)
    exact = exact_eigenpairs(factors, largest=True)
    fast = fast_eigenpairs(factors, largest=True, generator=torch.Generator().manual_seed(seed))
    for got, want in ((fast.lam_min, exact.lam_min), (fast.lam_max, exact.lam_max)):
        assert ((got - want).abs() <= 0.02 * want.abs() + 1e-12).all(), (got, want)


def test_row_space_of_a_rank_deficient_input_falls_back_to_qr():
    """Repeated samples make h hᵀ singular: its Cholesky factor fails, the QR basis still holds."""
    h = torch.randn(6, 20, dtype=torch.float64)
    h = torch.cat([h, h[:2]])  # 8 rows of rank 6
    factors = SplitFactors(None, h, torch.randn(8, 4, dtype=torch.float64))
    reduced, basis = row_space(factors)
    torch.testing.assert_close(basis.T @ basis, torch.eye(8, dtype=torch.float64))
    torch.testing.assert_close(reduced.h @ basis.T, h)
    s = splitting_matrices(factors)
    torch.testing.assert_close(basis @ splitting_matrices(reduced) @ basis.T, s)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_fast_solver_returns_the_quotient_of_its_own_direction(sign):
    """λ is vᵀ(sign·S)v of the returned unit v, so a split's predicted decrease is that of the
    direction it moves along; and never below the true extreme eigenvalue."""
    gen = torch.Generator().manual_seed(0)
    factors = SplitFactors(
        None,
        torch.randn(50, 9, generator=gen, dtype=torch.float64),
        torch.randn(50, 6, generator=gen, dtype=torch.float64),
    )
    lam, v = min_rayleigh(factors, sign, iters=4, tol=1e-4, generator=gen)  # too few steps to converge
    torch.testing.assert_close(v.norm(dim=1), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(lam, sign * (v * splitting_product(factors, v)).sum(dim=1))
    extreme = torch.linalg.eigvalsh(sign * splitting_matrices(factors))[:, 0]
    assert (lam >= extreme - 1e-12).all()


@pytest.mark.parametrize("largest", [False, True])
def test_fast_solver_stays_finite_on_neurons_without_curvature(largest):
    """Saturated tanh neurons have w ≈ 0 (squares underflow in float32) or exactly 0: their start
    vector and pair must stay finite (a NaN there once broke the batched eigh of every neuron)."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(64, 10, generator=gen)
    w = torch.randn(64, 4, generator=gen)
    w[:, 1] *= 1e-25
    w[:, 2] = 0.0
    w[:, 3] = w[:, 3].abs()  # no negative curvature: λ_min > 0
    pairs = fast_eigenpairs(SplitFactors(None, h, w), largest=largest, generator=gen)
    for t in (pairs.lam_min, pairs.v_min) + ((pairs.lam_max, pairs.v_max) if largest else ()):
        assert torch.isfinite(t).all()
    exact = torch.linalg.eigvalsh(splitting_matrices(SplitFactors(None, h, w)))
    assert (pairs.lam_min - exact[:, 0]).abs()[[0, 3]].max() <= 0.02 * exact[[0, 3], 0].abs().max()


@pytest.mark.parametrize(
    "h, w",
    [
        ([[3.0, 4.0, 0.0]], [[1.0]]),  # M < D, S ⪰ 0: λ_min is the 0 outside the row space
        (torch.eye(4).tolist(), [[1.0]] * 4),  # S = I: Lanczos breaks down after one step
        (torch.eye(4).tolist(), [[-1.0]] * 4),  # S = -I
    ],
    ids=["outside-row-space", "identity", "minus-identity"],
)
def test_fast_pairs_are_unit_vectors_whose_quotient_is_the_eigenvalue_in_degenerate_cases(h, w):
    """Found in review: λ_min was clamped to 0 while v kept a row-space direction (vᵀSv = 25), and
    an exact Lanczos breakdown returned v = 0."""
    factors = SplitFactors(None, torch.tensor(h, dtype=torch.float64), torch.tensor(w, dtype=torch.float64))
    fast = fast_eigenpairs(factors, largest=True, generator=torch.Generator().manual_seed(0))
    exact = exact_eigenpairs(factors, largest=True)
    for lam, v, want in (
        (fast.lam_min, fast.v_min, exact.lam_min),
        (fast.lam_max, fast.v_max, exact.lam_max),
    ):
        torch.testing.assert_close(v.norm(dim=1), torch.ones(1, dtype=torch.float64))
        torch.testing.assert_close(lam, (v * splitting_product(factors, v)).sum(dim=1), atol=1e-12, rtol=0)
        torch.testing.assert_close(lam, want, atol=1e-12, rtol=1e-6)


def test_exact_eigenpairs_are_eigenpairs_in_chunks():
    graph, model = _net("linear(7) as p tanh linear(classes)", (4,))
    x = torch.randn(30, 4, dtype=torch.float64)
    factors = _factors(graph, model, "m.p", x, torch.arange(30) % 3)
    pairs = exact_eigenpairs(factors, largest=True, budget=1)  # one neuron per chunk
    s = splitting_matrices(factors)
    for lam, v in ((pairs.lam_min, pairs.v_min), (pairs.lam_max, pairs.v_max)):
        torch.testing.assert_close((s @ v[:, :, None]).squeeze(2), lam[:, None] * v)
    assert (pairs.lam_min <= pairs.lam_max).all()


def _one_neuron_loss(theta, a, copies, x, t):
    """MSE of f(x) = Σ_k w_k a tanh(θ_kᵀx): one tanh neuron split into `copies` (θ_k, w_k)."""
    out = sum(w * a * torch.tanh(x @ th) for th, w in copies)
    return 0.5 * ((out - t) ** 2).mean()


@pytest.mark.parametrize(
    "scheme",
    [POSITIVE, signed_two(1.0), signed_two(0.5), signed_three(1.0)],
    ids=lambda s: s.name + str(s.weights),
)
def test_one_neuron_split_changes_the_loss_as_predicted(scheme):
    """The second-order prediction against the actual ΔL on one tanh neuron with MSE."""
    gen = torch.Generator().manual_seed(0)
    x = torch.cat(
        [torch.randn(200, 2, generator=gen, dtype=torch.float64), torch.ones(200, 1, dtype=torch.float64)], 1
    )
    t = torch.sin(3 * x[:, 0]) * x[:, 1]
    theta, a = torch.tensor([1.5, 0.5, -0.8], dtype=torch.float64), 1.3  # λ_min < 0 < λ_max
    u = x @ theta
    g = a * (a * torch.tanh(u) - t) / len(x)  # ∂L/∂(σ output)
    s = ((g * CURVATURES["tanh"](u))[:, None, None] * x[:, :, None] * x[:, None, :]).sum(0)
    vals, vecs = torch.linalg.eigh(s)
    lam, v = (vals[0], vecs[:, 0]) if scheme is POSITIVE else (vals[-1], vecs[:, -1])
    eps = 1e-3
    before = _one_neuron_loss(theta, a, [(theta, 1.0)], x, t)
    copies = [(theta + eps * d * v, w) for d, w in zip(scheme.offsets, scheme.weights, strict=True)]
    after = _one_neuron_loss(theta, a, copies, x, t)
    predicted = predicted_change(scheme, lam, eps)
    assert predicted < 0
    assert abs((after - before) - predicted) <= 0.1 * abs(predicted)


def test_sites_report_why_a_layer_is_not_splittable():
    graph, _ = _net("linear(4) as a linear(4) as b relu linear(classes) as head", (3,))
    with pytest.raises(NotSplittable, match="not an activation"):
        find_site(graph, "m.a")
    with pytest.raises(NotSplittable, match="network's output"):
        find_site(graph, "m.head")
    assert find_site(graph, "m.b").activation == "relu"
    graph, _ = _net("branch add { linear(3) as p | identity } tanh linear(classes)", (3,))
    with pytest.raises(NotSplittable, match="branch merge"):
        find_site(graph, graph.by_label("p")[0])
