"""Enumeration of shoebox image sources, in a fixed order and in bounded chunks.

Following Allen & Berkley (and rir-generator), the image with lattice index
(m, q) on an axis sits at (1 - 2q) s + 2 m L and has hit the lower wall |m - q|
times and the upper wall |m| times; its reflection order is the sum of |2m - q|
over the three axes. An image is one entry per axis, so all per-image
quantities are products or sums of per-axis tables gathered by index.

Sorted by coordinate, an axis's entries have reflection orders ..., 2, 1, 0, 1,
2, ... (a V), so both "within reach of the array" and "order <= K" select a
contiguous run of z entries for every (x, y) pair: images are generated column
by column without ever materialising the enclosing cube.

Every source of a group is enumerated at once (its axis tables are one row of an
(S, n) table; the entry count per axis does not depend on the source), source after
source in the same order as alone: on a GPU a room's sources cost one pass of a few
dozen kernels instead of one pass each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch

__all__ = ["Axis", "make_axis", "iter_images"]


@dataclass(frozen=True)
class Axis:
    """Image entries of one axis for S sources, each row sorted by coordinate (samples)."""

    coord: torch.Tensor  # (S, n) float64
    low_hits: torch.Tensor  # (S, n) hits on the wall at 0
    high_hits: torch.Tensor  # (S, n) hits on the wall at L
    order: torch.Tensor  # (S, n) L1 reflection order contributed by this axis


def make_axis(length: float, src: torch.Tensor, limit: float, order: int) -> Axis:
    """Entries whose |m| <= ceil(limit / 2L) (rir-generator's bound) and order <= `order`, for the
    source coordinates `src` (S,) float64 along this axis."""
    device = src.device
    bound = math.ceil(limit / (2.0 * length))
    m = torch.arange(-bound, bound + 1, device=device).repeat_interleave(2)
    q = torch.tensor([0, 1], device=device).repeat(2 * bound + 1)
    l1 = (2 * m - q).abs()
    if order >= 0:
        m, q, l1 = m[l1 <= order], q[l1 <= order], l1[l1 <= order]
    coord = (1 - 2 * q).to(torch.float64) * src[:, None] + 2.0 * m.to(torch.float64) * length  # (S, n)
    perm = torch.argsort(coord, dim=1)
    return Axis(coord.gather(1, perm), (m - q).abs()[perm], m.abs()[perm], l1[perm])


def _order_runs(axis: Axis, max_order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For K = 0..max_order, the run [lo[s, K], hi[s, K]) of each source's entries with order <= K."""
    ks = torch.arange(max_order + 1, device=axis.order.device)
    inside = axis.order[:, None, :] <= ks[None, :, None]  # (S, K, n)
    count = inside.sum(dim=2)
    lo = torch.where(count > 0, inside.int().argmax(dim=2), 0)
    return lo, lo + count


def _search_rows(sorted_rows: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """searchsorted(sorted_rows[rows[k]], values[k]) for every k; `rows` is non-decreasing."""
    count = torch.bincount(rows, minlength=sorted_rows.shape[0])
    first = count.cumsum(0) - count
    slot = torch.arange(len(rows), device=rows.device) - first[rows]
    table = torch.full((sorted_rows.shape[0], max(1, int(count.max()))), math.inf, dtype=values.dtype,
                       device=values.device)
    table[rows, slot] = values
    return torch.searchsorted(sorted_rows, table)[rows, slot]


def iter_images(axes: tuple[Axis, Axis, Axis], center: torch.Tensor, reach: float, order: int,
                max_images: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield index quadruples (source, ix, iy, iz) of images within `reach` of `center` (and of
    order <= `order`), source after source.

    The concatenation of all chunks is the same whatever `max_images` is; chunks hold
    at most max(`max_images`, one z column) images.
    """
    ax, ay, az = axes
    device = center.device
    rx2 = (ax.coord - center[0]) ** 2  # (S, nx)
    ry2 = (ay.coord - center[1]) ** 2
    room2 = reach * reach - (rx2[:, :, None] + ry2[:, None, :])  # (S, nx, ny)
    pair_order = ax.order[:, :, None] + ay.order[:, None, :]
    keep = room2 > 0
    if order >= 0:
        keep &= pair_order <= order
    src, ix, iy = keep.nonzero(as_tuple=True)
    half = room2[src, ix, iy].sqrt()
    lo = _search_rows(az.coord, src, center[2] - half)
    hi = _search_rows(az.coord, src, center[2] + half)
    if order >= 0:
        run_lo, run_hi = _order_runs(az, order)
        left = order - pair_order[src, ix, iy]
        lo, hi = torch.maximum(lo, run_lo[src, left]), torch.minimum(hi, run_hi[src, left])
    counts = (hi - lo).clamp_min(0)
    ends = counts.cumsum(0)
    start_pair = 0
    while start_pair < len(counts):
        done = int(ends[start_pair - 1]) if start_pair else 0
        stop_pair = max(int(torch.searchsorted(ends, done + max_images, right=True)), start_pair + 1)
        c = counts[start_pair:stop_pair]
        n = int(c.sum())
        if n:
            rep = torch.repeat_interleave(torch.arange(start_pair, stop_pair, device=device), c, output_size=n)
            offset = torch.arange(n, device=device) - (ends[rep] - counts[rep] - done)
            yield src[rep], ix[rep], iy[rep], lo[rep] + offset
        start_pair = stop_pair
