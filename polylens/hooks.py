"""Read and edit the activations of any ``torch.nn.Module`` by module name.

Modules are addressed by the names ``model.named_modules()`` gives them
(``"encoder.2"``, ``"relu"``). Every context manager here removes the hooks it
added, and only those, when it exits, including after an exception raised in
the ``with`` block or inside a hook.

Reading::

    with capture(model, ["0", "1"], which="both") as cache:
        model(x)
    cache["1"]          # output of module "1" (a clone, safe from in-place ops)
    cache.inputs["1"]   # its input: for an in-place ReLU, the true pre-activation

    out, cache = run_with_cache(model, x, names_filter=lambda n: "relu" in n)

Editing::

    def double(t, hook):          # hook.name says which module (and call) this is
        return 2 * t              # or edit t in place and return None
    out = run_with_hooks(model, x, fwd_hooks=[("1", double)])

A module called several times in one forward pass (one ReLU object used
twice) is recorded once per call, as ``name``, ``name#1``, ``name#2`` ...

Each ``capture(...)`` or ``hooked(...)`` object serves one ``with`` block:
call it again for the next block. Compiled models (``torch.compile(model)``)
are refused: the compiled graph skips hooks added after its first call, so
pass ``model._orig_mod`` (the module it wraps) instead.
"""

from __future__ import annotations

import difflib
import inspect
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from polylens._checks import check_model as _check_model

__all__ = [
    "Cache",
    "HookPoint",
    "NamesFilter",
    "UnknownNameError",
    "capture",
    "collect",
    "hooked",
    "resolve_names",
    "run_with_cache",
    "run_with_hooks",
]

NamesFilter = Union[None, str, Sequence[str], Callable[[str], bool]]
HookFn = Callable[[Any, "HookPoint"], Any]
_WHICH = ("output", "input", "both")


@dataclass(frozen=True)
class HookPoint:
    """What a hook function is told about the call it is editing.

    ``name`` is the module name, with ``#k`` appended for the k-th repeated
    call of the same module in one forward pass (``call`` is k).
    ``kind`` is ``"output"`` or ``"input"``.
    """

    name: str
    module_name: str
    module: nn.Module
    call: int
    kind: str


# ----------------------------------------------------------------- names ---


class UnknownNameError(KeyError, ValueError):
    """A module or layer name that does not exist.

    A ``KeyError`` (names are looked up like dict keys) and a ``ValueError``
    (a bad argument), so ``except`` clauses written for either catch it.
    """

    def __str__(self) -> str:
        # KeyError would show the message in quotes; this is a sentence.
        return str(self.args[0]) if self.args else ""

    @classmethod
    def among(cls, name: str, known: Sequence[str], what: str = "module") -> UnknownNameError:
        """The error for ``name``, with the closest of the ``known`` names suggested."""
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        shown = ", ".join(repr(k) for k in known[:12]) + (" ..." if len(known) > 12 else "")
        return cls(f"no {what} named {name!r}.{hint} Known names: {shown}")



def resolve_names(model: nn.Module, names_filter: NamesFilter = None) -> list[str]:
    """Module names selected by ``names_filter``, in ``named_modules()`` order.

    ``names_filter`` is None (every submodule), one name, a list of names,
    or a callable ``name -> bool``. The root module (name ``""``) is never
    selected. Unknown names raise :class:`UnknownNameError` (a ``KeyError``
    and a ``ValueError``) listing close matches.
    """
    _check_model(model)
    known = [n for n, _ in model.named_modules() if n]
    if not known:
        raise ValueError(
            f"{type(model).__name__} has no submodules to hook; wrap its layers in "
            "nn.Module attributes (e.g. nn.Sequential) so they have names"
        )
    if names_filter is None:
        return known
    if isinstance(names_filter, str):
        names_filter = [names_filter]
    if callable(names_filter):
        chosen = [n for n in known if names_filter(n)]
        if not chosen:
            raise ValueError(
                "names_filter matched no module; known names: " + ", ".join(map(repr, known[:12]))
            )
        return chosen
    if not isinstance(names_filter, (list, tuple)) or not all(isinstance(n, str) for n in names_filter):
        raise TypeError(
            "names_filter must be None, a module name, a list of names, or a callable "
            f"name -> bool; got {type(names_filter).__name__}"
        )
    for name in names_filter:
        if name not in known:
            raise UnknownNameError.among(name, known)
    wanted = set(names_filter)
    return [n for n in known if n in wanted]


# ------------------------------------------------------------- compiled ---


def _is_compiled(module: nn.Module) -> bool:
    # torch.compile(model) returns a torch._dynamo OptimizedModule wrapping the original as
    # ``_orig_mod``; checked by name so that importing polylens does not import dynamo.
    return type(module).__name__ == "OptimizedModule" or isinstance(getattr(module, "_orig_mod", None), nn.Module)


def _check_hookable(model: nn.Module) -> None:
    """Refuse models that are, or contain, a ``torch.compile`` wrapper.

    A compiled graph does not run the Python hooks added after its first
    call: captures come back empty and edits do nothing, silently.
    """
    _check_model(model)
    for name, module in model.named_modules():
        if _is_compiled(module):
            where = "model" if not name else f"model.{name}"
            raise TypeError(
                f"{where} was compiled with torch.compile: the compiled graph skips hooks added after its "
                f"first call, so captures would come back empty and edits would do nothing. Pass the module "
                f"it wraps, {where}._orig_mod (and call that inside the block), or hook before compiling"
            )


class _SingleUse(AbstractContextManager):
    """A context manager that serves one ``with`` block and says so when entered again."""

    def __init__(self, manager: AbstractContextManager, what: str) -> None:
        self._manager, self._what, self._used = manager, what, False

    def __enter__(self) -> Any:
        if self._used:
            raise RuntimeError(
                f"this {self._what}(...) object was already used for a with-block; call {self._what}(...) "
                f"again for each block, e.g. `with {self._what}(model, ...) as cache:`"
            )
        self._used = True
        return self._manager.__enter__()

    def __exit__(self, *exc: object) -> Any:
        return self._manager.__exit__(*exc)


def single_use(fn: Callable[..., Iterator[Any]]) -> Callable[..., AbstractContextManager]:
    """Like ``contextlib.contextmanager``, but entering the same object twice is a clear ``RuntimeError``.

    (A plain generator context manager entered twice fails with
    "'_GeneratorContextManager' object has no attribute 'args'".)
    """
    manager = contextmanager(fn)

    @functools.wraps(fn)
    def make(*args: Any, **kwargs: Any) -> AbstractContextManager:
        return _SingleUse(manager(*args, **kwargs), fn.__name__)

    return make


# ------------------------------------------------------------- structure ---


def _map_tensors(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply ``fn`` to every tensor in nested tuples/lists/dicts, keeping types."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(_map_tensors(o, fn) for o in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map_tensors(o, fn) for o in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(v, fn)) for k, v in obj.items())
    return obj


def _restore_like(new: Any, old: Any, where: str) -> Any:
    """Give an edited value the type, shape, dtype and device of the original."""
    if isinstance(old, torch.Tensor):
        if not isinstance(new, torch.Tensor):
            raise TypeError(f"{where} returned {type(new).__name__}; return a tensor (or None to keep it)")
        if new.shape != old.shape:
            raise ValueError(
                f"{where} returned shape {tuple(new.shape)} but the module produced "
                f"{tuple(old.shape)}; return a tensor of the same shape"
            )
        return new.to(dtype=old.dtype, device=old.device)
    if isinstance(old, (tuple, list)):
        if not isinstance(new, (tuple, list)) or len(new) != len(old):
            raise TypeError(
                f"{where} must return a sequence of {len(old)} items like the module's "
                f"{type(old).__name__} output (or None to keep it)"
            )
        items = [_restore_like(n, o, where) for n, o in zip(new, old)]
        if hasattr(old, "_fields"):
            return type(old)(*items)
        return type(old)(items)
    return new


def _copy(t: torch.Tensor, detach: bool) -> torch.Tensor:
    # Clone so that later in-place ops (ReLU(inplace=True), edits) cannot
    # change what was recorded.
    return (t.detach() if detach else t).clone()


# ----------------------------------------------------------------- cache ---


class _Store(Mapping):
    """Name -> recorded value, in the order the calls happened."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._data: dict[str, list[Any]] = {}

    def _add(self, key: str, value: Any) -> None:
        self._data.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> Any:
        if key not in self._data:
            known = list(self._data)
            if not known:
                raise UnknownNameError(
                    f"nothing recorded yet for {key!r}: run the model inside the capture block "
                    f"(and ask for which='{self._kind}' or 'both')"
                )
            raise UnknownNameError.among(key, known)
        values = self._data[key]
        if len(values) == 1:
            return values[0]
        return torch.cat(values, dim=0)  # accumulated forward passes, batch dim

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        parts = []
        for k in self._data:
            v = self[k]
            parts.append(f"  {k!r}: {tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}")
        return f"{type(self).__name__}({self._kind}s: {len(self)}\n" + "\n".join(parts) + "\n)"


class Cache(_Store):
    """Recorded activations: ``cache[name]`` is an output, ``cache.inputs[name]`` an input.

    Keys follow execution order; repeated calls of one module in a forward
    pass get ``name#1``, ``name#2`` ... . With ``accumulate=True`` several
    forward passes are concatenated along dimension 0.
    """

    def __init__(self) -> None:
        super().__init__("output")
        self.inputs = _Store("input")
        self.n_forwards = 0

    @property
    def names(self) -> list[str]:
        """Recorded names in execution order (outputs, else inputs)."""
        return list(self._data) or list(self.inputs)


# ----------------------------------------------------------- registration ---


class _Calls:
    """Counts calls per module within one forward pass of the root model."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def next(self, module_name: str, kind: str) -> tuple[str, int]:
        key = (module_name, kind)
        k = self.counts.get(key, 0)
        self.counts[key] = k + 1
        return (module_name if k == 0 else f"{module_name}#{k}"), k

    def reset(self) -> None:
        self.counts.clear()


@contextmanager
def _registered(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        handles.clear()


def _first_arg(args: tuple) -> Any:
    return args[0] if len(args) == 1 else args


def _input_of(args: tuple, kwargs: dict) -> Any:
    """What a module was called with: its positional input, else its keyword arguments.

    ``relu(input=x)`` passes nothing positionally; its input is ``x``, not
    ``()``. Several keyword arguments and no positional ones give the dict.
    """
    if args or not kwargs:
        return _first_arg(args)
    return next(iter(kwargs.values())) if len(kwargs) == 1 else dict(kwargs)


@single_use
def capture(
    model: nn.Module,
    names_filter: NamesFilter = None,
    which: str = "output",
    *,
    detach: bool = True,
    accumulate: bool = False,
) -> Iterator[Cache]:
    """Record activations of the selected modules while the block runs.

    Args:
        model: any ``nn.Module``.
        names_filter: None (all submodules), a name, a list of names, or a
            callable ``name -> bool``.
        which: ``"output"``, ``"input"`` or ``"both"``. Inputs are recorded
            before the module runs, so an in-place ReLU's input is its true
            pre-activation.
        detach: record detached clones (default) or clones that keep the graph.
        accumulate: allow several forward passes in one block and concatenate
            them along dim 0; without it a second pass raises ``RuntimeError``
            rather than silently overwriting the first.

    Yields:
        A :class:`Cache`, still readable after the block ends.
    """
    if which not in _WHICH:
        raise ValueError(f"which must be one of {_WHICH}, got {which!r}")
    _check_hookable(model)
    names = resolve_names(model, names_filter)
    modules = dict(model.named_modules())
    cache, calls, handles = Cache(), _Calls(), []

    def new_pass(_module, _args):
        if cache.n_forwards and not accumulate:
            raise RuntimeError(
                "the model ran twice inside one capture block; use one block per forward "
                "pass, or capture(..., accumulate=True) to concatenate passes along dim 0"
            )
        cache.n_forwards += 1
        calls.reset()

    def make_pre(name):
        def pre(_module, args, kwargs):
            key, _ = calls.next(name, "input")
            cache.inputs._add(key, _map_tensors(_input_of(args, kwargs), lambda t: _copy(t, detach)))
        return pre

    def make_post(name):
        def post(_module, _args, output):
            key, _ = calls.next(name, "output")
            cache._add(key, _map_tensors(output, lambda t: _copy(t, detach)))
        return post

    with _registered(handles):
        # prepend=True: see the root's call before any hook the user added.
        handles.append(model.register_forward_pre_hook(new_pass, prepend=True))
        for name in names:
            if which in ("input", "both"):
                handles.append(modules[name].register_forward_pre_hook(make_pre(name), with_kwargs=True))
            if which in ("output", "both"):
                handles.append(modules[name].register_forward_hook(make_post(name)))
        yield cache


def _by_keyword(fn: HookFn) -> HookFn:
    """``fn`` called as ``fn(t, hook=point)`` when it names a ``hook`` parameter, else ``fn(t, point)``.

    Both ``def f(t, hook)`` and TransformerLens-style ``def f(t, *, hook)`` work, and so
    does ``lambda t, h: ...``.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # some builtins have no signature: call positionally
        return fn
    hook = params.get("hook")
    if hook is None or hook.kind not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return fn
    return lambda t, point: fn(t, hook=point)


def _grouped(specs: list[tuple[str, HookFn]]) -> dict[str, list[HookFn]]:
    """name -> its functions, in the order given."""
    out: dict[str, list[HookFn]] = {}
    for name, fn in specs:
        out.setdefault(name, []).append(fn)
    return out


def _hook_specs(model: nn.Module, specs: Any, arg: str) -> list[tuple[str, HookFn]]:
    if specs is None:
        return []
    if not isinstance(specs, (list, tuple)):
        raise TypeError(f"{arg} must be a list of (name_or_filter, fn) pairs")
    out = []
    for spec in specs:
        if not (isinstance(spec, (list, tuple)) and len(spec) == 2 and callable(spec[1])):
            raise TypeError(
                f"each entry of {arg} must be a (name_or_filter, fn) pair with fn(tensor, hook); "
                f"got {spec!r}"
            )
        target, fn = spec
        fn = _by_keyword(fn)
        if isinstance(target, str) or callable(target):
            names = resolve_names(model, target)
        else:
            names = resolve_names(model, list(target))
        out.extend((n, fn) for n in names)
    return out


@single_use
def hooked(
    model: nn.Module,
    fwd_hooks: Sequence[tuple[Any, HookFn]] | None = None,
    *,
    input_hooks: Sequence[tuple[Any, HookFn]] | None = None,
) -> Iterator[nn.Module]:
    """Edit activations while the block runs.

    Args:
        model: any ``nn.Module``.
        fwd_hooks: ``[(name_or_filter, fn), ...]``; ``fn(output, hook)`` gets
            the module's output and a :class:`HookPoint` and returns the new
            output, or None to keep it (after any in-place edit). Tuple
            outputs come back as the same tuple type; tensors keep their
            shape, dtype and device.
        input_hooks: the same for a module's input (its first positional
            argument, or its one keyword argument as in ``relu(input=x)``),
            e.g. to edit a ReLU's pre-activations.

    Yields:
        The model, with the hooks in place until the block ends.
    """
    _check_hookable(model)
    out_specs = _hook_specs(model, fwd_hooks, "fwd_hooks")
    in_specs = _hook_specs(model, input_hooks, "input_hooks")
    modules = dict(model.named_modules())
    calls, handles = _Calls(), []

    def new_pass(_module, _args):
        calls.reset()

    def make_post(name, fns):
        # One hook per module running all its functions in order: a call is counted once, however
        # many functions edit it, so every function sees the same name ("relu0", not "relu0#1").
        def post(module, _args, output):
            key, k = calls.next(name, "output")
            changed = False
            for fn in fns:
                new = fn(output, HookPoint(key, name, module, k, "output"))
                if new is not None:
                    output, changed = _restore_like(new, output, f"hook on {key!r}"), True
            return output if changed else None
        return post

    def make_pre(name, fns):
        def pre(module, args, kwargs):
            key, k = calls.next(name, "input")
            if not args and len(kwargs) > 1:
                raise TypeError(
                    f"input hook on {key!r}: the module was called with keyword arguments only "
                    f"({', '.join(kwargs)}), so there is no one input to edit; call it with its input "
                    "positionally, or hook its output instead"
                )
            value, changed = _input_of(args, kwargs), False
            for fn in fns:
                new = fn(value, HookPoint(key, name, module, k, "input"))
                if new is not None:
                    value, changed = _restore_like(new, value, f"input hook on {key!r}"), True
            if not changed:
                return None
            if not args and kwargs:  # called as module(input=x): put the edit back under its keyword
                return args, {next(iter(kwargs)): value}
            return ((value,) if len(args) == 1 else tuple(value)), kwargs
        return pre

    with _registered(handles):
        handles.append(model.register_forward_pre_hook(new_pass, prepend=True))
        for name, fns in _grouped(in_specs).items():
            handles.append(modules[name].register_forward_pre_hook(make_pre(name, fns), with_kwargs=True))
        for name, fns in _grouped(out_specs).items():
            handles.append(modules[name].register_forward_hook(make_post(name, fns)))
        yield model


def collect(model: nn.Module, x: torch.Tensor, names: Sequence[str], batch: int = 160) -> dict[str, torch.Tensor]:
    """Outputs of the modules ``names`` for inputs ``x``, run ``batch`` rows at a time: name -> (n, ...).

    Only these layers are kept, so a large ``x`` needs no more memory than one
    batch's forward pass plus the answer. Runs without gradients.
    """
    names = list(names)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for i in range(0, len(x), batch):
        with torch.no_grad(), capture(model, names) as cache:
            model(x[i:i + batch])
        for name in names:
            parts[name].append(cache[name])
    return {name: torch.cat(p) for name, p in parts.items()}

def run_with_cache(
    model: nn.Module,
    *args: Any,
    names_filter: NamesFilter = None,
    which: str = "output",
    detach: bool = True,
    **kwargs: Any,
) -> tuple[Any, Cache]:
    """Run ``model(*args, **kwargs)`` once and return ``(output, cache)``.

    An input whose shape the model's first layer cannot take is refused with
    a ``ValueError`` that says which shape it expects.
    """
    with capture(model, names_filter, which, detach=detach) as cache:
        out = _run(model, args, kwargs)
    return out, cache


def run_with_hooks(
    model: nn.Module,
    *args: Any,
    fwd_hooks: Sequence[tuple[Any, HookFn]] | None = None,
    input_hooks: Sequence[tuple[Any, HookFn]] | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``model(*args, **kwargs)`` once with the given edit hooks (input shape checked as in run_with_cache)."""
    with hooked(model, fwd_hooks, input_hooks=input_hooks):
        return _run(model, args, kwargs)


_CONVS = {nn.Conv1d: "L", nn.Conv2d: "H, W", nn.Conv3d: "D, H, W"}


def _expects(module: nn.Module) -> tuple[str, Callable[[torch.Size], bool]]:
    """(the input shape a Linear or Conv layer takes, in words; does a shape fit it)."""
    if isinstance(module, nn.Linear):
        n = module.in_features
        return f"(batch, {n}) (nn.Linear with in_features={n})", lambda shape: len(shape) >= 1 and shape[-1] == n
    c, spatial = module.in_channels, _CONVS[type(module)]
    dims = spatial.count(",") + 1
    return (f"(batch, {c}, {spatial}) ({type(module).__name__} with in_channels={c})",
            lambda shape: len(shape) in (dims + 1, dims + 2) and shape[-dims - 1] == c)


def _run(model: nn.Module, args: tuple, kwargs: dict) -> Any:
    """``model(*args, **kwargs)``; if the first Linear or Conv reached cannot take what it got, say what it expects.

    The first such layer *executed* is watched (not the first one defined), so
    the message names the layer that really saw the input. Any other error
    passes through untouched.
    """
    first: list[tuple[str, nn.Module, torch.Size, bool]] = []
    x = args[0] if args else next(iter(kwargs.values()), None)
    if isinstance(x, np.ndarray):
        raise TypeError(f"the model takes torch tensors, got a numpy array of shape {x.shape}; pass "
                        "torch.as_tensor(x, dtype=torch.float32)")

    def watch(name: str):
        def pre(module, inputs):
            if not first and inputs and isinstance(inputs[0], torch.Tensor):
                first.append((name, module, inputs[0].shape, inputs[0] is x))
        return pre

    layers = (nn.Linear, *_CONVS)
    handles = [m.register_forward_pre_hook(watch(n)) for n, m in model.named_modules() if type(m) in layers]
    try:
        return model(*args, **kwargs)
    except RuntimeError as err:
        if not first:
            raise
        name, module, got, is_input = first[0]
        weight = getattr(module, "weight", None)
        if is_input and isinstance(x, torch.Tensor) and weight is not None and x.is_floating_point() \
                and x.dtype != weight.dtype:
            convert = "x.float()" if weight.dtype == torch.float32 else f"x.to({weight.dtype})"
            raise TypeError(f"the model's weights are {str(weight.dtype).replace('torch.', '')} and the input is "
                            f"{str(x.dtype).replace('torch.', '')}; convert it with {convert}") from err
        expected, fits = _expects(module)
        if fits(got):
            raise
        if is_input or not isinstance(x, torch.Tensor):
            given = f"an input of shape {tuple(got)}"
        else:  # reshaped on the way (e.g. by nn.Flatten)
            given = f"an input of shape {tuple(x.shape)} (it reached the first layer as {tuple(got)})"
        raise ValueError(
            f"the model cannot run on {given}: its first layer {name!r} expects {expected}. "
            f"Pass an input of that shape (torch said: {err})"
        ) from err
    finally:
        for h in handles:
            h.remove()
