"""Pure geometry of batches of convex polygons: areas, centroids, splitting by a line, affine fits.

Polygons are stored padded: ``verts`` (m, w, 2) with ``counts`` (m,) valid
vertices each, in order. Nothing here knows about networks.
"""

from __future__ import annotations

import numpy as np

__all__ = ["affine_fit", "areas", "centroids", "cut_pieces", "next_index", "split_sides"]

# ------------------------------------------------------ polygon geometry ---


def next_index(counts: np.ndarray, width: int) -> np.ndarray:
    return (np.arange(width)[None, :] + 1) % counts[:, None]


def areas(verts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(m,) shoelace areas of padded convex polygons (m, w, 2), counter-clockwise positive."""
    w = verts.shape[1]
    rel = verts - verts[:, :1]  # relative to a vertex: less cancellation
    nxt = np.take_along_axis(rel, next_index(counts, w)[..., None], axis=1)
    cross = rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0]
    cross[np.arange(w)[None, :] >= counts[:, None]] = 0.0
    return 0.5 * cross.sum(axis=1)


def centroids(verts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(m, 2) area centroids of padded convex polygons: interior points."""
    w = verts.shape[1]
    valid = np.arange(w)[None, :] < counts[:, None]
    mean = (verts * valid[..., None]).sum(axis=1) / counts[:, None]
    rel = verts - mean[:, None]
    nxt = np.take_along_axis(rel, next_index(counts, w)[..., None], axis=1)
    cross = np.where(valid, rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0], 0.0)
    area6 = 3.0 * cross.sum(axis=1)
    c = ((rel + nxt) * cross[..., None]).sum(axis=1)
    ok = np.abs(area6) > 0
    c[ok] /= area6[ok, None]
    c[~ok] = 0.0
    return mean + c


def split_sides(verts: np.ndarray, counts: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut convex polygons by the zero line of ``f`` (values at the vertices), all in one batch.

    verts (m, w, 2), counts (m,), f (m, w) -> pieces (2m, w', 2), their
    counts (2m,) and signed areas (2m,), the m positive sides first. A vertex
    with f == 0 belongs to both sides; a crossing is added on every edge whose
    ends have strictly opposite signs, at the linearly interpolated point,
    which is exact because f is affine inside each polygon. Any values of f
    beyond ``counts`` are ignored (:func:`cut_pieces` needs them to be 0).
    """
    valid = np.arange(f.shape[1])[None, :] < counts[:, None]
    pieces, piece_counts = cut_pieces(verts, counts, np.where(valid, f, 0.0))
    return pieces, piece_counts, areas(pieces, piece_counts)


def cut_pieces(verts: np.ndarray, counts: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pieces of :func:`split_sides` without their areas, for ``f`` that is 0 beyond ``counts``.

    verts (m, w, 2), counts (m,), f (m, w) -> pieces (2m, w', 2), zero-padded,
    and their counts (2m,), the m positive sides first. A vertex with f == 0
    is on both sides; each edge whose ends have strictly opposite signs adds
    its linearly interpolated crossing to both.
    """
    m, w = f.shape
    rows = np.arange(m)[:, None]
    nxt = (np.arange(w)[None, :] + 1) % counts[:, None]
    f_next = f[rows, nxt]
    # f is 0 on padding: no padding entry crosses, and only valid vertices are kept below.
    cross = np.sign(f) * np.sign(f_next) < 0  # strictly opposite signs (NaN is neither)
    lam = np.divide(f, f - f_next, out=np.zeros(f.shape), where=cross)
    # Vertex i, then the crossing on edge (i, i+1): the order stays convex.
    cand = np.empty((m, w, 2, 2))
    cand[:, :, 0] = verts
    cand[:, :, 1] = verts + lam[..., None] * (verts[rows, nxt] - verts)
    valid = np.arange(w)[None, :] < counts[:, None]
    keep = np.empty((2, m, w, 2), dtype=bool)
    np.greater_equal(f, 0, out=keep[0, ..., 0])
    np.less_equal(f, 0, out=keep[1, ..., 0])
    keep[..., 0] &= valid
    keep[..., 1] = cross
    keep = keep.reshape(2 * m, 2 * w)
    place = keep.cumsum(axis=1)  # 1 + where each kept entry goes in its piece
    piece_counts = place[:, -1]
    pieces = np.zeros((2 * m, int(piece_counts.max(initial=1)), 2))
    r, c = keep.nonzero()
    pieces[r, place[r, c] - 1] = cand.reshape(m, 2 * w, 2)[r % m, c]
    return pieces, piece_counts


def affine_fit(verts: np.ndarray, counts: np.ndarray, values: np.ndarray):
    """The affine map through values at the vertices, per polygon and column.

    verts (m, w, 2), values (m, w, k) -> (gradient (m, k, 2), value at an
    anchor vertex (m, k), that anchor (m, 2)). The map interpolates three
    vertices that span the polygon well: the anchor a (vertex 0), the vertex
    b farthest from a, and the vertex c farthest from the line ab, solved in
    the frame (e1 along ab, e2 across it). Every other vertex lies within a
    few times that triangle, so rounding in the map stays ~1e-16 of the
    values' scale at every vertex, however thin the polygon: a least-squares
    fit through the normal equations squares the condition number and breaks
    down on long slivers (e.g. between two nearly parallel boundaries). The
    gradient across a sliver of width h is only determined to ~1e-16 / h;
    the map's values on the polygon are what is exact.
    """
    m, w = verts.shape[:2]
    rows = np.arange(m)
    anchor = verts[:, 0]
    d = verts - anchor[:, None]
    d[np.arange(w) >= counts[:, None]] = 0.0  # padding: at the anchor
    b = (d * d).sum(axis=2).argmax(axis=1)
    db = d[rows, b]
    length = np.sqrt((db * db).sum(axis=1))
    ok = length > 0
    if ok.all():  # the usual case, in fewer operations
        e1 = db / length[:, None]
    else:
        e1 = np.zeros_like(db)
        e1[ok] = db[ok] / length[ok, None]
    e2 = np.empty_like(e1)
    e2[:, 0], e2[:, 1] = -e1[:, 1], e1[:, 0]
    across = np.einsum("mwi,mi->mw", d, e2)
    c = np.abs(across).argmax(axis=1)
    xc = np.einsum("mi,mi->m", d[rows, c], e1)
    yc = across[rows, c]
    fa, fb, fc = values[:, 0], values[rows, b], values[rows, c]
    g1 = np.divide(fb - fa, length[:, None], out=np.zeros(fa.shape), where=ok[:, None])
    g2 = np.divide(fc - fa - g1 * xc[:, None], yc[:, None], out=np.zeros(fa.shape), where=(yc != 0)[:, None])
    grad = g1[..., None] * e1[:, None] + g2[..., None] * e2[:, None]
    return grad, fa, anchor

