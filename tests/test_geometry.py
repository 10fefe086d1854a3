"""Camera fitting from rays and the un-projection / projection helpers."""

from __future__ import annotations

import torch
from conftest import GOLDEN
from safetensors.torch import load_file

from dvlt.geometry import fit_cameras_from_rays, project_points, ql_decomposition, unproject_depth

FIXTURE = load_file(str(GOLDEN / "rays_to_pose.safetensors"))
PATCH = 14


def fit(rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return fit_cameras_from_rays(rays, torch.ones(rays.shape[:3]), PATCH)


def test_clean_rays_recover_ground_truth():
    c2w, intrinsics = fit(FIXTURE["rays"])
    gt_c2w, gt_intrinsics = FIXTURE["gt_extrinsics_c2w"], FIXTURE["gt_intrinsics"]
    assert (c2w[:, :3, :3] - gt_c2w[:, :, :3]).abs().max() <= 1e-4
    assert (c2w[:, :3, 3] - gt_c2w[:, :, 3]).abs().max() <= 1e-4
    assert (intrinsics - gt_intrinsics).abs().max() <= 0.01  # focal and principal point in pixels


def test_noisy_rays_match_reference_fit():
    c2w, intrinsics = fit(FIXTURE["noisy_rays"])
    ref_c2w, ref_intrinsics = FIXTURE["noisy_extrinsics_c2w"], FIXTURE["noisy_intrinsics"]
    # measured: rotation 3.8e-7, translation 0, intrinsics 6.1e-5 px (float32 round-off)
    assert (c2w[:, :3, :3] - ref_c2w[:, :3, :3]).abs().max() <= 1e-5
    assert (c2w[:, :3, 3] - ref_c2w[:, :3, 3]).abs().max() <= 1e-5
    assert (intrinsics - ref_intrinsics).abs().max() <= 1e-3
    # and the noise really moved the fit away from the truth: this test is not the clean one again
    assert (intrinsics - FIXTURE["gt_intrinsics"]).abs().max() > 0.01


def test_fit_is_device_and_call_independent():
    first, second = fit(FIXTURE["noisy_rays"]), fit(FIXTURE["noisy_rays"].clone())
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_ql_decomposition_reconstructs_matrix():
    A = torch.randn(5, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Q, L = ql_decomposition(A)
    assert torch.allclose(Q @ L, A, atol=1e-10)
    assert torch.allclose(Q @ Q.transpose(1, 2), torch.eye(3, dtype=A.dtype).expand(5, 3, 3), atol=1e-10)
    assert torch.all(torch.triu(L, diagonal=1).abs() < 1e-12) and torch.all(torch.diagonal(L, dim1=1, dim2=2) > 0)


def test_unproject_then_project_returns_pixel_centres():
    gt_c2w, gt_intrinsics = FIXTURE["gt_extrinsics_c2w"].double(), FIXTURE["gt_intrinsics"].double()
    depth = 1.0 + torch.rand(4, 126, 168, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    points = unproject_depth(depth, gt_intrinsics, gt_c2w, pixel_offset=0.5)
    pixels, z = project_points(points[2], gt_intrinsics[2], gt_c2w[2])
    rows, cols = torch.meshgrid(torch.arange(126.0), torch.arange(168.0), indexing="ij")
    assert torch.allclose(pixels[..., 0], cols.double() + 0.5, atol=1e-9)
    assert torch.allclose(pixels[..., 1], rows.double() + 0.5, atol=1e-9)
    assert torch.allclose(z, depth[2], atol=1e-9)
