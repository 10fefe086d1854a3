"""Camera geometry: fitting pinhole cameras to predicted rays, and un-projecting depth.

The camera fit follows the released DVLT post-processing: rays are sampled on
the patch grid, a homography from an identity camera's rays to the predicted
directions is fitted with seeded RANSAC + weighted DLT, and a QL decomposition
splits it into rotation and normalised intrinsics. Everything is batched over
views; the only randomness is a CPU generator seeded with 42, so results do not
depend on the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

RANSAC_ITERATIONS = 100
RANSAC_SAMPLE_SIZE = 8
RANSAC_CANDIDATE_FRACTION = 0.3
RANSAC_INLIER_THRESHOLD = 0.2
RANSAC_SEED = 42
MIN_ABS_Z = 1e-4
FOCAL_NORM_RANGE = (0.1, 10.0)


def identity_ray_grid(grid_h: int, grid_w: int, height: int, width: int, device: torch.device) -> Tensor:
    """Image-plane (x, y) at z=1 of an f=1, c=1 camera on a 2x2 image, sampled where
    `F.interpolate(align_corners=True)` samples the (height, width) pixel-centre rays. Returns (N, 2)."""

    def axis(cells: int, pixels: int) -> Tensor:
        if cells > 1:
            idx = torch.linspace(0, pixels - 1, cells, dtype=torch.float32, device=device)
        else:
            idx = torch.tensor([(pixels - 1) / 2], dtype=torch.float32, device=device)
        return (idx + 0.5) * 2.0 / pixels - 1.0

    y, x = torch.meshgrid(axis(grid_h, height), axis(grid_w, width), indexing="ij")
    return torch.stack((x, y), dim=-1).reshape(-1, 2)


def weighted_homography(src: Tensor, dst: Tensor, weights: Tensor) -> Tensor:
    """Weighted DLT: H (..., 3, 3) with dst ~ H [src, 1], normalised so H[2, 2] = 1.

    src, dst: (..., n, 2); weights: (..., n). Zero-weight points add zero rows, so
    masking by weight equals dropping the points.
    """
    sw = weights.sqrt()[..., None]
    x, y = src[..., :1], src[..., 1:]
    u, v = dst[..., :1], dst[..., 1:]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_u = torch.cat((-x, -y, -one, zero, zero, zero, x * u, y * u, u), dim=-1) * sw
    rows_v = torch.cat((zero, zero, zero, -x, -y, -one, x * v, y * v, v), dim=-1) * sw
    system = torch.cat((rows_u, rows_v), dim=-2)  # (..., 2n, 9)
    h = torch.linalg.svd(system, full_matrices=False).Vh[..., -1, :]
    H = h.reshape(*h.shape[:-1], 3, 3)
    return H / H[..., 2:3, 2:3]


def ql_decomposition(A: Tensor) -> tuple[Tensor, Tensor]:
    """A = Q L with Q orthogonal and L lower-triangular with a positive diagonal; batched (..., 3, 3)."""
    flip = torch.flip(torch.eye(3, dtype=A.dtype, device=A.device), dims=(0,))
    q, r = torch.linalg.qr(A @ flip)
    Q, L = q @ flip, flip @ r @ flip
    signs = torch.sign(torch.diagonal(L, dim1=-2, dim2=-1))
    return Q * signs[..., None, :], L * signs[..., :, None]


def ransac_sample_indices(candidates: int, sample: int = RANSAC_SAMPLE_SIZE) -> Tensor:
    """(iterations, sample) indices into the candidate list, identical on every device."""
    generator = torch.Generator().manual_seed(RANSAC_SEED)
    draws = [torch.randperm(candidates, generator=generator)[:sample] for _ in range(RANSAC_ITERATIONS)]
    return torch.stack(draws)


def ransac_homography(src: Tensor, dst: Tensor, weights: Tensor) -> Tensor:
    """Robust homography per view. src (N, 2) shared; dst (V, N, 2); weights (V, N). Returns (V, 3, 3)."""
    views, points = weights.shape
    # tiny images (fewer than 27 patches) have fewer candidates than a full sample
    n_candidates = min(points, max(RANSAC_SAMPLE_SIZE, int(points * RANSAC_CANDIDATE_FRACTION)))
    sample = min(RANSAC_SAMPLE_SIZE, n_candidates)
    order = torch.argsort(weights, dim=1, descending=True, stable=True)[:, :n_candidates]
    picks = order[:, ransac_sample_indices(n_candidates, sample).to(weights.device)]  # (V, iters, sample)
    gather = lambda t: torch.gather(t, 1, picks.flatten(1)[..., None].expand(-1, -1, t.shape[-1]))  # noqa: E731
    sample_src = gather(src.expand(views, -1, -1)).reshape(views, RANSAC_ITERATIONS, sample, 2)
    sample_dst = gather(dst).reshape(views, RANSAC_ITERATIONS, sample, 2)
    sample_w = torch.gather(weights, 1, picks.flatten(1)).reshape(views, RANSAC_ITERATIONS, sample)
    hypotheses = weighted_homography(sample_src, sample_dst, sample_w)  # (V, iters, 3, 3)

    src_h = torch.cat((src, torch.ones_like(src[:, :1])), dim=1)  # (N, 3)
    projected = torch.einsum("vkij,nj->vkni", hypotheses, src_h)
    projected_xy = projected[..., :2] / projected[..., 2:].clamp(min=1e-8)
    errors = (projected_xy - dst[:, None]).norm(dim=-1)  # (V, iters, N)
    inliers = errors < RANSAC_INLIER_THRESHOLD
    best = torch.argmax((inliers * weights[:, None]).sum(dim=-1), dim=1)
    best_inliers = inliers[torch.arange(views, device=weights.device), best]  # (V, N)

    refit = weighted_homography(src.expand(views, -1, -1), dst, weights * best_inliers)
    too_few = best_inliers.sum(dim=1) < 4
    identity = torch.eye(3, dtype=refit.dtype, device=refit.device)
    return torch.where(too_few[:, None, None], identity, refit)


def fit_cameras_from_rays(rays: Tensor, weights: Tensor, patch_size: int) -> tuple[Tensor, Tensor]:
    """Pinhole cameras from per-pixel rays.

    rays: (V, H, W, 6) direction then origin; weights: (V, H, W) (ones in the released setting).
    Returns camera-to-world (V, 4, 4) (OpenCV) and intrinsics (V, 3, 3) in pixels of (H, W).
    """
    views, height, width, _ = rays.shape
    grid_h, grid_w = height // patch_size, width // patch_size
    rays = rays.float()
    patch_rays = F.interpolate(rays.permute(0, 3, 1, 2), size=(grid_h, grid_w), mode="bilinear", align_corners=True)
    patch_rays = patch_rays.flatten(2).transpose(1, 2)  # (V, N, 6)
    patch_w = F.interpolate(weights.float()[:, None], size=(grid_h, grid_w), mode="bilinear", align_corners=True)
    patch_w = patch_w.flatten(1)  # (V, N)

    directions = F.normalize(patch_rays[..., :3], dim=-1)
    valid = directions[..., 2].abs() > MIN_ABS_Z
    plane = torch.where(valid[..., None], directions[..., :2] / directions[..., 2:], directions[..., :2])
    src = identity_ray_grid(grid_h, grid_w, height, width, rays.device)
    H = ransac_homography(src, plane, torch.where(valid, patch_w, torch.zeros_like(patch_w)))
    H = torch.where((torch.linalg.det(H) < 0)[:, None, None], -H, H)

    rotation, lower = ql_decomposition(H)
    lower = lower / lower[:, 2:3, 2:3]
    focal_norm = torch.stack((lower[:, 0, 0], lower[:, 1, 1]), dim=-1).clamp(*FOCAL_NORM_RANGE)
    principal_norm = torch.stack((lower[:, 2, 0], lower[:, 2, 1]), dim=-1)
    half_size = torch.tensor([width / 2, height / 2], dtype=rays.dtype, device=rays.device)
    focal = half_size / focal_norm
    principal = (principal_norm + 1.0) * half_size

    origins = (patch_rays[..., 3:] * patch_w[..., None]).sum(dim=1) / (patch_w.sum(dim=1, keepdim=True) + 1e-8)
    c2w = torch.eye(4, dtype=rays.dtype, device=rays.device).repeat(views, 1, 1)
    c2w[:, :3, :3], c2w[:, :3, 3] = rotation, origins
    K = torch.zeros(views, 3, 3, dtype=rays.dtype, device=rays.device)
    K[:, 0, 0], K[:, 1, 1] = focal[:, 0], focal[:, 1]
    K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = principal[:, 0], principal[:, 1], 1.0
    return c2w, K


def unproject_depth(depth: Tensor, intrinsics: Tensor, c2w: Tensor, pixel_offset: float = 0.0) -> Tensor:
    """World points (..., H, W, 3) of z-depth maps (..., H, W) seen by pinhole cameras.

    pixel_offset 0.0 places pixel (i, j) at image coordinate (i, j), as the
    reference `world_points`; 0.5 uses pixel centres, the convention of the
    predicted rays and of COLMAP.
    """
    height, width = depth.shape[-2:]
    u = torch.arange(width, dtype=depth.dtype, device=depth.device) + pixel_offset
    v = torch.arange(height, dtype=depth.dtype, device=depth.device) + pixel_offset
    K = intrinsics[..., None, None, :, :]
    x = (u - K[..., 0, 2]) / K[..., 0, 0] * depth
    y = (v[:, None] - K[..., 1, 2]) / K[..., 1, 1] * depth
    camera = torch.stack((x, y, depth), dim=-1)
    R, t = c2w[..., None, None, :3, :3], c2w[..., None, None, :3, 3]
    return (R @ camera[..., None])[..., 0] + t


def project_points(points: Tensor, intrinsics: Tensor, c2w: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel coordinates (..., 2) and camera z (...) of world points (..., 3) in one camera (3,3)/(3|4,4)."""
    R, t = c2w[:3, :3], c2w[:3, 3]
    camera = (points - t) @ R
    z = camera[..., 2]
    pixels = (camera[..., :2] / z[..., None]) * torch.stack((intrinsics[0, 0], intrinsics[1, 1])) + intrinsics[:2, 2]
    return pixels, z
