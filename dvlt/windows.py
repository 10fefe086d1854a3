"""Long clips in bounded memory: overlapping windows, each aligned to the running result by a robust Sim(3).

A clip of N frames is cut into windows of W views that overlap by at least O
frames. Each window is one ordinary `reconstruct` call (same K, same
resolution) whose first view is a frame it shares with the previous window, so
every later window's world frame is a frame the running reconstruction already
holds. The same pixel of the same frame in two windows is an exact
correspondence, so the Sim(3) from window i+1 to the running reconstruction is
fitted directly to the two un-projected point maps of the shared frames
(Umeyama inside an IRLS loop with Huber weights). The windows are chained by
always aligning to the running, already aligned result; overlapping frames keep
the prediction with the higher mean confidence. World frame = frame 0.

The math here is numpy only; torch is imported only when a window is run.
Memory: the model sees one window at a time and only that window's frames are
decoded (when frames come from a callable); the merged arrays grow with the
clip at model resolution, as any result must.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import DVLTError, InputError
from .records import Reconstruction

if TYPE_CHECKING:  # pragma: no cover
    from .model import DVLT
    from .pipeline import Progress

HUBER_K = 1.345  # Huber threshold in robust standard deviations (95 % efficiency on Gaussian noise)
IRLS_ITERATIONS = 50
ALIGN_CONF_PERCENTILE = 50.0  # use the more confident half of the shared pixels
ALIGN_MAX_POINTS = 60_000  # correspondences per window pair (subsampled evenly beyond this)
CAMERA_WEIGHT = 1.0  # a shared camera centre weighs as much as all of its frame's shared pixels

FrameSource = Sequence[Image.Image] | Callable[[int], Image.Image]


class AlignmentError(DVLTError):
    """Two windows share too few usable pixels to be aligned."""


@dataclass(frozen=True)
class Sim3:
    """x -> scale * rotation @ x + translation."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,)

    @classmethod
    def identity(cls) -> Sim3:
        return cls(1.0, np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform (..., 3) points."""
        return self.scale * points @ self.rotation.T + self.translation

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous form."""
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = self.scale * self.rotation, self.translation
        return out

    def compose(self, inner: Sim3) -> Sim3:
        """self after inner."""
        return Sim3(
            self.scale * inner.scale,
            self.rotation @ inner.rotation,
            self.scale * self.rotation @ inner.translation + self.translation,
        )

    def inverse(self) -> Sim3:
        rotation = self.rotation.T
        return Sim3(1.0 / self.scale, rotation, -(rotation @ self.translation) / self.scale)


def umeyama(source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None) -> Sim3:
    """Weighted least-squares Sim(3) with target ~ s R source + t (Umeyama 1991), for (n, 3) arrays."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    w = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
    if len(source) < 3 or w.sum() <= 0:
        raise AlignmentError("A Sim(3) needs at least three weighted point pairs.")
    w = w / w.sum()
    mean_s, mean_t = w @ source, w @ target
    centred_s, centred_t = source - mean_s, target - mean_t
    covariance = (centred_t * w[:, None]).T @ centred_s
    variance = float(w @ (centred_s**2).sum(axis=1))
    if variance <= 0:
        raise AlignmentError("The shared points are all at one place; the windows cannot be aligned.")
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2] = -1.0
    rotation = (u * sign) @ vt
    scale = float((singular * sign).sum() / variance)
    return Sim3(scale, rotation, mean_t - scale * rotation @ mean_s)


def robust_sim3(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray | None = None,
    huber_k: float = HUBER_K,
    iterations: int = IRLS_ITERATIONS,
    initial: Sim3 | None = None,
    spread: np.ndarray | None = None,
) -> tuple[Sim3, np.ndarray]:
    """Sim(3) by iteratively reweighted Umeyama with Huber weights; returns it and the final per-pair weights.

    The Huber threshold is `huber_k` robust standard deviations (1.4826 x the median
    residual). The scale may only shrink between iterations: gross outliers then lose
    their pull while the fit tightens around the inliers, and a bad step cannot widen
    the threshold until everything counts again. IRLS is local: it starts at `initial`
    (default: plain Umeyama). `spread` (per pair, e.g. depth) makes residuals relative:
    predicted geometry errs in proportion to distance, so far points must not dominate.
    """
    base = np.ones(len(source)) if weights is None else np.asarray(weights, np.float64)
    extent = float(np.linalg.norm(target - target.mean(axis=0), axis=1).mean()) or 1.0
    exact = 1e-15 * (extent if spread is None else 1.0)  # residuals below this are rounding
    spread = np.ones(len(source)) if spread is None else np.asarray(spread, np.float64)
    base = base / spread**2
    current = base
    sim = initial or umeyama(source, target, current)
    sigma = np.inf
    for _ in range(iterations):
        residual = np.linalg.norm(target - sim.apply(source), axis=1) / spread
        sigma = min(sigma, 1.4826 * float(np.median(residual)))
        if sigma <= exact:
            break
        threshold = huber_k * sigma
        current = base * np.where(residual <= threshold, 1.0, threshold / np.maximum(residual, 1e-300))
        updated = umeyama(source, target, current)
        change = abs(updated.scale / sim.scale - 1) + np.abs(updated.rotation - sim.rotation).max()
        change += np.abs(updated.translation - sim.translation).max() / extent
        sim = updated
        if change < 1e-13:
            break
    return sim, current


def plan_windows(num_frames: int, window: int, overlap: int) -> list[list[int]]:
    """Frame indices of each window: W frames, consecutive windows sharing >= `overlap` frames.

    A later window starts on a frame its predecessor holds (its reference view); the
    last window is shifted back to end on the clip's last frame, so it still has W views.
    """
    if num_frames <= window:
        return [list(range(num_frames))]
    if window < 2:
        raise InputError(f"A window needs at least 2 frames (got {window}).")
    if not 1 <= overlap < window:
        raise InputError(
            f"The overlap must be between 1 and {window - 1} frames for windows of {window} (got {overlap})."
        )
    starts = list(range(0, num_frames - window, window - overlap))
    starts.append(num_frames - window)
    return [list(range(start, start + window)) for start in starts]


def apply_sim3(rec: Reconstruction, sim: Sim3) -> Reconstruction:
    """The reconstruction seen in another world frame: cameras moved, points mapped, depth scaled by s."""
    c2w = np.array(rec.c2w, dtype=np.float64)
    c2w[:, :, :3] = sim.rotation @ c2w[:, :, :3]
    c2w[:, :, 3] = sim.apply(c2w[:, :, 3])
    rec.c2w = c2w
    rec.points = sim.apply(rec.points.astype(np.float64)).astype(np.float32)
    rec.depth = (rec.depth.astype(np.float64) * sim.scale).astype(np.float32)
    return rec


def mean_confidence(rec: Reconstruction, view: int) -> float:
    """Average confidence over a view's real (unpadded) pixels: how a view's prediction is ranked."""
    mask = rec.valid[view]
    return float(rec.confidence[view][mask].mean()) if mask.any() else 0.0


def camera_sim3(target_c2w: np.ndarray, source_c2w: np.ndarray, scale: float) -> Sim3:
    """The Sim(3) that puts one frame's camera from the source window onto the same frame's target camera."""
    rotation = target_c2w[:, :3] @ source_c2w[:, :3].T
    return Sim3(scale, rotation, target_c2w[:, 3] - scale * rotation @ source_c2w[:, 3])


def align_window(
    merged: Reconstruction, merged_views: Sequence[int], window: Reconstruction, window_views: Sequence[int]
) -> Sim3:
    """Sim(3) taking `window` onto the running reconstruction, from the frames both hold.

    Correspondences: the same confident pixel of the same frame in both (its un-projected
    point), weighted by the lower of the two confidences, and the frame's camera centre,
    weighted as much as the frame's pixels together. Residuals are relative to depth.
    IRLS only refines locally, so it starts from the best of several closed-form
    hypotheses by median relative residual: one per shared frame (its two cameras and
    its median depth ratio) and weighted Umeyama on all pairs.
    """
    frames, hypotheses = [], []
    for mv, wv in zip(merged_views, window_views):
        mask = merged.valid[mv] & window.valid[wv] & (window.depth[wv] > 0) & (merged.depth[mv] > 0)
        mask &= np.isfinite(merged.points[mv]).all(-1) & np.isfinite(window.points[wv]).all(-1)
        if not mask.any():
            continue
        confidence = np.minimum(merged.confidence[mv], window.confidence[wv])
        mask &= confidence >= np.percentile(confidence[mask], ALIGN_CONF_PERCENTILE)
        depth = merged.depth[mv][mask].astype(np.float64)
        frames.append((mv, wv, window.points[wv][mask], merged.points[mv][mask], confidence[mask], depth))
        ratio = float(np.median(depth / window.depth[wv][mask]))
        hypotheses.append(camera_sim3(merged.c2w[mv], window.c2w[wv], ratio))
    if not frames:
        raise AlignmentError("Consecutive windows share no usable pixels; use a larger overlap.")
    stride = max(1, sum(len(f[2]) for f in frames) // ALIGN_MAX_POINTS)
    sources, targets, weights, depths = [], [], [], []
    for mv, wv, source, target, weight, depth in frames:
        weight = weight[::stride].astype(np.float64)
        sources += [source[::stride], window.c2w[wv][None, :, 3]]
        targets += [target[::stride], merged.c2w[mv][None, :, 3]]
        weights += [weight, np.array([weight.sum() * CAMERA_WEIGHT])]
        depths += [depth[::stride], np.array([np.median(depth)])]
    source, target, weight, depth = (np.concatenate(a).astype(np.float64) for a in (sources, targets, weights, depths))
    hypotheses.append(umeyama(source, target, weight / depth**2))
    best = min(hypotheses, key=lambda sim: float(np.median(np.linalg.norm(target - sim.apply(source), axis=1) / depth)))
    return robust_sim3(source, target, weight, initial=best, spread=depth)[0]


class Merger:
    """The running reconstruction: one slot per frame, filled window by window."""

    def __init__(self, num_frames: int, first: Reconstruction, name: str) -> None:
        height, width = first.size
        self.filled = np.zeros(num_frames, bool)
        self.score = np.zeros(num_frames)
        self.rec = Reconstruction(
            name=name,
            images=np.zeros((num_frames, height, width, 3), np.uint8),
            valid=np.zeros((num_frames, height, width), bool),
            depth=np.zeros((num_frames, height, width), np.float32),
            confidence=np.ones((num_frames, height, width), np.float32),
            points=np.zeros((num_frames, height, width, 3), np.float32),
            c2w=np.zeros((num_frames, 3, 4)),
            intrinsics=np.zeros((num_frames, 3, 3)),
            transforms=[None] * num_frames,
            steps=first.steps,
            names=[""] * num_frames,
            seconds={},
        )

    def add(self, window: Reconstruction, frames: Sequence[int]) -> None:
        """Copy a window's views into their frames' slots, keeping the more confident of two predictions."""
        if window.size != self.rec.size:
            raise InputError(
                f"Windows came out at different canvas sizes ({self.rec.size} and {window.size}); "
                "long clips need frames of one size and orientation."
            )
        for view, frame in enumerate(frames):
            score = mean_confidence(window, view)
            if self.filled[frame] and score <= self.score[frame]:
                continue
            out = self.rec
            out.images[frame], out.valid[frame] = window.images[view], window.valid[view]
            out.depth[frame], out.confidence[frame] = window.depth[view], window.confidence[view]
            out.points[frame], out.c2w[frame] = window.points[view], window.c2w[view]
            out.intrinsics[frame], out.transforms[frame] = window.intrinsics[view], window.transforms[view]
            self.filled[frame], self.score[frame] = True, score
        for key, value in window.seconds.items():
            self.rec.seconds[key] = self.rec.seconds.get(key, 0.0) + value


def unique_names(names: Sequence[str]) -> list[str]:
    """Make per-window file names unique over the whole clip (view_000.png repeats in every window)."""
    out, seen = [], set()
    for index, name in enumerate(names):
        if name in seen or not name:
            name = f"{index:03d}_{name or 'view.png'}"
        seen.add(name)
        out.append(name)
    return out


def merge_windows(
    windows: Iterable[tuple[Sequence[int], Reconstruction]], num_frames: int, name: str = "scene"
) -> Reconstruction:
    """Chain window reconstructions (frame indices, result) into one, each aligned to the running result.

    Each window after the first must share at least one frame with the frames merged before it.
    """
    merger: Merger | None = None
    for indices, part in windows:
        part.originals = None
        if merger is None:
            merger = Merger(num_frames, part, name)
        else:
            start = time.perf_counter()
            shared = [view for view, frame in enumerate(indices) if merger.filled[frame]]
            if not shared:
                raise AlignmentError("A window shares no frame with the ones before it; use a larger overlap.")
            sim = align_window(merger.rec, [indices[v] for v in shared], part, shared)
            apply_sim3(part, sim)
            part.seconds["align"] = time.perf_counter() - start
        merger.add(part, indices)
        del part
    if merger is None:
        raise InputError("No windows to merge.")
    return merger.rec


def reconstruct_windows(
    model: DVLT,
    frames: FrameSource,
    window: int,
    overlap: int,
    steps: int | None = None,
    img_size: int | None = None,
    name: str = "scene",
    num_frames: int | None = None,
    progress: Progress | None = None,
) -> Reconstruction:
    """Reconstruct a long frame sequence window by window and merge into one `Reconstruction`.

    `frames` is a list of frames or a callable frame(index) (then `num_frames` is required),
    so a caller can decode each window's frames only when it runs. One window is exactly `reconstruct`.
    """
    from .inputs import NAME_KEY
    from .pipeline import reconstruct

    lazy = callable(frames) and not isinstance(frames, Sequence)
    count = num_frames if lazy else len(frames)
    if count is None or count < 1:
        raise InputError("No frames to reconstruct." if count is not None else "num_frames is needed with a callable.")
    fetch = frames if lazy else frames.__getitem__
    plan = plan_windows(count, window, overlap)
    report = progress or (lambda fraction, message: None)
    if len(plan) == 1:
        return reconstruct(
            model, [fetch(i) for i in plan[0]], steps=steps, img_size=img_size, name=name, progress=progress
        )
    names = [""] * count

    def run() -> Iterator[tuple[list[int], Reconstruction]]:
        for index, indices in enumerate(plan):
            chunk = [fetch(i) for i in indices]
            for i, frame in zip(indices, chunk):
                names[i] = getattr(frame, "info", {}).get(NAME_KEY) or f"view_{i:03d}.png"

            def inner(fraction: float, message: str, index: int = index) -> None:
                report((index + fraction) / len(plan), f"Window {index + 1}/{len(plan)}: {message}")

            part = reconstruct(model, chunk, steps=steps, img_size=img_size, name=name, progress=inner)
            del chunk
            yield indices, part

    rec = merge_windows(run(), count, name)
    rec.names = unique_names(names)
    rec.originals = None if lazy else list(frames)
    report(1.0, "Done")
    return rec
