"""The real app in its own process (so its peak memory can be read from /proc), and hostile test files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from app_server import free_port
from conftest import ROOT
from PIL import Image

GB = 1024**3


class Server:
    """`python app.py` on a free port with the synthetic checkpoint; reads its memory from /proc."""

    def __init__(self, checkpoint: Path, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        # default: outputs inside Gradio's cache (served in place); DVLT_OUTPUT_DIR in env puts them anywhere
        self.output_dir = Path(env.get("DVLT_OUTPUT_DIR", workdir / "gradio" / "dvlt-studio"))
        self.log = workdir / f"server-{self.port}.log"
        self.cache = workdir / "gradio"  # Gradio's cache: uploads, and copies of outputs kept elsewhere
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(("DVLT_", "GRADIO_"))}
        environment = {  # nothing leaks in from other tests' in-process app (DVLT_OUTPUT_DIR, GRADIO_* caches)
            **inherited,
            "DVLT_CHECKPOINT": str(checkpoint),
            "GRADIO_TEMP_DIR": str(self.cache),
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONPATH": str(ROOT),
            **env,
        }
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}config", timeout=2).read()
                self.idle = self.status("VmRSS")  # model loaded, no request yet
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(self.log.read_text()[-3000:]) from None
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("app did not start")

    def status(self, field: str) -> int:
        """A /proc/PID/status field in bytes (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def reset_peak(self) -> int:
        """Reset the peak-RSS mark to the current RSS (clear_refs 5) and return the current RSS."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        return self.status("VmRSS")

    def alive(self) -> bool:
        if self.process.poll() is not None:
            return False
        try:
            urllib.request.urlopen(f"{self.url}config", timeout=5).read()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def big_jpegs(directory: Path, count: int, side: int = 7000) -> list[Path]:
    """`count` JPEGs of side x side (49 MP at 7000): simple content, so each file is small."""
    directory.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (side, side), (90, 140, 200))
    image.paste((250, 200, 40), (side // 4, side // 4, side // 2, side // 2))
    first = directory / "big_000.jpg"
    image.save(first, quality=70)
    paths = [first]
    for index in range(1, count):  # same pixels, distinct files (and names)
        path = directory / f"big_{index:03d}.jpg"
        path.write_bytes(first.read_bytes() + index.to_bytes(4, "big"))  # bytes after EOI are ignored
        paths.append(path)
    return paths


def write_clip(
    path: Path, seconds: float, fps: int, width: int, height: int, codec: str = "libx264", fmt: str | None = None
) -> Path:
    """A clip of four cycling simple frames (fast to encode): `seconds` long at `fps`."""
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    frames = []
    for k in range(4):
        array = np.full((height, width, 3), 40 * k, np.uint8)
        array[height // 5 : height // 2, k * width // 5 : (k + 2) * width // 5] = (255, 128, 0)
        frames.append(av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format=pix_fmt))
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        for index in range(int(seconds * fps)):
            frame = frames[(index // max(1, fps)) % 4]
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_flat_clip(path: Path, frames: int, width: int, height: int) -> Path:
    """An MJPEG clip of flat grey frames built plane by plane (cheap even at 81 MP a frame)."""
    frame = av.VideoFrame(width, height, "yuvj420p")
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for index in range(frames):
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class Unseekable:
    """A write-only file object that cannot seek, like a pipe: muxers cannot go back to write a duration."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.file.close()


def write_live_mkv(path: Path, seconds: int) -> Path:
    """An MKV written as a live stream: no duration in its header; 1 fps, 64x64."""
    target = Unseekable(path)
    with av.open(target, "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 128, np.uint8), format="rgb24").reformat(
            format="yuvj420p"
        )
        for index in range(seconds):
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    target.close()
    return path


def wide_progressive_jpegs(directory: Path, count: int, width: int = 12000, height: int = 4000) -> list[Path]:
    """`count` progressive JPEGs of width x height (48 MP at 12000 x 4000, under every limit): a phone panorama."""
    directory.mkdir(parents=True, exist_ok=True)
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[..., 0] = ramp.astype(np.uint8)
    pixels[..., 1] = (255 - ramp).astype(np.uint8)
    pixels[..., 2] = np.linspace(0, 255, height, dtype=np.float32).astype(np.uint8)[:, None]
    first = directory / "wide_000.jpg"
    Image.fromarray(pixels).save(first, quality=85, progressive=True)
    del pixels
    paths = [first]
    for index in range(1, count):  # same pixels, distinct files (and names)
        path = directory / f"wide_{index:03d}.jpg"
        path.write_bytes(first.read_bytes() + index.to_bytes(4, "big"))  # bytes after EOI are ignored
        paths.append(path)
    return paths


def write_growing_clip(path: Path, small: int = 64, big: int = 12000, frames: int = 4) -> Path:
    """An MJPEG clip whose header (and first frame) says small x small, and whose later frames are big x big: each
    MJPEG packet is a whole JPEG, so packets of a second, larger encoder are muxed into the small stream."""

    def flat(side: int) -> av.VideoFrame:
        frame = av.VideoFrame(side, side, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        return frame

    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = small, small, "yuvj420p"
        large = av.CodecContext.create("mjpeg", "w")
        large.width, large.height, large.pix_fmt, large.time_base = big, big, "yuvj420p", Fraction(1, 1)
        for index in range(frames):
            frame = flat(small if index == 0 else big)
            frame.pts = index
            for packet in (stream if index == 0 else large).encode(frame):
                packet.stream, packet.pts, packet.dts = stream, index, index
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_rotated_clip(path: Path, rotation: int, width: int = 64, height: int = 32) -> Path:
    """A 4-frame H.264 clip stored width x height, left half white, with a display matrix of `rotation`
    (counter-clockwise degrees, PyAV's convention; a phone's portrait clip is -90: shown turned 90° clockwise)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = 255
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.set_display_rotation(rotation)
        for index in range(4):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
