"""polylens.models: named ReLU modules, seeded weights, clear errors."""

import pytest
import torch
from torch import nn

from polylens.models import MLP, ResidualMLP, SmallCNN


def test_mlp_names_and_shapes():
    model = MLP([3, 5, 4, 2], seed=0)
    assert [n for n, _ in model.named_children()] == ["linear0", "relu0", "linear1", "relu1", "out"]
    assert isinstance(model.relu1, nn.ReLU)
    assert model(torch.zeros(7, 3)).shape == (7, 2)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = MLP([2, 8, 1], seed=4), MLP([2, 8, 1], seed=4), MLP([2, 8, 1], seed=5)
    assert torch.rand(1) == before  # building models did not consume the global stream
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.linear0.weight, c.linear0.weight)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "gelu"])
def test_activation_modules_are_hookable(activation):
    model = MLP([2, 4, 4, 1], activation=activation, seed=0)
    kinds = {type(m) for m in model.modules()}
    assert {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}[activation] in kinds


def test_residual_mlp_adds_the_skip():
    model = ResidualMLP(d_in=2, width=6, hidden=8, depth=2, seed=0)
    x = torch.randn(5, 2)
    h = model.inp(x)
    for block in model.blocks:
        h = h + block.fc2(torch.relu(block.fc1(h)))
    assert torch.allclose(model(x), model.out(h))


def test_small_cnn_shapes_and_dtype():
    model = SmallCNN(in_channels=1, size=8, channels=3, n_classes=2, seed=0, dtype=torch.float64)
    out = model(torch.zeros(4, 1, 8, 8, dtype=torch.float64))
    assert out.shape == (4, 2) and out.dtype == torch.float64


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="at least 2"):
        MLP([2])
    with pytest.raises(ValueError, match="positive ints"):
        MLP([2, 0, 1])
    with pytest.raises(ValueError, match="unknown activation"):
        MLP([2, 3, 1], activation="tanhh")
    with pytest.raises(ValueError, match="multiple of 4"):
        SmallCNN(size=6)
    with pytest.raises(TypeError, match="seed"):
        MLP([2, 3, 1], seed=1.5)
