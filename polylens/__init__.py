"""polylens: the polytope lens on neural networks, for learners.

    import polylens as pl
    out, cache = pl.run_with_cache(model, x, names_filter=lambda n: "relu" in n)
    code = pl.spline_code(model, x)
    regs = pl.regions.slice_regions(model, origin, u, v, extent=(-1, 1, -1, 1))

See the notebooks in ``notebooks/`` for the curriculum.
"""

from polylens import clustering, compose, datasets, exercises, judge, models, plot, regions, scenes, spline, steer, superposition, training
from polylens import hooks
from polylens.hooks import Cache, HookPoint, capture, hooked, resolve_names, run_with_cache, run_with_hooks
from polylens._renamed import renamed as _renamed
from polylens.spline import CodeMask, SoftCode, SplineCode, hamming, on_fraction, soft_code, spline_code

__version__ = "0.1.0"

__all__ = [
    "Cache",
    "CodeMask",
    "HookPoint",
    "SoftCode",
    "SplineCode",
    "capture",
    "clustering",
    "compose",
    "datasets",
    "exercises",
    "hamming",
    "hooked",
    "hooks",
    "judge",
    "models",
    "on_fraction",
    "plot",
    "regions",
    "resolve_names",
    "run_with_cache",
    "run_with_hooks",
    "soft_code",
    "scenes",
    "spline",
    "spline_code",
    "steer",
    "superposition",
    "training",
]


__getattr__ = _renamed("polylens", {"agreement": "on_fraction"}, "module 'polylens' has no attribute {name!r}")
