"""Exercises of notebook 06 (the sunny duck): reference answers agree with the library, mistakes are explained."""


import numpy as np
import pytest
import torch
from torch import nn

from polylens import compose, steer
from polylens.exercises import ExerciseFailed, check, solution
from polylens.exercises.sunny_duck import _composition_case
from polylens.spline import code_mask

NAMES = ("conditional_addition", "composition_success", "agreement_mask")


def _fails(name, fn, match):
    with pytest.raises(ExerciseFailed, match=match):
        check(name, fn, quiet=True)


def test_stubs_are_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError

    for name in NAMES:
        assert not check(name, stub)
    assert capsys.readouterr().out.count("not attempted") == len(NAMES)


def test_reference_solutions_pass_with_a_note(capsys):
    for name in NAMES:
        assert check(name, solution(name))
    out = capsys.readouterr().out
    assert out.count("passed") == len(NAMES) and "rows were steered" in out


# -------------------------------------------------- conditional_addition ---


def _unit(d):
    return d / d.norm()


def test_conditional_addition_matches_steer_add():
    gen = torch.Generator().manual_seed(0)
    h, d = torch.randn(50, 7, generator=gen), 4.0 * torch.randn(7, generator=gen)
    direction = steer.mean_difference(d[None], torch.zeros(1, 7), layer="0")
    model = nn.Sequential(nn.Identity())
    with torch.no_grad(), steer.add(model, direction, -1.3, when=steer.dot_below(direction, 0.2)):
        want = model(h)
    got = solution("conditional_addition")(h, d, -1.3, 0.2)
    assert torch.allclose(got, want, atol=1e-6)
    steered = (got != h).any(1)
    assert 0 < steered.sum() < len(h)  # the gate let some rows through and held others back


def test_conditional_addition_batch_wide_decision():
    def mean_gate(h, d, alpha, threshold):
        d_hat = _unit(d)
        return h + alpha * d_hat if (h @ d_hat).mean() < threshold else h.clone()

    _fails("conditional_addition", mean_gate, "none of the 8 rows.*whole batch.*per example")


def test_conditional_addition_batch_wide_decision_when_the_mean_is_below():
    # Right on the first batch (nothing would be wrong there), batch-wide on the second.
    calls = []

    def mean_gate_second_time(h, d, alpha, threshold):
        calls.append(1)
        if len(calls) == 1:
            return solution("conditional_addition")(h, d, alpha, threshold)
        d_hat = _unit(d)
        return h + alpha * d_hat if (h @ d_hat).mean() < threshold else h.clone()

    _fails("conditional_addition", mean_gate_second_time, "all of the 8 rows.*whole batch")


def test_conditional_addition_forgets_to_normalise_the_gate_and_step():
    def raw(h, d, alpha, threshold):
        return h + alpha * (h @ d < threshold)[:, None].float() * d

    _fails("conditional_addition", raw, "d has length 3.00.*d / d.norm")


def test_conditional_addition_forgets_to_normalise_the_step():
    def raw_step(h, d, alpha, threshold):
        return h + alpha * (h @ _unit(d) < threshold)[:, None].float() * d

    _fails("conditional_addition", raw_step, "right rows moved, but by alpha \\* d.*Normalise")


def test_conditional_addition_gates_the_wrong_way():
    def above(h, d, alpha, threshold):
        d_hat = _unit(d)
        return h + alpha * (h @ d_hat > threshold)[:, None].float() * d_hat

    _fails("conditional_addition", above, "\\*above\\* the threshold")


def test_conditional_addition_in_place():
    def in_place(h, d, alpha, threshold):
        d_hat = _unit(d)
        h[h @ d_hat < threshold] += alpha * d_hat
        return h

    _fails("conditional_addition", in_place, "changed h in place")


def test_conditional_addition_normalises_d_in_place():
    def in_place_d(h, d, alpha, threshold):
        d /= d.norm()
        return h + alpha * (h @ d < threshold)[:, None].float() * d

    _fails("conditional_addition", in_place_d, "changed d in place")


def test_conditional_addition_no_gate():
    _fails("conditional_addition", lambda h, d, alpha, threshold: h + alpha * _unit(d),
           "steered every row.*Gate each row")


def test_conditional_addition_wrong_shape():
    _fails("conditional_addition", lambda h, d, alpha, threshold: h[h @ _unit(d) < threshold] + alpha * _unit(d),
           "return every row of h")


# --------------------------------------------------- composition_success ---


def test_composition_success_matches_the_probes_verdict_in_compose():
    for sunny_index, seed in ((0, 21), (3, 22), (0, 5)):
        weather, obj, objects = _composition_case(sunny_index, seed)
        if sunny_index != compose.WEATHERS.index(compose.SUNNY):
            continue  # compose knows the real sunny index only
        n = len(objects)
        got = solution("composition_success")(weather, obj, objects, sunny_index)
        assert got.dtype == bool and got.shape == (n,)
        assert np.array_equal(got, compose.probe_verdict(weather, obj, objects)) and 0 < got.sum() < n
        # The case holds images where sunny is the top class with P(sunny) < 0.5, counted as successes.
        assert (got & (torch.softmax(weather, 1)[:, sunny_index].numpy() < 0.5)).any()


def _sunny(w, s):
    return w.argmax(1).numpy() == s


def _kept(o, objects):
    return o.argmax(1).numpy() == objects


def test_composition_success_only_sunny():
    _fails("composition_success", lambda w, o, objects, s: _sunny(w, s), "only checked the weather")


def test_composition_success_only_object():
    _fails("composition_success", lambda w, o, objects, s: _kept(o, objects), "only checked the object")


def test_composition_success_probability_threshold():
    def threshold(w, o, objects, s):
        return (torch.softmax(w, 1)[:, s] > 0.5).numpy() & _kept(o, objects)

    _fails("composition_success", threshold, "P\\(sunny\\) = 0.27, below 0.5.*argmax")


def test_composition_success_rate_instead_of_bools():
    def rate(w, o, objects, s):
        return float((_sunny(w, s) & _kept(o, objects)).mean())

    _fails("composition_success", rate, "one number.*one True/False per image")


def test_composition_success_or_instead_of_and():
    _fails("composition_success", lambda w, o, objects, s: _sunny(w, s) | _kept(o, objects), "both at once")


def test_composition_success_fixed_sunny_index():
    _fails("composition_success", lambda w, o, objects, s: _sunny(w, 0) & _kept(o, objects), "sunny_index argument")


def test_composition_success_accepts_tensors_and_zero_one():
    def as_tensor(w, o, objects, s):
        return ((w.argmax(1) == s) & (o.argmax(1) == torch.as_tensor(objects))).int()

    assert check("composition_success", as_tensor, quiet=True)


# -------------------------------------------------------- agreement_mask ---


def test_agreement_mask_matches_spline_mask_and_code_mask():
    rng = np.random.default_rng(0)
    bits = rng.random((40, 30)) < rng.random(30)  # units from almost always off to almost always on
    for agreement in (0.6, 0.75, 0.9, 1.0):
        neurons, states = solution("agreement_mask")(bits, agreement)
        for lib in (code_mask(bits, agreement), steer.steering_mask(bits, agreement)):
            assert np.array_equal(neurons, lib.neurons) and np.array_equal(states, lib.state)
        if agreement == 0.75:
            assert states.any() and not states.all()  # units agreed on and units agreed off


def _share(bits):
    on = bits.mean(0)
    return on, on >= 0.5, np.maximum(on, 1 - on)


def test_agreement_mask_only_on():
    def only_on(bits, agreement):
        on = bits.mean(0)
        keep = np.flatnonzero(on >= agreement - 1e-12)
        return keep, np.ones(len(keep), bool)

    _fails("agreement_mask", only_on, "only the units on.*\\*off\\*")


def test_agreement_mask_inverted_states():
    def inverted(bits, agreement):
        neurons, states = solution("agreement_mask")(bits, agreement)
        return neurons, ~states

    _fails("agreement_mask", inverted, "inverted")


def test_agreement_mask_strict_inequality():
    def strict(bits, agreement):
        _, state, share = _share(bits)
        keep = np.flatnonzero(share > agreement + 1e-12)
        return keep, state[keep]

    _fails("agreement_mask", strict, "exactly 90%.*>= agreement, not >")


def test_agreement_mask_float_rounding_on_the_off_side():
    def one_minus(bits, agreement):
        on = bits.mean(0)
        keep = np.flatnonzero((on >= agreement) | (on <= 1 - agreement))  # 0.1 <= 1 - 0.9 is False
        return keep, on[keep] >= 0.5

    _fails("agreement_mask", one_minus, "\\*off\\* in exactly 90%.*float rounding")


def test_agreement_mask_boolean_mask_instead_of_indices():
    def boolean(bits, agreement):
        _, state, share = _share(bits)
        keep = share >= agreement - 1e-12
        return keep, state[keep]

    _fails("agreement_mask", boolean, "mask over all 16 units.*\\*indices\\*")


def test_agreement_mask_wrong_order():
    def on_then_off(bits, agreement):
        neurons, states = solution("agreement_mask")(bits, agreement)
        order = np.argsort(~states, kind="stable")
        return neurons[order], states[order]

    _fails("agreement_mask", on_then_off, "different order.*ascending")


def test_agreement_mask_accepts_lists_and_tensors():
    def lists(bits, agreement):
        neurons, states = solution("agreement_mask")(bits, agreement)
        return neurons.tolist(), torch.from_numpy(states)

    assert check("agreement_mask", lists, quiet=True)
