"""Notebook 05's checks: the reference answers pass, typical mistakes get a message that names them."""

import pytest
import torch

from polylens import exercises
from polylens.exercises import ExerciseFailed


def _unit(m):
    return m / m.norm(dim=1, keepdim=True)


def test_solutions_pass():
    for name in ("mmcs", "sae_loss", "latent_kind"):
        assert exercises.check(name, exercises.solution(name), quiet=True)


def test_stub_is_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError

    assert not exercises.check("mmcs", stub)
    assert "not attempted" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, words",
    [
        (lambda a, t: float((t @ a.T).max(dim=1).values.mean()), "unit norm"),
        (lambda a, t: float((_unit(t) @ _unit(a).T).max(dim=0).values.mean()), "wrong axis"),
        (lambda a, t: float((_unit(t) @ _unit(a).T).abs().max(dim=1).values.mean()), "absolute value"),
        (lambda a, t: float((_unit(t) @ _unit(a).T).mean()), "best"),
        (lambda a, t: (_unit(t) @ _unit(a).T).max(dim=1).values, "final .mean()"),
        (lambda a, t: float((_unit(t).T @ _unit(a)).max()), "shapes did not fit"),
        (lambda a, t: 0.5, "MMCS here is"),
    ],
)
def test_mmcs_mistakes_named(wrong, words):
    with pytest.raises(ExerciseFailed, match=words):
        exercises.check("mmcs", wrong, quiet=True)


def _recon(sae, x):
    return ((sae(x) - x) ** 2).sum(1).mean()


@pytest.mark.parametrize(
    "wrong, words",
    [
        (lambda s, x, l1: ((s(x) - x) ** 2).mean() + l1 * s.encode(x).sum(1).mean(), "over dimensions"),
        (lambda s, x, l1: _recon(s, x) + l1 * s.encode(x).mean(), "over latents"),
        (lambda s, x, l1: _recon(s, x), "left out the sparsity"),
        (lambda s, x, l1: _recon(s, x) + l1 * s.encoder(x).abs().sum(1).mean(), "pre-activations"),
        (lambda s, x, l1: _recon(s, x) + l1 * s.decoder.weight.abs().sum(), "decoder's weights"),
        (lambda s, x, l1: (s(x) - x).norm(dim=1).mean() + l1 * s.encode(x).sum(1).mean(), "length"),
        (lambda s, x, l1: _recon(s, x) + l1 * (s.encode(x) ** 2).sum(1).mean(), "L2 penalty"),
        (lambda s, x, l1: torch.zeros(3), "final .mean()"),
        (lambda s, x, l1: "loss", "return a number"),
    ],
)
def test_sae_loss_mistakes_named(wrong, words):
    with pytest.raises(ExerciseFailed, match=words):
        exercises.check("sae_loss", wrong, quiet=True)


def test_mmcs_solution_agrees_with_library():
    from polylens.superposition import mmcs

    gen = torch.Generator().manual_seed(0)
    a, t = torch.randn(9, 5, generator=gen), torch.randn(4, 5, generator=gen)
    assert exercises.solution("mmcs")(a, t) == pytest.approx(mmcs(a, t), abs=1e-6)


def _kind(best_single, best_combo, threshold=0.9):
    if best_single >= best_combo and best_single >= threshold:
        return "atomic"
    if best_combo > best_single and best_combo >= threshold:
        return "combination"
    return "other"


def _combos(o, c, normalise=True):
    s = (o[:, None] + c[None]).flatten(0, 1)
    return _unit(s) if normalise else s


@pytest.mark.parametrize(
    "wrong, words",
    [
        # the atom is never normalised
        (lambda a, o, c: _kind(float((torch.cat([o, c]) @ a).max()), float((_combos(o, c) @ a).max())), "normalise the atom"),
        # sums compared without normalising them
        (lambda a, o, c: _kind(float((torch.cat([o, c]) @ _unit(a[None])[0]).max()),
                               float((_combos(o, c, False) @ _unit(a[None])[0]).max())), "without normalising them"),
        # only single objects and conditions
        (lambda a, o, c: _kind(float((torch.cat([o, c]) @ _unit(a[None])[0]).max()), -1.0), "normalised sums"),
        # absolute cosines
        (lambda a, o, c: _kind(float((torch.cat([o, c]) @ _unit(a[None])[0]).abs().max()),
                               float((_combos(o, c) @ _unit(a[None])[0]).abs().max())), "signed cosines"),
        # objects only
        (lambda a, o, c: _kind(float((o @ _unit(a[None])[0]).max()), float((_combos(o, c) @ _unit(a[None])[0]).max())),
         "conditions as well"),
        (lambda a, o, c: 1, "return one of the strings"),
    ],
)
def test_latent_kind_mistakes_named(wrong, words):
    with pytest.raises(ExerciseFailed, match=words):
        exercises.check("latent_kind", wrong, quiet=True)


def test_latent_kind_solution_agrees_with_library():
    from polylens import superposition as sp

    world = sp.objects_conditions(4, 4, cooccurrence=0.9, dim=12, n_samples=2000, seed=1)
    sae = sp.train_sae(world.data, 8, l1=0.2, steps=300, lr=3e-3, seed=0, progress=False)
    fractions = sp.atomic_vs_combination(sae, world)
    with torch.no_grad():
        live = (sae.encode(world.data) > 0).any(0)
    kinds = [exercises.solution("latent_kind")(d, world.objects, world.conditions) for d in sae.dictionary[live]]
    assert kinds.count("combination") / len(kinds) == pytest.approx(fractions["combination"])
    assert kinds.count("atomic") / len(kinds) == pytest.approx(fractions["atomic"])
