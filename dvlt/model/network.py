"""DVLT: DINOv2 features refined by one weight-tied block pair looped K times, then decoded.

    images (B, S, 3, H, W) in [0, 1]
      -> DINOv2 ViT-B/14-reg4 patch tokens z0                (B*S, N, 768)
      -> [camera token, 4 registers, z0] per view             (B*S, P, 768), P = 5 + N
      -> K x LoopedBlockPair(t_k, t_k+1)                      (B*S, P, 768)
      -> ray head (dir, origin), conv depth head (depth, conf), camera MLP
      -> cameras fitted to the rays, depth un-projected to world points

`DVLT` is both the network (its `state_dict()` is exactly the released
checkpoint layout, no prefix) and the inference API of the model card:
`load_pretrained`, `setup_test`, `predict`.
"""

from __future__ import annotations

import operator
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..cameras import Cameras
from ..errors import InputError, StepsError
from ..geometry import fit_cameras_from_rays, unproject_depth
from ..runtime import (
    autocast_for,
    precision_name,
    prepare_for_inference,
    requested_backend,
    resolve_device,
    resolve_precision,
)
from ..weights import DEFAULT_FILENAME, DEFAULT_REPO, load_weights
from .config import VALIDATED_STEPS, DVLTConfig
from .encoder import DinoV2Encoder
from .heads import CameraHead, ConvDepthHead, RayHead
from .layers import rope_positions, rope_table
from .loop import LoopedBlockPair, step_schedule

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INT8 = "int8"  # opt-in precision: dynamic int8 loop Linear layers on CPU (see dvlt.model.quantized)
MAX_EXP_INPUT = 15.0  # depth = exp(min(x, 15)) keeps bf16 finite

# progress(stage, done, total): stage is "encode", "loop" or "decode".
ProgressHook = Callable[[str, int, int], None]


def check_steps(steps: Any, warn: bool = True) -> int:
    """K as an int >= 1; warns outside the validated 8..16 range."""
    try:
        if isinstance(steps, bool):
            raise TypeError
        steps = operator.index(steps)
    except TypeError:
        raise StepsError(f"steps (K) must be a whole number, got {steps!r}.") from None
    if steps < 1:
        raise StepsError(f"steps (K) must be at least 1, got {steps}.")
    low, high = VALIDATED_STEPS
    if warn and not low <= steps <= high:
        warnings.warn(
            f"K={steps} is outside the validated range {low}-{high}; quality may drop.", UserWarning, stacklevel=3
        )
    return steps


class DVLT(nn.Module):
    """The DVLT network and its inference API (see the module docstring)."""

    def __init__(
        self,
        img_size: int = DVLTConfig.img_size,
        inference_steps: int = DVLTConfig.inference_steps,
        precision: str = "auto",
        config: DVLTConfig | None = None,
        decode_chunk_views: int | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.config = config or DVLTConfig(img_size=img_size, inference_steps=inference_steps)
        cfg = self.config
        self.precision = precision
        self.backend = requested_backend(backend)  # on CPU: 'auto' = OpenVINO where installed, else torch
        self._decode_chunk_views = decode_chunk_views  # None: 2 views per head pass on CPU, 16 on CUDA
        self.compiled_loop_step: Callable | None = None  # set by dvlt.model.compiled.use_compiled_loop_step
        self.compiled_loop_dtype = torch.float32
        self._int8_loop: tuple[tuple, nn.Module] | None = None  # (weights key, quantised pair): not a submodule
        self.camera_token = nn.Parameter(torch.zeros(1, 2, 1, cfg.embed_dim))  # [first view, other views]
        self.register_token = nn.Parameter(torch.zeros(1, 1, cfg.num_register_tokens, cfg.embed_dim))
        self.patch_embed_encoder = DinoV2Encoder(cfg)
        self.recurrent_blocks = nn.ModuleList([LoopedBlockPair(cfg)])
        self.ray_decoder = RayHead(cfg)
        self.depth_decoder = ConvDepthHead(cfg)
        self.camera_head = CameraHead(cfg)
        self.register_buffer("image_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()

    # ------------------------------------------------------------ set-up
    @property
    def device(self) -> torch.device:
        return self.camera_token.device

    @property
    def decode_chunk_views(self) -> int:
        """Views decoded per head pass: bounds the memory of the full-resolution conv head."""
        if self._decode_chunk_views:
            return self._decode_chunk_views
        return 8 * self.config.decode_chunk_views if self.device.type == "cuda" else self.config.decode_chunk_views

    @property
    def img_size(self) -> int:
        return self.config.img_size

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def inference_steps(self) -> int:
        return self.config.inference_steps

    def load_pretrained(
        self,
        source: str | os.PathLike = DEFAULT_REPO,
        strict: bool = True,
        filename: str = DEFAULT_FILENAME,
        revision: str | None = None,
    ) -> tuple[list[str], list[str]]:
        """Load weights from a Hub repo id, a local directory or file, or an HTTP(S) URL.

        Raises CheckpointNotFoundError / CheckpointUnavailableError / CheckpointMismatchError
        with a message that says how to fix the problem. Returns (missing, unexpected) keys.
        """
        return load_weights(self, source, strict, filename, revision)

    def setup_test(self, accelerator_or_device: Any = None) -> DVLT:
        """Move to the accelerator's device (or a device / 'auto'), switch to eval, use all CPU cores."""
        return prepare_for_inference(self, accelerator_or_device)

    def channels_last_modules(self) -> list[nn.Module]:
        """Modules whose conv weights run faster in NHWC: the full-resolution depth head."""
        return [self.depth_decoder]

    def compute_dtype(self, device: torch.device | None = None) -> torch.dtype:
        """dtype the network computes in on `device` under this model's precision setting."""
        if self.precision == INT8:  # int8 loop products, everything else float32
            return torch.float32
        return resolve_precision(self.precision, device or self.device)

    def cpu_backend(self):
        """The OpenVINO backend this model runs on (`dvlt.model.openvino_backend`), or None for torch eager:
        on the CPU, float32/bf16, unless backend='torch', OpenVINO is missing or the model did not convert.
        A model whose weights the user cast (model.to(torch.bfloat16)) or gave a compiled loop step stays on torch."""
        if self.device.type != "cpu" or self.precision == INT8 or self.compiled_loop_step is not None:
            return None
        if self.camera_token.dtype != torch.float32:
            return None
        from .openvino_backend import OpenVINOBackend, openvino_version

        choice = requested_backend(self.backend)
        if choice == "torch":
            return None
        if openvino_version() is None:
            if choice == "openvino":
                raise RuntimeError("backend='openvino' needs the openvino package: pip install openvino")
            return None
        return OpenVINOBackend.for_model(self, precision_name(self.precision, "cpu"))

    def runtime_name(self) -> str:
        """'OpenVINO' or 'PyTorch': what runs the network on this model's device now."""
        return "OpenVINO" if self.cpu_backend() is not None else "PyTorch"

    def loop_block_pair(self) -> nn.Module:
        """The block pair the loop runs: the float one, or its int8 copy under precision='int8' on CPU."""
        pair = self.recurrent_blocks[0]
        if self.precision != INT8 or self.device.type != "cpu":
            return pair
        from .quantized import quantize_loop, weights_key

        key = weights_key(pair)
        if self._int8_loop is None or self._int8_loop[0] != key:
            self._int8_loop = (key, quantize_loop(pair))
        return self._int8_loop[1]

    # ------------------------------------------------------------ network
    def tokens(self, images: Tensor) -> Tensor:
        """Encode views and prepend the special tokens: (B, S, 3, H, W) -> (B*S, P, dim)."""
        batch, views, _, height, width = images.shape
        flat = (images.reshape(batch * views, 3, height, width) - self.image_mean) / self.image_std
        z0 = self.patch_embed_encoder(flat.to(self.patch_embed_encoder.pos_embed.dtype))
        return self.with_special_tokens(z0, views)

    def with_special_tokens(self, z0: Tensor, views: int) -> Tensor:
        """Prepend the camera token (the first view's own, shared by the others) and the registers:
        patch tokens (B*S, N, dim) -> (B*S, P, dim)."""
        batch = z0.shape[0] // views
        camera_index = torch.ones(views, dtype=torch.long, device=z0.device)
        camera_index[0] = 0  # the first view is the reference: world frame
        camera = self.camera_token[0, camera_index].repeat(batch, 1, 1)  # (B*S, 1, dim)
        registers = self.register_token[0].expand(batch * views, -1, -1)
        return torch.cat((camera.to(z0.dtype), registers.to(z0.dtype), z0), dim=1)

    def forward(
        self, images: Tensor, steps: int | None = None, progress: ProgressHook | None = None
    ) -> dict[str, Tensor]:
        """Raw network outputs (float32) for images (B, S, 3, H, W) in [0, 1], H and W multiples of 14.

        Keys: rays (B,S,H,W,6), depth (B,S,H,W), depth_conf (B,S,H,W),
        world_points_direct (B,S,H,W,3) = origin + direction * depth, pose_enc (B,S,9).
        """
        steps = check_steps(self.config.inference_steps if steps is None else steps, warn=False)
        report = progress or (lambda stage, done, total: None)
        backend = self.cpu_backend()
        if backend is None:
            return self._forward(images, steps, report, None)
        with torch.autocast(device_type="cpu", enabled=False):  # OpenVINO picks its own precision per op
            return self._forward(images, steps, report, backend.session())

    def _forward(self, images: Tensor, steps: int, report: ProgressHook, backend) -> dict[str, Tensor]:
        """forward() on torch eager (backend None) or on an OpenVINO session."""
        cfg = self.config
        batch, views, _, height, width = images.shape
        report("encode", 0, 1)
        x = self.tokens(images) if backend is None else backend.tokens(images)
        positions = rope_positions(height // cfg.patch_size, width // cfg.patch_size, cfg.special_tokens, images.device)
        rope = rope_table(positions, cfg.embed_dim // cfg.num_heads, cfg.rope_frequency, torch.float32)
        report("encode", 1, 1)

        block_pair = self.loop_block_pair()
        compiled = self.compiled_loop_step if batch == 1 else None
        for index, (t_now, t_next) in enumerate(step_schedule(steps)):
            if backend is not None:
                x = backend.step(x, *block_pair.gates(t_now, t_next), rope, views)
            elif compiled is None:
                x = block_pair(x, t_now, t_next, rope, views)
            else:  # ahead-of-time compiled step (see dvlt.model.compiled)
                dtype = self.compiled_loop_dtype
                gates = (g.to(dtype) for g in block_pair.gates(t_now, t_next))
                x = compiled(x.to(dtype), *gates, rope.cos, rope.sin)
            report("loop", index + 1, steps)

        heads = self.decode_views if backend is None else backend.decode_views
        outputs = self.decode(x, rope, height, width, report, heads)
        return {key: value.reshape(batch, views, *value.shape[1:]) for key, value in outputs.items()}

    def decode_views(self, views: Tensor, rope, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """The dense heads on a few views (V, P, dim): rays (V, 6, H, W), raw depth (V, 2, H, W), camera tokens."""
        rays, camera_tokens = self.ray_decoder(views, rope, height, width)
        return rays, self.depth_decoder(views, rope, height, width), camera_tokens

    def decode(
        self, x: Tensor, rope, height: int, width: int, report: ProgressHook, heads: Callable | None = None
    ) -> dict[str, Tensor]:
        """Run the per-view heads (`decode_views` or a backend's) on chunks of views so head memory stays bounded."""
        heads = heads or self.decode_views
        chunk = max(1, self.decode_chunk_views)
        total = x.shape[0]
        parts: dict[str, list[Tensor]] = {"rays": [], "raw_depth": [], "camera_tokens": []}
        report("decode", 0, total)
        for start in range(0, total, chunk):
            rays, raw_depth, camera_tokens = heads(x[start : start + chunk], rope, height, width)
            parts["rays"].append(rays.permute(0, 2, 3, 1))  # (V, H, W, 6)
            parts["raw_depth"].append(raw_depth)
            parts["camera_tokens"].append(camera_tokens)
            report("decode", min(start + chunk, total), total)
        rays = torch.cat(parts["rays"]).float()
        raw_depth = torch.cat(parts["raw_depth"]).float()
        depth = torch.exp(raw_depth[:, 0].clamp(max=MAX_EXP_INPUT))
        confidence = torch.exp(raw_depth[:, 1]) + 1.0
        return {
            "rays": rays,
            "depth": depth,
            "depth_conf": confidence,
            "world_points_direct": rays[..., 3:] + rays[..., :3] * depth[..., None],
            "pose_enc": self.camera_head(torch.cat(parts["camera_tokens"])).float(),
        }

    # ------------------------------------------------------------ inference API
    def predict(
        self,
        batch: Mapping[str, Tensor] | Tensor,
        accelerator: Any = None,
        steps: int | None = None,
        progress: ProgressHook | None = None,
    ) -> dict[str, Any]:
        """Reconstruct: cameras, depth, confidence, world points and rays for a preprocessed batch.

        batch: the dict from `preprocess_images` (or its `images` tensor).
        Returns cameras (list of B Cameras, camera_to_worlds (S,3,4) OpenCV c2w, first view = world),
        extrinsics_c2w (B,S,3,4), intrinsics (B,S,3,3), depths, depths_conf (B,S,H,W),
        world_points (depth through the fitted cameras), world_points_direct (origin + dir * depth)
        (B,S,H,W,3), rays (B,S,H,W,6: direction then origin), pose_enc (B,S,9), steps.
        """
        images = batch["images"] if isinstance(batch, Mapping) else batch
        if not isinstance(images, Tensor) or images.ndim != 5 or images.shape[2] != 3:
            raise InputError("predict expects images shaped (B, S, 3, H, W); build them with preprocess_images().")
        height, width = images.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise InputError(
                f"image size {height}x{width} is not a multiple of {self.patch_size}; use preprocess_images()."
            )
        steps = check_steps(self.inference_steps if steps is None else steps)
        if accelerator is not None and resolve_device(accelerator) != self.device:
            self.setup_test(accelerator)
        device = self.device
        images = images.to(device=device, dtype=torch.float32)
        dtype = torch.float32 if self.cpu_backend() is not None else self.compute_dtype(device)  # OpenVINO: own
        with torch.inference_mode():
            with autocast_for(device, dtype):
                raw = self(images, steps, progress)
            with torch.autocast(device_type=device.type, enabled=False):
                return self.postprocess(raw, height, width, steps)

    def postprocess(self, raw: dict[str, Tensor], height: int, width: int, steps: int) -> dict[str, Any]:
        """Fit cameras to the rays and un-project depth through them (float32)."""
        batch, views = raw["depth"].shape[:2]
        rays = raw["rays"].flatten(0, 1)
        c2w, intrinsics = fit_cameras_from_rays(rays, torch.ones(rays.shape[:3], device=rays.device), self.patch_size)
        c2w = c2w[:, :3].reshape(batch, views, 3, 4)
        intrinsics = intrinsics.reshape(batch, views, 3, 3)
        return {
            "cameras": [Cameras.from_matrices(c2w[b], intrinsics[b], height, width) for b in range(batch)],
            "extrinsics_c2w": c2w,
            "intrinsics": intrinsics,
            "depths": raw["depth"],
            "depths_conf": raw["depth_conf"],
            "world_points": unproject_depth(raw["depth"], intrinsics, c2w),
            "world_points_direct": raw["world_points_direct"],
            "rays": raw["rays"],
            "pose_enc": raw["pose_enc"],
            "steps": int(steps),
        }
