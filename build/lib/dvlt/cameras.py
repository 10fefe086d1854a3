"""A small batch-of-pinhole-cameras container in the OpenCV convention."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Cameras:
    """S pinhole cameras: camera-to-world [R | t] (S, 3, 4), OpenCV axes (x right, y down, z forward).

    Intrinsics are in pixels of the image the model saw (height x width), with
    the pixel-centre convention of the predicted rays: pixel (i, j) covers
    [i, i+1) x [j, j+1), so its centre is at (i + 0.5, j + 0.5).
    """

    camera_to_worlds: Tensor  # (S, 3, 4)
    fx: Tensor  # (S, 1)
    fy: Tensor
    cx: Tensor
    cy: Tensor
    width: int
    height: int

    @classmethod
    def from_matrices(cls, c2w: Tensor, intrinsics: Tensor, height: int, width: int) -> Cameras:
        """Build from (S, 3|4, 4) camera-to-world and (S, 3, 3) intrinsic matrices."""
        return cls(
            camera_to_worlds=c2w[:, :3, :],
            fx=intrinsics[:, 0, 0, None],
            fy=intrinsics[:, 1, 1, None],
            cx=intrinsics[:, 0, 2, None],
            cy=intrinsics[:, 1, 2, None],
            width=width,
            height=height,
        )

    def __len__(self) -> int:
        return self.camera_to_worlds.shape[0]

    def __getitem__(self, index) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Cameras(
            self.camera_to_worlds[index],
            self.fx[index],
            self.fy[index],
            self.cx[index],
            self.cy[index],
            self.width,
            self.height,
        )

    def get_intrinsics_matrices(self) -> Tensor:
        """(S, 3, 3) K matrices."""
        K = torch.zeros(len(self), 3, 3, dtype=self.fx.dtype, device=self.fx.device)
        K[:, 0, 0], K[:, 1, 1] = self.fx[:, 0], self.fy[:, 0]
        K[:, 0, 2], K[:, 1, 2] = self.cx[:, 0], self.cy[:, 0]
        K[:, 2, 2] = 1.0
        return K

    def world_to_cameras(self) -> Tensor:
        """(S, 3, 4) world-to-camera [R^T | -R^T t]."""
        R, t = self.camera_to_worlds[:, :, :3], self.camera_to_worlds[:, :, 3:]
        Rt = R.transpose(1, 2)
        return torch.cat((Rt, -Rt @ t), dim=2)

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(
            self.camera_to_worlds.to(device),
            self.fx.to(device),
            self.fy.to(device),
            self.cx.to(device),
            self.cy.to(device),
            self.width,
            self.height,
        )
