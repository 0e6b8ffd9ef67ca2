"""Exact polytopes of a ReLU network, in a 2D slice and along a segment.

A network whose only nonlinearities are ReLU/LeakyReLU modules is piecewise
affine. On the plane ``x(s, t) = origin + s * u + t * v`` it cuts the
rectangle ``extent`` into convex polygons, one per spline code, and on each
polygon the output is one affine map of (s, t).

    regs = slice_regions(model, origin, u, v, extent=(-1, 1, -1, 1))
    len(regs), regs.polygons[0], regs.codes, regs.areas
    A, c = regs.affine            # output = A[i] @ [s, t] + c[i] on polygon i
    regs.plot(ax, color="code")

    cr = crossings(model, x0, x1) # every t in [0, 1] where a unit flips
    d = density(model, center, radii=np.linspace(0, 4, 17))

The method needs no weights: inside a polygon on which every earlier layer
is fixed, each pre-activation of the next ReLU layer is affine in (s, t), so
its values at the polygon's vertices (one batched forward pass) are exact,
and where a sign changes along an edge, linear interpolation finds the
crossing exactly. Layers are processed in execution order, which is what
makes "affine inside the polygon" true.
"""

from polylens.regions.segments import Crossings, Density, crossings, density
from polylens.regions.slices import Regions, input_plane, slice_regions

__all__ = ["Crossings", "Density", "Regions", "crossings", "density", "input_plane", "slice_regions"]
