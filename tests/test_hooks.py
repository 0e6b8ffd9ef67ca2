"""polylens.hooks: what is recorded, what is edited, and that hooks never leak."""

from collections import namedtuple

import pytest
import torch
from torch import nn

import polylens as pl
from polylens.models import MLP


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def inplace_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))


class SharedReLU(nn.Module):
    """One ReLU object called twice in a forward pass."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 4)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc2(self.relu(self.fc1(x))))


Pair = namedtuple("Pair", "a b")


class TupleOut(nn.Module):
    def __init__(self, named=False):
        super().__init__()
        self.named = named

    def forward(self, x):
        return Pair(x, -x) if self.named else (x, -x)


class TupleNet(nn.Module):
    def __init__(self, named=False):
        super().__init__()
        self.split = TupleOut(named)

    def forward(self, x):
        a, b = self.split(x)
        return a + 10 * b


# ------------------------------------------------------------- recording ---


def test_capture_records_outputs_in_execution_order():
    model, x = MLP([2, 5, 3, 1], seed=1), torch.randn(7, 2)
    with pl.capture(model) as cache:
        model(x)
    assert cache.names == ["linear0", "relu0", "linear1", "relu1", "out"]
    assert torch.equal(cache["relu0"], torch.relu(model.linear0(x)))
    assert cache["out"].shape == (7, 1)


def test_captured_output_is_a_clone_safe_from_inplace_relu():
    model, x = inplace_net(), torch.randn(16, 3)
    with pl.capture(model, "0") as cache:
        model(x)
    expected = model[0](x)
    assert (expected < 0).any(), "test needs negative pre-activations"
    # The in-place ReLU zeroed the Linear's output tensor; the capture did not change.
    assert torch.allclose(cache["0"], expected)


def test_inplace_relu_input_is_the_true_preactivation():
    model, x = inplace_net(), torch.randn(16, 3)
    with pl.capture(model, "1", which="both") as cache:
        model(x)
    pre = model[0](x)
    assert torch.allclose(cache.inputs["1"], pre)
    assert torch.allclose(cache["1"], pre.clamp(min=0))


def test_capture_is_not_changed_by_a_later_inplace_edit():
    model, x = MLP([2, 4, 1], seed=0), torch.randn(5, 2)

    def zero_inplace(t, hook):
        t.zero_()

    with pl.capture(model, "linear0") as cache, pl.hooked(model, [("linear0", zero_inplace)]):
        model(x)
    assert torch.allclose(cache["linear0"], model.linear0(x))
    assert cache["linear0"].abs().sum() > 0


def test_names_filter_forms_select_the_same_modules():
    model = MLP([2, 4, 4, 1], seed=0)
    by_name = pl.resolve_names(model, ["relu0", "relu1"])
    assert by_name == pl.resolve_names(model, lambda n: n.startswith("relu"))
    assert pl.resolve_names(model, "relu1") == ["relu1"]
    assert pl.resolve_names(model, None) == ["linear0", "relu0", "linear1", "relu1", "out"]


def test_unknown_name_raises_keyerror_with_close_matches():
    model = MLP([2, 4, 1], seed=0)
    with pytest.raises(KeyError, match="relu0"):
        with pl.capture(model, "relu_0"):
            pass
    with pytest.raises(KeyError, match="linear0"):
        pl.run_with_hooks(model, torch.zeros(1, 2), fwd_hooks=[("linear_0", lambda t, h: t)])
    assert hook_count(model) == 0


def test_reading_an_unrecorded_name_explains():
    model = MLP([2, 4, 1], seed=0)
    _, cache = pl.run_with_cache(model, torch.zeros(1, 2), names_filter="relu0")
    with pytest.raises(KeyError, match="relu0"):
        cache["relu"]
    with pytest.raises(KeyError, match="which='input'"):
        cache.inputs["relu0"]


def test_shared_module_is_recorded_per_call():
    model, x = SharedReLU(), torch.randn(6, 3)
    with pl.capture(model, "relu", which="both") as cache:
        model(x)
    first = torch.relu(model.fc1(x))
    second = torch.relu(model.fc2(first))
    assert list(cache) == ["relu", "relu#1"]
    assert torch.allclose(cache["relu"], first)
    assert torch.allclose(cache["relu#1"], second)
    assert torch.allclose(cache.inputs["relu#1"], model.fc2(first))


def test_edit_hook_sees_each_call_of_a_shared_module():
    model, x = SharedReLU(), torch.randn(6, 3)
    seen = []

    def record(t, hook):
        seen.append((hook.name, hook.call, hook.module_name))

    pl.run_with_hooks(model, x, fwd_hooks=[("relu", record)])
    pl.run_with_hooks(model, x, fwd_hooks=[("relu", record)])
    assert seen == [("relu", 0, "relu"), ("relu#1", 1, "relu")] * 2


def test_second_forward_in_one_capture_is_refused_not_overwritten():
    model = MLP([2, 4, 1], seed=0)
    with pl.capture(model, "relu0") as cache:
        model(torch.ones(1, 2))
        with pytest.raises(RuntimeError, match="accumulate=True"):
            model(torch.zeros(1, 2))
    assert hook_count(model) == 0
    assert torch.equal(cache["relu0"], torch.relu(model.linear0(torch.ones(1, 2))))


def test_accumulate_concatenates_forward_passes():
    model, x1, x2 = MLP([2, 4, 1], seed=0), torch.randn(3, 2), torch.randn(5, 2)
    with pl.capture(model, "relu0", accumulate=True) as cache:
        model(x1)
        model(x2)
    assert cache.n_forwards == 2
    assert torch.allclose(cache["relu0"], torch.relu(model.linear0(torch.cat([x1, x2]))))


# ---------------------------------------------------------------- editing ---


def test_run_with_hooks_edits_the_output():
    model, x = MLP([2, 4, 1], seed=0), torch.randn(5, 2)
    out = pl.run_with_hooks(model, x, fwd_hooks=[("relu0", lambda t, hook: 2 * t)])
    expected = model.out(2 * torch.relu(model.linear0(x)))
    assert torch.allclose(out, expected)
    assert torch.allclose(model(x), model.out(torch.relu(model.linear0(x))))  # hook gone


def test_input_hook_edits_preactivations():
    model, x = MLP([2, 4, 1], seed=0), torch.randn(5, 2)
    out = pl.run_with_hooks(model, x, input_hooks=[("relu0", lambda t, hook: t + 1.0)])
    expected = model.out(torch.relu(model.linear0(x) + 1.0))
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("named", [False, True])
def test_tuple_outputs_keep_their_type_when_edited(named):
    model, x = TupleNet(named), torch.ones(2, 3)
    kept_type = []

    def swap(out, hook):
        return [out[1], out[0]]  # a list: must come back as the module's type

    def check(out, hook):
        kept_type.append(type(out))

    with pl.hooked(model, [("split", swap)]), pl.hooked(model, [("split", check)]):
        y = model(x)
    assert torch.allclose(y, -x + 10 * x)
    assert kept_type == [Pair if named else tuple]


def test_edit_with_wrong_shape_is_refused_and_cleaned_up():
    model = MLP([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="same shape"):
        pl.run_with_hooks(model, torch.zeros(3, 2), fwd_hooks=[("relu0", lambda t, h: t[:1])])
    assert hook_count(model) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_device_are_kept(dtype):
    model, x = MLP([2, 4, 1], seed=0, dtype=dtype), torch.randn(3, 2, dtype=dtype)
    # The hook returns the other precision; the model must still see its own dtype.
    other = torch.float64 if dtype == torch.float32 else torch.float32
    out = None
    with pl.capture(model, ["relu0", "out"]) as cache:
        out = pl.run_with_hooks(model, x, fwd_hooks=[("relu0", lambda t, h: t.to(other))])
    assert out.dtype == dtype and out.device == x.device
    assert cache["relu0"].dtype == dtype and cache["out"].dtype == dtype


# -------------------------------------------------------------- no leaks ---


def test_exception_in_with_block_leaves_no_hooks():
    model = MLP([2, 4, 1], seed=0)
    with pytest.raises(ZeroDivisionError):
        with pl.capture(model, which="both"), pl.hooked(model, [("relu0", lambda t, h: t)]):
            model(torch.zeros(1, 2))
            1 / 0
    assert hook_count(model) == 0


def test_exception_inside_a_hook_leaves_no_hooks():
    model = MLP([2, 4, 1], seed=0)

    def broken(t, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        with pl.capture(model, "out"):
            pl.run_with_hooks(model, torch.zeros(1, 2), fwd_hooks=[("relu0", broken)])
    assert hook_count(model) == 0


def test_nested_contexts_remove_only_their_own_hooks_and_keep_the_users():
    model, x = MLP([2, 4, 1], seed=0), torch.randn(4, 2)
    user_calls = []
    user_handle = model.relu0.register_forward_hook(lambda m, i, o: user_calls.append(1))
    with pl.hooked(model, [("relu0", lambda t, h: 3 * t)]):
        with pl.capture(model, "relu0") as inner:
            model(x)
        # Inner capture is gone, the outer edit is still in force.
        assert torch.allclose(model(x), model.out(3 * torch.relu(model.linear0(x))))
    assert torch.allclose(inner["relu0"], 3 * torch.relu(model.linear0(x)))
    assert torch.allclose(model(x), model.out(torch.relu(model.linear0(x))))
    assert hook_count(model) == 1  # the user's hook only
    n = len(user_calls)
    model(x)
    assert len(user_calls) == n + 1
    user_handle.remove()


def test_bad_arguments_are_explained():
    model = MLP([2, 4, 1], seed=0)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        pl.resolve_names(lambda x: x)
    with pytest.raises(ValueError, match="which"):
        with pl.capture(model, which="outputs"):
            pass
    with pytest.raises(ValueError, match="matched no module"):
        pl.resolve_names(model, lambda n: "conv" in n)
    with pytest.raises(TypeError, match="pair"):
        with pl.hooked(model, [("relu0",)]):
            pass
    assert hook_count(model) == 0


def test_module_and_function_names_never_collide():
    """`polylens.hooks` is the module (as the README lists it); the context manager is `hooked`."""
    import types

    from polylens import hooks as module

    assert isinstance(pl.hooks, types.ModuleType) and isinstance(module, types.ModuleType)
    assert pl.hooks.hooked is pl.hooked
    for name in pl.__all__:
        value = getattr(pl, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__ == f"polylens.{name}", name


def test_hook_functions_may_take_hook_as_a_keyword():
    model = MLP([2, 4, 2], seed=0)
    x = torch.ones(3, 2)
    seen = []

    def transformerlens_style(t, *, hook):
        seen.append(hook.name)
        return 2 * t

    def named(t, hook):
        seen.append(hook.name)
        return t

    out = pl.run_with_hooks(model, x, fwd_hooks=[("relu0", transformerlens_style), ("relu0", named),
                                                  ("relu0", lambda t, h: t)])
    with pl.hooked(model, [("relu0", lambda t, h: 2 * t)]):
        want = model(x)
    assert torch.equal(out, want) and seen == ["relu0", "relu0"]
