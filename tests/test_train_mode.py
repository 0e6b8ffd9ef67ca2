"""Codes and pre-activations are read in eval mode, and the model's own mode is given back.

A model left in train mode (a learner stopped training halfway) must still
give one code per input: Dropout off, BatchNorm on its running statistics,
the running statistics untouched, and every module's ``training`` flag as
it was, even when the call raises. These are the codes slice_regions (which
uses an eval copy) finds, so the two agree.
"""

import numpy as np
import pytest
import torch
from torch import nn

import polylens as pl
from polylens import spline
from polylens.steer import steering_mask, preactivations


def dropout_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def batchnorm_net(seed: int = 0, d_in: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d_in, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))
    # Running statistics that are not the defaults, so that using them (or batch statistics) shows.
    with torch.no_grad():
        for _ in range(5):
            model(2.0 * torch.randn(64, d_in) + 1.0)
    return model


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


X4 = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))
X3 = torch.randn(200, 3, generator=torch.Generator().manual_seed(2))


def test_dropout_model_gives_one_code_per_input_and_it_is_the_eval_code():
    model = dropout_net().train()
    first, second = pl.spline_code(model, X4), pl.spline_code(model, X4)
    assert np.array_equal(first.bits, second.bits)
    model.eval()
    assert np.array_equal(first.bits, pl.spline_code(model, X4).bits)
    model.train()
    soft = pl.soft_code(model, X4)
    assert np.array_equal(soft.threshold(0.5).bits, first.bits)


def test_dropout_preactivations_and_masks_repeat():
    model = dropout_net().train()
    (u1, c1), (u2, c2) = preactivations(model, X4), preactivations(model, X4)
    assert torch.equal(u1, u2) and np.array_equal(c1.bits, pl.spline_code(model, X4).bits)
    m1, m2 = steering_mask(c1, 0.8, preacts=u1), steering_mask(c2, 0.8, preacts=u2)
    assert np.array_equal(m1.neurons, m2.neurons) and np.array_equal(m1.magnitude, m2.magnitude)
    assert model.training and all(flags(model))


def test_batchnorm_running_statistics_are_not_changed():
    model = batchnorm_net().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pl.spline_code(model, X3)
    pl.soft_code(model, X3)
    preactivations(model, X3)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # num_batches_tracked too


def test_batchnorm_codes_do_not_depend_on_the_batch():
    model = batchnorm_net().train()
    whole = pl.spline_code(model, X3).bits
    assert np.array_equal(pl.spline_code(model, X3[:7]).bits, whole[:7])
    assert np.array_equal(pl.spline_code(model, X3[5:6]).bits, whole[5:6])  # one row: train-mode BatchNorm would refuse it
    u_whole, _ = preactivations(model, X3)
    u_part, _ = preactivations(model, X3[100:])
    assert torch.equal(u_part, u_whole[100:])
    model.eval()
    assert np.array_equal(pl.spline_code(model, X3).bits, whole)


def test_every_modules_own_flag_is_restored():
    model = batchnorm_net().train()
    model[1].eval()  # a mix: BatchNorm frozen, the rest training
    want = flags(model)
    pl.spline_code(model, X3)
    pl.soft_code(model, X3)
    preactivations(model, X3)
    assert flags(model) == want
    model.eval()
    pl.spline_code(model, X3)
    assert not any(flags(model))


def test_flags_are_restored_when_the_call_raises():
    model = dropout_net().train()
    model[2].eval()
    want = flags(model)
    with pytest.raises(ValueError, match="could not run"):
        pl.spline_code(model, torch.randn(10, 5))  # wrong width: the forward pass fails inside
    assert flags(model) == want
    with pytest.raises(ValueError):
        preactivations(model, torch.randn(10, 5))
    assert flags(model) == want
    with pytest.raises(RuntimeError, match="inside"), spline.eval_mode(model):
        assert not any(flags(model))
        raise RuntimeError("inside")
    assert flags(model) == want


def test_eval_mode_does_not_copy_the_model():
    model = dropout_net().train()
    with spline.eval_mode(model) as inside:
        assert inside is model and not model.training
    assert model.training


def test_spline_code_agrees_with_slice_regions_for_a_model_left_in_train_mode():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Linear(2, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.3), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 1)
    ).double()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(32, 2, dtype=torch.float64))
    model.train()
    origin, u, v = torch.zeros(2), torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    regs = pl.regions.slice_regions(model, origin, u, v, extent=(-2, 2, -2, 2))
    st = regs.interior_points(seed=0)
    points = torch.from_numpy(st)  # the plane is the input plane itself
    code = pl.spline_code(model, points)
    assert len(regs) > 10
    assert np.array_equal(code.bits, regs.codes.bits)
    assert model.training and model[1].training and model[3].training
