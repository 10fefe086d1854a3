"""Images for people: depth and confidence maps on one shared scale, a legend, K comparisons."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .records import Reconstruction

# A turbo-like ramp (dark blue -> cyan -> green -> yellow -> red), 9 anchors interpolated linearly.
RAMP = np.array(
    [
        [48, 18, 59],
        [70, 107, 227],
        [40, 188, 235],
        [50, 241, 151],
        [164, 252, 60],
        [237, 208, 58],
        [251, 128, 34],
        [210, 49, 5],
        [122, 4, 3],
    ],
    dtype=np.float64,
)
INVALID_GREY = np.array([128, 128, 128], dtype=np.uint8)
GAP = 4  # pixels between panels


def lookup_table(ramp: np.ndarray, size: int = 1024) -> np.ndarray:
    """(size, 3) uint8 colours interpolated linearly between the ramp's anchors."""
    t = np.linspace(0.0, len(ramp) - 1, size)
    index = np.minimum(t.astype(np.int64), len(ramp) - 2)
    frac = (t - index)[:, None]
    return (ramp[index] * (1 - frac) + ramp[index + 1] * frac).round().astype(np.uint8)


DEPTH_TABLE = lookup_table(RAMP)
GREY_TABLE = lookup_table(np.array([[20, 20, 20], [235, 235, 235]], dtype=np.float64))


def colorize(values: np.ndarray, low: float, high: float, table: np.ndarray = DEPTH_TABLE) -> np.ndarray:
    """Map values to uint8 RGB through a colour table; low -> its first entry, high -> its last."""
    scale = (len(table) - 1) / max(high - low, 1e-12)
    index = np.clip((np.asarray(values, dtype=np.float32) - low) * scale, 0, len(table) - 1)
    return table[np.nan_to_num(index).astype(np.int32)]


def shared_range(
    values: np.ndarray, valid: np.ndarray, low_pct: float = 2.0, high_pct: float = 98.0
) -> tuple[float, float]:
    """Robust (low, high) over the valid pixels of all views together."""
    picked = values[valid & np.isfinite(values)]
    if picked.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(picked, [low_pct, high_pct])
    return float(low), float(high if high > low else low + 1e-6)


def depth_images(rec: Reconstruction) -> tuple[list[np.ndarray], tuple[float, float]]:
    """Per-view depth colour maps on one scale (near = red, far = blue) and that scale (near, far)."""
    near, far = shared_range(rec.depth, rec.valid)
    maps = []
    for depth, valid in zip(rec.depth, rec.valid):
        rgb = colorize(far - depth, 0.0, far - near)  # invert: near is warm
        rgb[~valid] = INVALID_GREY
        maps.append(rgb)
    return maps, (near, far)


def confidence_images(rec: Reconstruction) -> list[np.ndarray]:
    """Per-view grey confidence (brighter = more confident), log-scaled on one shared range."""
    log_conf = np.log(rec.confidence)
    low, high = shared_range(log_conf, rec.valid)
    out = []
    for values, valid in zip(log_conf, rec.valid):
        rgb = colorize(values, low, high, GREY_TABLE)
        rgb[~valid] = INVALID_GREY
        out.append(rgb)
    return out


def stacked(panels: list[np.ndarray], max_width: int = 336) -> np.ndarray:
    """Equally wide RGB panels one above the other with a white gap, shrunk to at most `max_width` wide."""
    width = panels[0].shape[1]
    gap = np.full((GAP, width, 3), 255, np.uint8)
    column = [panels[0]]
    for panel in panels[1:]:
        column += [gap, panel]
    image = np.concatenate(column, axis=0)
    if width <= max_width:
        return image
    height = round(image.shape[0] * max_width / width)
    return np.asarray(Image.fromarray(image).resize((max_width, height), Image.Resampling.BILINEAR))


def view_label(rec: Reconstruction, index: int) -> str:
    """'view 0 (reference) · name.jpg': how the UI names a view everywhere."""
    label = "view 0 (reference)" if index == 0 else f"view {index}"
    return label + (f" · {rec.names[index]}" if rec.names else "")


def gallery(rec: Reconstruction, max_width: int = 336) -> list[tuple[np.ndarray, str]]:
    """One (image, caption) per view: input above depth above confidence, small enough for a grid."""
    depths, _ = depth_images(rec)
    confidences = confidence_images(rec)
    items = []
    for index, (image, depth, conf) in enumerate(zip(rec.images, depths, confidences)):
        valid_depth = rec.depth[index][rec.valid[index]]
        median = float(np.median(valid_depth)) if valid_depth.size else float("nan")
        caption = f"{view_label(rec, index)} · median depth {median:.3g}"
        items.append((stacked([image, depth, conf], max_width), caption))
    return items


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def legend(near: float, far: float, width: int = 640, title: str = "Depth, one scale for all views") -> np.ndarray:
    """A readable colour bar: title, near (red) to far (blue) with five labelled ticks, and a confidence key."""
    height, bar_top, bar_h, margin = 104, 30, 22, 36
    canvas = Image.new("RGB", (width, height), "white")
    ramp = colorize(np.linspace(far - near, 0.0, width - 2 * margin)[None].repeat(bar_h, 0), 0.0, far - near)
    canvas.paste(Image.fromarray(ramp), (margin, bar_top))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(17), _font(15)
    draw.text((margin, 5), f"{title} (scene units): near = red, far = blue", fill="black", font=font)
    for i in range(5):
        x = margin + i * (width - 2 * margin - 1) / 4
        value = near + (far - near) * i / 4
        draw.line([(x, bar_top + bar_h), (x, bar_top + bar_h + 6)], fill="black")
        text = f"{value:.3g}"
        draw.text((x - draw.textlength(text, font=small) / 2, bar_top + bar_h + 8), text, fill="black", font=small)
    draw.text(
        (margin, height - 20),
        "Confidence (bottom image of each view): brighter = more confident",
        fill="black",
        font=small,
    )
    return np.asarray(canvas)


def depth_change(
    a: Reconstruction, b: Reconstruction, clip_percent: float = 10.0
) -> tuple[list[float], list[np.ndarray]]:
    """Per-view mean |depth_b - depth_a| / depth_a in percent, and change maps (0..clip_percent %)."""
    percents, maps = [], []
    for da, db, valid in zip(a.depth, b.depth, a.valid & b.valid):
        change = np.abs(db - da) / np.maximum(da, 1e-9) * 100.0
        percents.append(float(change[valid].mean()) if valid.any() else float("nan"))
        rgb = colorize(change, 0.0, clip_percent)
        rgb[~valid] = INVALID_GREY
        maps.append(rgb)
    return percents, maps
