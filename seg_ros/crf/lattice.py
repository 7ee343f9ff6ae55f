"""A permutohedral lattice in PyTorch: Gaussian filtering in a d-dimensional feature space.

Adams, Baek and Davis, "Fast high-dimensional filtering using the permutohedral
lattice" (Eurographics 2010), written with whole-tensor operations so that it
runs on CUDA and on the CPU. Each point (e.g. a pixel with features
``(x/θα, y/θα, r/θβ, g/θβ, b/θβ)``) is lifted onto the hyperplane
``Σ x = 0`` of R^(d+1), where the lattice's simplices tile space; its value is
*splatted* onto the d+1 vertices of its enclosing simplex with barycentric
weights, the lattice is *blurred* with a [1/2, 1, 1/2] kernel along each of the
d+1 lattice directions, and values are *sliced* back with the same weights.
The result approximates ``out_i = Σ_j exp(-|f_i − f_j|² / 2) v_j`` up to one
global factor (which the dense CRF's normalisation cancels).

The lattice geometry follows the reference implementation inside the exact CRF
(Krähenbühl's densecrf, which pydensecrf2 wraps): the same feature scaling,
the same blur weights and the same slicing, so the two filter the same way.

On the CPU, splatting and slicing are products with a sparse (CSR) matrix of the barycentric weights.
Hashing is a sort: vertex coordinates are packed into one int64 key per
vertex and ``torch.unique`` numbers the occupied vertices; neighbours along a
lattice direction differ by a constant key offset and are found by binary
search (``torch.searchsorted``). Building costs one sort of N·(d+1) keys; each
filtering costs two scatters/gathers of N·(d+1) rows of C values and
2·(d+1) gathers of the M occupied vertices.
"""

from __future__ import annotations

import math
import warnings

import torch


class Permutohedral:
    """A lattice built for N points in d dimensions, reusable for any number of filterings.

    Args:
        features: (N, d) float positions, already divided by the Gaussian's standard deviation per dimension.

    Attributes:
        num_vertices: M, the number of occupied lattice vertices.
    """

    def __init__(self, features: torch.Tensor):
        if features.ndim != 2 or features.shape[1] < 1:
            raise ValueError(f"features must be (N, d) with d >= 1, not {tuple(features.shape)}")
        f = features.float()
        n, d = f.shape
        self.n, self.d = n, d
        dev = f.device
        d1 = d + 1
        # Lift onto the hyperplane Σ x = 0 of R^(d+1); the scaling makes the blur below a unit-variance Gaussian.
        inv_std = math.sqrt(2.0 / 3.0) * d1
        scale = torch.tensor([inv_std / math.sqrt((i + 1) * (i + 2)) for i in range(d)], device=dev)
        cf = f * scale
        elevated = torch.empty((n, d1), device=dev)
        sm = torch.zeros(n, device=dev)
        for i in range(d, 0, -1):
            elevated[:, i] = sm - i * cf[:, i - 1]
            sm = sm + cf[:, i - 1]
        elevated[:, 0] = sm
        # Nearest remainder-0 lattice point and the ordering of the residuals.
        rem0 = torch.round(elevated / d1) * d1
        total = torch.round(rem0.sum(dim=1) / d1).long()
        diff = elevated - rem0
        # rank[i] = how many coordinates have a larger residual (ties: the lower index counts as larger).
        idx = torch.arange(d1, device=dev)
        order = torch.sort(diff, dim=1, descending=True, stable=True).indices
        rank = torch.empty_like(order).scatter_(1, order, idx.expand(n, d1).contiguous()) + total[:, None]
        over, under = rank >= d1, rank < 0
        rank = rank - d1 * over.long() + d1 * under.long()
        rem0 = rem0 - d1 * over.float() + d1 * under.float()
        # Barycentric weights of the d+1 vertices of the enclosing simplex.
        v = (elevated - rem0) / d1
        bary = torch.zeros((n, d + 2), device=dev)
        bary.scatter_add_(1, d - rank, v)
        bary.scatter_add_(1, d1 - rank, -v)
        bary[:, 0] += 1.0 + bary[:, d1]
        self.weights = bary[:, :d1].contiguous()
        """(N, d+1) barycentric weight of each point's vertex of remainder r."""
        # Vertex r of a point's simplex has integer coordinates base + r − (d+1)·[rank > d − r] (the first d
        # suffice: coordinates sum to 0). Packed into one int64 per vertex with these strides, with a margin
        # for the blur's neighbours (which differ by −1 or +d per coordinate):
        base = rem0[:, :d].round().long()
        lo = base.amin(dim=0) - 2 * d1 - 1
        span = base.amax(dim=0) - lo + 2 * d1 + 2
        strides = torch.ones(d, dtype=torch.long, device=dev)
        for i in range(d - 2, -1, -1):
            strides[i] = strides[i + 1] * span[i + 1]
        if float(span.double().log2().sum()) > 62:
            raise ValueError("features span too large a range for the lattice's 64-bit keys")
        # code(r) = code(base) + r·Σ strides − (d+1)·(sum of the strides of the coordinates ranked above d − r);
        # that last sum, over ranks from the top, is a cumulative sum of the strides placed at their ranks.
        at_rank = torch.zeros((n, d1 + 1), dtype=torch.long, device=dev)
        at_rank.scatter_(1, rank[:, :d], strides.expand(n, d).contiguous())
        above = at_rank.flip(1).cumsum(dim=1)[:, :d1]  # above[:, r] = Σ strides with rank > d − r
        codes = ((base - lo) * strides).sum(dim=1, keepdim=True) + idx * strides.sum() - d1 * above  # (N, d+1)
        uniq, inverse = torch.unique(codes.reshape(-1), sorted=True, return_inverse=True)
        self.num_vertices = m = int(uniq.numel())
        self.index = inverse.reshape(n, d1)
        """(N, d+1) vertex number of each point's vertex of remainder r."""
        # Neighbours along direction j: all coordinates −1 except coordinate j +d (and the reverse).
        self.neighbours: list[tuple[torch.Tensor, torch.Tensor]] = []
        for j in range(d1):
            step = -strides.sum()
            if j < d:
                step = step + d1 * strides[j]
            self.neighbours.append((_lookup(uniq, uniq + step, m), _lookup(uniq, uniq - step, m)))
        self.alpha = 1.0 / (1.0 + 2.0 ** (-d))
        self._all: _Points | None = None

    def part(self, rows: torch.Tensor | None = None) -> _Points:
        """The points ``rows`` (K,) (default: all N), for :meth:`splat` and :meth:`slice` on a subset."""
        if rows is None:
            if self._all is None:
                self._all = _Points(self.weights, self.index, self.num_vertices + 1)
            return self._all
        return _Points(self.weights[rows], self.index[rows], self.num_vertices + 1)

    def splat(self, values: torch.Tensor, part: _Points | None = None) -> torch.Tensor:
        """(N, C) point values (or (K, C) for the points of ``part``) → (M + 1, C) lattice values; row M is 0."""
        return (part or self.part()).splat(values)

    def blur(self, lattice: torch.Tensor) -> torch.Tensor:
        """One [1/2, 1, 1/2] pass along every lattice direction; (M + 1, C) → (M + 1, C), row M stays 0."""
        for n1, n2 in self.neighbours:
            lattice = lattice + 0.5 * (lattice[n1] + lattice[n2])
        return lattice

    def slice(self, lattice: torch.Tensor, part: _Points | None = None) -> torch.Tensor:
        """(M + 1, C) lattice values → (N, C) (or (K, C) for the points of ``part``)."""
        return (part or self.part()).slice(lattice) * self.alpha

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        """Gaussian filtering of (N, C) values: splat, blur, slice."""
        return self.slice(self.blur(self.splat(values)))


class _Points:
    """Splatting and slicing for a set of K points: their (K, d+1) barycentric weights and vertex numbers.

    On the CPU both are sparse matrix products (CSR, built on first use; several times faster there than
    scatter / gather); on CUDA, ``index_add_`` and gathers.
    """

    def __init__(self, weights: torch.Tensor, index: torch.Tensor, rows: int):
        self.weights, self.index, self.rows = weights, index, rows
        self._slice_mat: torch.Tensor | None = None
        self._splat_mat: torch.Tensor | None = None

    def _matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._slice_mat is None:
            k, v = self.index.shape
            crow = torch.arange(0, k * v + 1, v, device=self.index.device)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are stable
                warnings.simplefilter("ignore", UserWarning)
                self._slice_mat = torch.sparse_csr_tensor(crow, self.index.reshape(-1), self.weights.reshape(-1),
                                                          size=(k, self.rows), check_invariants=False)
            self._splat_mat = self._slice_mat.t().to_sparse_csr()
        return self._slice_mat, self._splat_mat  # type: ignore[return-value]

    def splat(self, values: torch.Tensor) -> torch.Tensor:
        if values.device.type == "cpu":
            return self._matrices()[1] @ values
        out = torch.zeros((self.rows, values.shape[1]), dtype=values.dtype, device=values.device)
        for r in range(self.index.shape[1]):
            out.index_add_(0, self.index[:, r], values * self.weights[:, r:r + 1])
        return out

    def slice(self, lattice: torch.Tensor) -> torch.Tensor:
        if lattice.device.type == "cpu":
            return self._matrices()[0] @ lattice
        w, index = self.weights, self.index
        out = lattice[index[:, 0]] * w[:, 0:1]
        for r in range(1, index.shape[1]):
            out.addcmul_(lattice[index[:, r]], w[:, r:r + 1])
        return out


def _lookup(sorted_keys: torch.Tensor, queries: torch.Tensor, missing: int) -> torch.Tensor:
    """Index of each query in ``sorted_keys``, or ``missing`` where it is absent; ``missing`` appended last.

    The appended entry makes the result index an (M + 1)-row lattice whose last row (M) is the zero row.
    """
    pos = torch.searchsorted(sorted_keys, queries).clamp_(max=sorted_keys.numel() - 1)
    found = sorted_keys[pos] == queries
    # The zero row M stands in for absent vertices; it is never written.
    pos[~found] = missing
    return torch.cat([pos, pos.new_tensor([missing])])


__all__ = ["Permutohedral"]
