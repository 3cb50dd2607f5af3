"""Invariants of every registered attention and both branches (timm's tests/test_layers.py style),
and GCSA against an independent re-implementation of equations 1-3 written from the paper's text."""

import pytest
import torch
import torch.nn.functional as F
from gcsa_fer.gcsa import ATTENTIONS, GCSA, make_attention
from gcsa_fer.layers import attention_layer, remap_conv_bn_relu
from gcsa_fer.mcnn import MCNN
from gcsa_fer.rhcnn import RHCNN, FeatureMLP


@pytest.mark.parametrize('name', ATTENTIONS)
@pytest.mark.parametrize('shape', [(2, 32, 7, 5), (1, 32, 1, 1), (3, 32, 16, 16)])
def test_attention_invariants(name, shape):
    torch.manual_seed(0)
    m = make_attention(name, shape[1])
    if shape[0] * shape[2] * shape[3] == 1:
        m.eval()  # BatchNorm cannot train on one value per channel
    x = torch.randn(shape, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if not isinstance(m, torch.nn.Identity) and shape[0] * shape[2] * shape[3] > 1:
        for n, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{name}: no gradient reaches {n}'
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))


def _models():
    return {
        'mcnn': (lambda a: MCNN(attention=a), torch.randn(2, 1, 40, 23)),
        'rhcnn': (lambda a: RHCNN(attention=a), torch.rand(2, 3, 3, 24, 20)),
    }


@pytest.mark.parametrize('name', ATTENTIONS)
@pytest.mark.parametrize('branch', ['mcnn', 'rhcnn'])
def test_branch_gradients_and_determinism(branch, name):
    torch.manual_seed(0)
    make, x = _models()[branch]
    m = make(name)
    out = m(x)
    assert out.shape == (2, 8) and torch.isfinite(out).all()
    out.logsumexp(-1).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f'no gradient reaches {missing}'
    m.eval()
    with torch.no_grad():
        assert torch.equal(m(x), m(x))


@pytest.mark.parametrize(
    'bad, msg',
    [
        (torch.randn(2, 40, 23), '4-d tensor'),
        (torch.randn(2, 3, 40, 23), '1 channels'),
        (torch.full((1, 1, 40, 23), float('nan')), 'NaN'),
        (torch.full((1, 1, 40, 23), float('inf')), 'NaN or infinite'),
    ],
)
def test_mcnn_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        MCNN()(bad)


@pytest.mark.parametrize(
    'bad, msg',
    [
        (torch.rand(2, 3, 24, 24), '5-d tensor'),
        (torch.rand(2, 4, 1, 24, 24), '3 channels'),
        (torch.full((1, 2, 3, 8, 8), float('nan')), 'NaN'),
    ],
)
def test_rhcnn_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        RHCNN()(bad)


def test_feature_mlp_bad_input():
    with pytest.raises(ValueError, match='35 channels'):
        FeatureMLP()(torch.rand(4, 30))
    with pytest.raises(ValueError, match='2-d tensor'):
        FeatureMLP()(torch.rand(35))


# ---- GCSA against the paper's equations ----------------------------------------------------------


def reference_gcsa(x, p, bn1, bn2, groups, training):
    """Equations 1-3 of Yu et al. written out with torch.nn.functional only.
    p: dict of weights; bn1/bn2: dicts with running_mean/running_var (updated in place in training)."""
    B, C, H, W = x.shape
    # (1) channel attention: permute to B x H x W x C, MLP C -> C/4 -> C, permute back, sigmoid, multiply
    h = x.permute(0, 2, 3, 1)
    h = F.relu(h @ p['fc1.w'].T + p['fc1.b'])
    h = h @ p['fc2.w'].T + p['fc2.b']
    fc = torch.sigmoid(h.permute(0, 3, 1, 2)) * x
    # (2) channel shuffle into `groups` groups: channel (g, i) goes to (i, g)
    fs = fc.reshape(B, groups, C // groups, H, W).transpose(1, 2).reshape(B, C, H, W)
    # (3) spatial attention: conv7x7 C -> C/4, BN, ReLU, conv7x7 C/4 -> C, BN, sigmoid, multiply
    s = F.conv2d(fs, p['conv1.w'], p['conv1.b'], padding=3)
    s = F.relu(F.batch_norm(s, bn1['mean'], bn1['var'], p['bn1.w'], p['bn1.b'], training, 0.1, 1e-5))
    s = F.conv2d(s, p['conv2.w'], p['conv2.b'], padding=3)
    s = F.batch_norm(s, bn2['mean'], bn2['var'], p['bn2.w'], p['bn2.b'], training, 0.1, 1e-5)
    return torch.sigmoid(s) * fs


def _copy_weights(g):
    ca, sa = g.channel_attention.mlp, g.spatial_attention
    p = {
        'fc1.w': ca[0].weight,
        'fc1.b': ca[0].bias,
        'fc2.w': ca[2].weight,
        'fc2.b': ca[2].bias,
        'conv1.w': sa.conv1.weight,
        'conv1.b': sa.conv1.bias,
        'conv2.w': sa.conv2.weight,
        'conv2.b': sa.conv2.bias,
        'bn1.w': sa.bn1.weight,
        'bn1.b': sa.bn1.bias,
        'bn2.w': sa.bn2.weight,
        'bn2.b': sa.bn2.bias,
    }
    p = {k: v.detach().clone() for k, v in p.items()}
    bn1 = {'mean': sa.bn1.running_mean.clone(), 'var': sa.bn1.running_var.clone()}
    bn2 = {'mean': sa.bn2.running_mean.clone(), 'var': sa.bn2.running_var.clone()}
    return p, bn1, bn2


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('shape', [(2, 16, 9, 13), (4, 32, 8, 8), (1, 8, 3, 1)])
def test_gcsa_matches_equations(shape, training):
    torch.manual_seed(1)
    g = GCSA(shape[1])
    # non-trivial BN state and affine parameters, so that eval mode is really tested
    with torch.no_grad():
        for bn in (g.spatial_attention.bn1, g.spatial_attention.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.3, 0.3)
    g.train(training)
    p, bn1, bn2 = _copy_weights(g)
    x = torch.randn(shape)
    expected = reference_gcsa(x, p, bn1, bn2, groups=4, training=training)
    torch.testing.assert_close(g(x), expected, rtol=1e-5, atol=1e-6)
    if training:  # the running statistics move the same way
        torch.testing.assert_close(g.spatial_attention.bn1.running_mean, bn1['mean'])
        torch.testing.assert_close(g.spatial_attention.bn2.running_var, bn2['var'])


def test_gcsa_shuffle_permutes_channels():
    # With identity-like attention (weights zero -> sigmoid 0.5 everywhere), GCSA(x) = 0.25 * shuffle(x):
    g = GCSA(8).eval()
    with torch.no_grad():
        for prm in g.parameters():
            prm.zero_()
        g.spatial_attention.bn2.running_mean.zero_()
        g.spatial_attention.bn2.running_var.fill_(1 - 1e-5)
    x = torch.arange(8.0).view(1, 8, 1, 1).repeat(1, 1, 2, 3)
    out = g(x)[0, :, 0, 0] / 0.25
    assert out.tolist() == [0, 2, 4, 6, 1, 3, 5, 7]


def test_gcsa_rejects_indivisible_channels():
    with pytest.raises(ValueError, match='channels=30, reduction=4'):
        GCSA(30)
    with pytest.raises(ValueError, match='channels=12, groups=8'):
        GCSA(12, reduction=4, groups=8)


# ---- the layers both branches share ----------------------------------------------------------------


@pytest.mark.parametrize('branch', ['mcnn', 'rhcnn'])
@pytest.mark.parametrize('name', ATTENTIONS)
def test_gate_bias_reaches_gcsa_only(branch, name):
    "Both branches route `gate_bias` through `attention_layer`: it sets GCSA's gates and leaves every other attention as built by name."
    make = {'mcnn': lambda **k: MCNN(attention=name, **k), 'rhcnn': lambda **k: RHCNN(attention=name, **k)}[branch]
    torch.manual_seed(0)
    biased = make(gate_bias=3.0).attention
    torch.manual_seed(0)
    plain = make().attention
    if name == 'gcsa':
        assert bool((biased.spatial_attention.bn2.bias == 3.0).all())
        assert bool((biased.channel_attention.mlp[-1].bias == 3.0).all())
    else:
        assert type(biased) is type(plain)
        assert all(torch.equal(p, q) for p, q in zip(biased.state_dict().values(), plain.state_dict().values()))


def test_attention_layer_is_make_attention_with_the_channels():
    torch.manual_seed(0)
    a = attention_layer('cbam')(32)
    torch.manual_seed(0)
    b = make_attention('cbam', 32)
    assert type(a) is type(b) and all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_conv_bn_relu_weight_names_and_old_files():
    "The weight names the shipped safetensors files use, and the older names `remap_conv_bn_relu` renames."
    m = MCNN(width=4)
    keys = [k for k in m.state_dict() if k.startswith('branches.local.0.')]
    assert keys == [
        f'branches.local.0.{k}'
        for k in ('conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked')
    ]
    old = {k.replace('.conv.', '.0.').replace('.bn.', '.1.'): v for k, v in m.state_dict().items()}
    assert set(remap_conv_bn_relu(m, dict(old))) == set(m.state_dict())


@pytest.mark.parametrize(
    'make, field, bad, choices',
    [
        (lambda v: MCNN(pool=v), 'audio_pool', 'median', "'mean' or 'meanmax'"),
        (lambda v: RHCNN(pool=v), 'visual_pool', 'max', "'mean', 'meanmax' or 'grid'"),
        (lambda v: RHCNN(norm=v), 'visual_norm', 'batch', "'fixed' or 'image'"),
    ],
)
def test_branches_check_their_choices_as_the_config_does(make, field, bad, choices):
    "One list of choices (in core) for the branch's argument and for the configuration field that sets it."
    from gcsa_fer.core import Config

    with pytest.raises(ValueError, match=f"must be {choices}, got '{bad}'"):
        make(bad)
    with pytest.raises(ValueError, match=f"{field} must be {choices}, got '{bad}'"):
        Config().update(**{field: bad})


# ---- the variants that separate GCSA's gate from the control's skip ------------------------------------------

VARIANTS = ('gcsa', 'gcsa-residual', 'matched-noskip', 'gcsa-open')


def _params_and_macs(m: torch.nn.Module, x: torch.Tensor) -> tuple[int, float]:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(x)
    return sum(p.numel() for p in m.parameters()), fc.get_total_flops() / 2


@pytest.mark.parametrize('name', VARIANTS)
def test_variants_match_the_control_in_parameters_and_macs(name):
    "Each variant against `MatchedControl`: the same parameter count and flop-counter multiply-adds, alone and in MCNN."
    x = torch.randn(2, 32, 10, 6)
    control = _params_and_macs(make_attention('matched', 32).eval(), x)
    assert _params_and_macs(make_attention(name, 32).eval(), x) == control
    assert control[1] > 0
    audio = torch.randn(2, 1, 40, 23)
    assert _params_and_macs(MCNN(attention=name).eval(), audio) == _params_and_macs(
        MCNN(attention='matched').eval(), audio
    )


@pytest.mark.parametrize('training', [False, True])
def test_gcsa_residual_is_gcsa_layers_with_the_controls_skips(training):
    "gcsa-residual(x) = y + SA(y), y = shuffle(x + CA(x)), exactly, with GCSA's own gated layers CA and SA."
    torch.manual_seed(0)
    r = make_attention('gcsa-residual', 16).train(training)
    x = torch.randn(3, 16, 6, 5)
    state = {k: v.clone() for k, v in r.state_dict().items()}
    out = r(x)
    r.load_state_dict(state)  # the same BatchNorm statistics for the reference
    y = r.shuffle(x + r.channel_attention(x))
    assert torch.equal(out, y + r.spatial_attention(y))
    # and its gates are 1 + sigma where GCSA's are sigma (same weights)
    g = GCSA(16).train(training)
    g.load_state_dict(state)
    assert not torch.allclose(out, g(x))


def test_matched_noskip_drops_only_the_skips():
    "matched-noskip shares the control's weights and layers; adding the skips back gives the control exactly."
    torch.manual_seed(0)
    plain = make_attention('matched-noskip', 16).eval()
    skip = make_attention('matched', 16).eval()
    skip.load_state_dict(plain.state_dict())
    x = torch.randn(2, 16, 7, 4)
    g, s = plain.gcsa, plain.gcsa.spatial_attention
    h = g.shuffle(g.channel_attention.mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
    assert torch.equal(plain(x), s.bn2(s.conv2(torch.relu(s.bn1(s.conv1(h))))))
    assert not torch.allclose(plain(x), skip(x))
    y = g.shuffle(x + g.channel_attention.mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))  # the control as it was
    assert torch.equal(skip(x), y + s.bn2(s.conv2(torch.relu(s.bn1(s.conv1(y))))))


@pytest.mark.parametrize('name, median', [('gcsa-open', 0.9), ('gcsa', 0.5)])
def test_gate_opening_at_initialisation(name, median):
    "Measured on a random input in training mode: gcsa-open's two gates start near 0.9, GCSA's near 0.5."
    torch.manual_seed(0)
    m = make_attention(name, 32).train()
    x = torch.randn(8, 32, 12, 12)
    ca = m.channel_attention.attention(x)
    sa = m.spatial_attention.attention(m.shuffle(x * ca))
    for gate in (ca, sa):
        assert abs(gate.median().item() - median) < 0.03
        assert abs(gate.mean().item() - median) < 0.06
