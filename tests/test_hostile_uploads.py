"""Hostile uploads against the real app over HTTP, in its own process: every case checks the message the user
sees, that the server keeps serving, and the server's peak memory (VmHWM from /proc, reset before each request)."""

from __future__ import annotations

import concurrent.futures
import errno
import http.client
import itertools
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import ALOE, ROOT
from gradio_client import Client, handle_file
from hostile_server import (
    GB,
    Server,
    big_jpegs,
    wide_progressive_jpegs,
    write_clip,
    write_flat_clip,
    write_growing_clip,
    write_live_mkv,
    write_rotated_clip,
)
from PIL import Image

from dvlt import limits
from dvlt.errors import DiskFullError
from dvlt.scene import SceneOptions
from dvlt.studio import OutputFolders, all_or_nothing, session_key

SINGLE_REQUEST_BOUND = 1.5 * GB
FAST = {"resolution": 252, "steps": 8}
PEAKS: dict[str, float] = {}  # case -> GB above the RSS before the request (printed at the end)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, object]:
    """Every hostile file, made once."""
    root = tmp_path_factory.mktemp("hostile")
    tiny = root / "tiny.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(tiny)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    cut = write_clip(root / "cut.mkv", 8, 4, 320, 240, fmt="matroska")
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return {
        "photos": big_jpegs(root / "big", 30),
        "hd": write_clip(root / "hd60.mp4", 60, int(limits.FPS_MAX), 1920, 1080),
        "huge": write_flat_clip(root / "huge.mkv", 3, 9000, 9000),
        "live": write_live_mkv(root / "live.mkv", limits.MAX_VIDEO_SECONDS + 100),
        "cut": cut,
        "tiny": tiny,
        "empty": empty,
    }


@pytest.fixture(scope="module")
def server(checkpoint_dir, tmp_path_factory):
    app = Server(checkpoint_dir, tmp_path_factory.mktemp("server"))
    yield app
    app.stop()
    print("\npeak memory above the pre-request RSS (GB):", json.dumps({k: round(v, 2) for k, v in PEAKS.items()}))


def call(client: Client, files, fn: str = "/reconstruct", **options):
    """Call an endpoint with files uploaded over HTTP."""
    if fn == "/preview":  # a private event: not in the API docs, reachable over HTTP all the same
        return call_private(
            client.src, "preview", files, ["frames per second", options.get("fps", 2), 8, 252, 8, False, False, 0, None]
        )
    uploads = [handle_file(str(f)) for f in files]
    arguments = {
        "mode": "frames per second",
        "fps": 2,
        "count": 8,
        "reference": 0,
        "conf": 20,
        "show_cameras": True,
        "max_points": 100_000,
        "mask_black": False,
        "mask_white": False,
        "drop_edges": False,
        "auto_reference": False,
        **FAST,
        **options,
    }
    return client.predict(files=uploads, api_name=fn, **arguments)


def call_private(url: str, name: str, files, arguments: list):
    """Call an event by its id over Gradio's plain HTTP queue protocol (upload, join, read the event stream)."""
    config = json.loads(urllib.request.urlopen(f"{url}config", timeout=10).read())
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == name)
    with httpx.Client(base_url=f"{url}gradio_api", timeout=600) as http:
        handles = [open(f, "rb") for f in files]
        try:
            paths = http.post("/upload", files=[("files", (Path(f).name, h)) for f, h in zip(files, handles)]).json()
        finally:
            for handle in handles:
                handle.close()
        uploads = [
            {"path": p, "orig_name": Path(f).name, "meta": {"_type": "gradio.FileData"}} for p, f in zip(paths, files)
        ]
        session = uuid.uuid4().hex[:11]
        joined = http.post(
            "/queue/join", json={"data": [uploads, *arguments], "fn_index": fn_index, "session_hash": session}
        )
        joined.raise_for_status()
        with http.stream("GET", "/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    output = message.get("output", {})
                    if not message.get("success"):
                        raise RuntimeError(output.get("error") or str(output))
                    return output["data"]
    raise RuntimeError("no result")


def measured(server: Server, case: str, request) -> tuple[object, str | None]:
    """Run `request`, return (result, error message) and record the peak memory it cost."""
    before = server.reset_peak()
    result, message = None, None
    try:
        result = request()
    except Exception as error:  # the user-facing message
        message = str(error)
    peak = server.status("VmHWM")
    PEAKS[case] = (peak - before) / GB
    print(f"{case}: +{PEAKS[case]:.2f} GB over the RSS before it, +{(peak - server.idle) / GB:.2f} GB over idle")
    assert server.alive(), f"server died on {case}"
    assert peak - server.idle < SINGLE_REQUEST_BOUND, (case, PEAKS[case])
    return result, message


def assert_no_paths(message: str, server: Server) -> None:
    for secret in ("/tmp", str(server.output_dir), "gradio", "/root", "/home"):
        assert secret not in message, message


def test_thirty_49mp_photos_refused_before_decoding(server, files):
    client = Client(server.url, verbose=False)
    _, message = measured(server, "30 x 49 MP reconstruct", lambda: call(client, files["photos"]))
    assert "30 views, but the limit is 16" in message
    _, message = measured(server, "30 x 49 MP preview", lambda: call(client, files["photos"], fn="/preview"))
    assert "30 views, but the limit is 16" in message


def test_49mp_photos_decode_to_the_model_size(server, files):
    client = Client(server.url, verbose=False)
    photos = files["photos"][:16]
    result, message = measured(server, "2 x 49 MP reconstruct 504", lambda: call(client, photos[:2], resolution=504))
    assert message is None and "2 views at 504" in result[4]
    result, message = measured(server, "16 x 49 MP preview", lambda: call(client, photos, fn="/preview"))
    assert message is None and "16 views: 7000×7000 (16)" in result[1]


COLMAP = "COLMAP (3DGS, gsplat, nerfstudio-colmap)"
DOWNLOAD = {"conf": 20, "show_cameras": True, "max_points": 100_000, "mask_black": False, "mask_white": False}


def test_sixteen_48mp_progressive_jpegs_stay_within_the_bound(server, tmp_path_factory):
    """The reconstruction (splat PLY and GLB included) uses the model's views; a COLMAP download copies the
    full-size photos one at a time inside a decode slot, also when three downloads of the session run at once."""
    import zipfile

    photos = wide_progressive_jpegs(tmp_path_factory.mktemp("wide"), 16)
    client = Client(server.url, verbose=False)
    result, message = measured(server, "16 x 48 MP progressive reconstruct", lambda: call(client, photos))
    assert message is None and "16 views" in result[4], message
    views = [f"view {i}" for i in range(16)]
    archive, message = measured(
        server,
        "16 x 48 MP COLMAP download",
        lambda: client.predict(label=COLMAP, views=views, **DOWNLOAD, api_name="/download"),
    )
    assert message is None, message
    with zipfile.ZipFile(archive) as bundle:
        copies = [name for name in bundle.namelist() if "/images/" in name and name.endswith(".jpg")]
        assert len(copies) == 16
        with bundle.open(copies[0]) as photo:
            assert Image.open(photo).size == (12000, 4000)  # the full-size photos, not the model's views

    def three_at_once() -> list:
        jobs = [client.submit(label=COLMAP, views=views, **DOWNLOAD, api_name="/download") for _ in range(3)]
        return [job.result() for job in jobs]

    archives, message = measured(server, "3 x COLMAP download at once", three_at_once)
    assert message is None and len(archives) == 3, message


def test_video_frames_are_checked_as_decoded(server, tmp_path):
    """A clip whose header says 64x64 and whose next frame is 7200x7200 (52 MP): libavcodec refuses that frame
    before allocating it, and the user is told which file and which limit."""
    clip = write_growing_clip(tmp_path / "growing.mkv", big=7200, frames=2)
    client = Client(server.url, verbose=False)
    _, message = measured(server, "64x64 header, 52 MP frames", lambda: call(client, [clip], fps=1))
    assert "growing.mkv has a video frame over 50 MP" in message and "header says 64x64" in message, message
    assert_no_paths(message, server)


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_rotated_clips_come_out_upright(tmp_path, rotation):
    """Stored 64x32 with the left half white; the display matrix turns it (counter-clockwise degrees, FFmpeg's
    convention: a phone's portrait clip is -90, i.e. shown turned 90° clockwise, so its left edge is on top)."""
    import numpy as np

    from dvlt.inputs import read_video

    frames = read_video(write_rotated_clip(tmp_path / "phone.mp4", rotation), fps=None)
    pixels = np.asarray(frames[0], np.float64)
    white_side = {-90: pixels[:8], 90: pixels[-8:], 180: pixels[:, -16:]}[rotation]
    dark_side = {-90: pixels[-8:], 90: pixels[:8], 180: pixels[:, :16]}[rotation]
    assert frames[0].size == ((64, 32) if rotation == 180 else (32, 64))
    assert white_side.mean() > 240 and dark_side.mean() < 15


def test_only_the_documented_photo_formats_are_opened(server, tmp_path):
    """PCX, TGA, PPM, SGI, ICO and EPS, named .jpg or .png, never reach their Pillow readers (EPS's calls
    Ghostscript); JPEG, PNG, WebP, BMP and TIFF still open."""
    from dvlt.errors import UnsupportedFileError
    from dvlt.inputs import load_sequence

    image = Image.new("RGB", (64, 48), (200, 120, 40))
    others = []
    for fmt in ("PCX", "TGA", "PPM", "SGI", "ICO"):
        path = tmp_path / f"{fmt.lower()}.{'png' if fmt == 'ICO' else 'jpg'}"
        image.save(path, format=fmt)
        with Image.open(path) as check:
            assert check.format == fmt  # Pillow alone would read it
        others.append(path)
    eps = tmp_path / "eps.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\nshowpage\n")
    others.append(eps)
    for path in others:
        with pytest.raises(UnsupportedFileError, match=f"{path.name} is not an image we can read"):
            load_sequence([path], max_side=252)
    for fmt, suffix in (("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif")):
        image.save(tmp_path / f"fine.{suffix}", format=fmt)
        assert load_sequence([tmp_path / f"fine.{suffix}"])[1][0].size == (64, 48)
    client = Client(server.url, verbose=False)
    _, message = measured(server, "a PCX named .jpg", lambda: call(client, [others[0]]))
    assert "pcx.jpg is not an image we can read" in message and "JPEG, PNG, WebP, BMP, TIFF or HEIC" in message


def test_minute_of_1080p_at_top_fps(server, files):
    client = Client(server.url, verbose=False)
    result, message = measured(server, "60 s 1080p at 10 fps", lambda: call(client, [files["hd"]], fps=limits.FPS_MAX))
    assert message is None and "16 views" in result[4]


def test_81mp_frames_refused_from_the_header(server, files):
    client = Client(server.url, verbose=False)
    _, message = measured(server, "81 MP-frame clip", lambda: call(client, [files["huge"]]))
    assert "9000x9000 (81 MP); the limit is 50 MP per video frame" in message


def test_clip_without_duration_stops_at_the_limit(server, files):
    client = Client(server.url, verbose=False)
    _, message = measured(server, "400 s live MKV", lambda: call(client, [files["live"]]))
    assert f"longer than the {limits.MAX_VIDEO_SECONDS} s limit" in message


def test_damaged_clip_runs_with_a_note(server, files):
    client = Client(server.url, verbose=False)
    result, message = measured(server, "clip cut in half", lambda: call(client, [files["cut"]]))
    assert message is None
    assert "cut.mkv seems cut short" in result[4] and "frames were read" in result[4]


def test_small_and_invalid_inputs(server, files):
    client = Client(server.url, verbose=False)
    _, message = measured(server, "1x1 photo", lambda: call(client, [files["tiny"]]))
    assert f"needs at least {limits.MIN_IMAGE_SIDE}" in message
    _, message = measured(server, "K=8.5", lambda: call(client, [ALOE / "aloeL.jpg"], steps=8.5))
    assert "whole number" in message
    _, message = measured(server, "0-byte mp4", lambda: call(client, [files["empty"]]))
    assert "empty.mp4" in message and "the file is empty" in message
    assert_no_paths(message, server)


def test_sessions_cannot_read_each_other(server):
    owner, stranger = Client(server.url, verbose=False), Client(server.url, verbose=False)
    call(owner, [ALOE / "aloeL.jpg", ALOE / "aloeR.jpg"])
    options = {
        "label": "GLB scene",
        "conf": 20,
        "show_cameras": True,
        "views": ["view 0"],
        "max_points": 10_000,
        "mask_black": False,
        "mask_white": False,
    }
    with pytest.raises(Exception, match="Reconstruct something first"):
        stranger.predict(**{**options, "views": []}, api_name="/download")
    assert Path(owner.predict(**options, api_name="/download")).stat().st_size > 0
    runs = list(server.output_dir.glob("run-*"))
    assert len(runs) == 1 and all(len(folder.name) == 32 for folder in runs[0].iterdir())  # digests, not ids
    cache = server.output_dir.parent  # Gradio's cache: outputs are served in place, never copied
    assert all(server.output_dir in path.parents for path in cache.rglob("*.glb"))


def test_uploads_have_a_size_cap(server, tmp_path):
    big = tmp_path / "huge.mp4"
    with open(big, "wb") as handle:  # sparse: costs no disk
        handle.truncate((limits.MAX_UPLOAD_MB + 1) * 1024 * 1024)
    before = server.reset_peak()
    with httpx.Client(base_url=f"{server.url}gradio_api", timeout=120) as http, open(big, "rb") as data:
        response = http.post("/upload", files=[("files", ("huge.mp4", data))])
    PEAKS["501 MB upload"] = (server.status("VmHWM") - before) / GB
    assert (
        response.status_code == 413
        and f"exceeded maximum allowed size of {limits.MAX_UPLOAD_MB * 1024**2} bytes" in response.text
    )
    assert server.alive() and PEAKS["501 MB upload"] < SINGLE_REQUEST_BOUND / GB


def test_concurrent_sessions_and_heavy_previews(server, files):
    """6 sessions reconstruct while 3 sessions preview 16 x 49 MP: everyone is served, peak stays bounded."""
    before = server.reset_peak()
    jobs = [lambda: call(Client(server.url, verbose=False), [ALOE / "aloeL.jpg", ALOE / "aloeR.jpg"])] * 6
    jobs += [lambda: call(Client(server.url, verbose=False), files["photos"][:16], fn="/preview")] * 3
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = [future.result() for future in [pool.submit(job) for job in jobs]]
    peak = server.status("VmHWM")
    PEAKS["6 sessions + 3 heavy previews"] = (peak - before) / GB
    print(f"6 sessions + 3 heavy previews: +{(peak - server.idle) / GB:.2f} GB over idle")
    assert all("2 views" in result[4] for result in results[:6])
    assert all("16 views" in result[1] for result in results[6:])
    assert server.alive() and peak - server.idle < SINGLE_REQUEST_BOUND


def served_copies(server: Server) -> list[str]:
    """URLs of the scene files Gradio serves from copies in its cache (outputs live in DVLT_OUTPUT_DIR)."""
    cache = server.cache
    return [f"{server.url}gradio_api/file={path}" for path in sorted(cache.rglob("scene-*.glb"))]


def status_of(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=30).status
    except urllib.error.HTTPError as error:
        return error.code


def raw_request(server: Server, method: str, target: str) -> tuple[int, bytes]:
    """Status and body of a request sent with `target` exactly as written (no client normalises '..' or '%')."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_file_url_tricks_are_all_not_found(server, checkpoint_dir):
    """Path tricks on Gradio's file routes: every one answers the same plain 404 (GET and HEAD), never a file, a
    path or a different status that would tell which server files exist; a real output is still served."""
    call(Client(server.url, verbose=False), [ALOE / "aloeL.jpg"])
    (served,) = sorted(server.output_dir.rglob("scene-*.glb"))[-1:]
    weights = next(path for path in checkpoint_dir.rglob("*") if path.is_file())
    secrets = {
        "/etc/passwd": "/etc/passwd",
        "relative traversal": "../../../../../../etc/passwd",
        "encoded traversal": "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "double-encoded traversal": "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "backslashes": "..%5c..%5c..%5c..%5cetc%5cpasswd",
        "out of the cache": f"{server.cache}/../../../../../etc/passwd",
        "out of the outputs": f"{served.parent}/../../../../../../etc/passwd",
        "doubled slash": "//etc/passwd",
        "home": "~/.bashrc",
        "environment": "/proc/self/environ",
        "app source, relative": "app.py",
        "app source, absolute": str(ROOT / "app.py"),
        "the weights": str(weights),
        "the server log": str(server.log),
        "embedded NUL": f"{served}%00.png",
        "file: URL": "file:///etc/passwd",
        "the server itself, by URL": f"http://127.0.0.1:{server.port}/config",
        "a folder (outputs)": str(server.output_dir),
        "a folder (cache)": str(server.cache),
        "a missing output": f"{served.parent}/scene-missing.glb",
    }
    log_start = server.log.stat().st_size
    requests = (("GET", "/gradio_api/file="), ("HEAD", "/gradio_api/file="), ("GET", "/gradio_api/file/"))
    for (case, path), (method, route) in itertools.product(secrets.items(), requests):  # the older route: GET only
        status, body = raw_request(server, method, route + path)
        assert (status, body) == (404, b"Not Found" if method == "GET" else b""), (case, route, method, body)
    status, body = raw_request(server, "GET", f"/gradio_api/file={served}")
    assert status == 200 and body == served.read_bytes()
    assert raw_request(server, "HEAD", f"/gradio_api/file={served}")[0] == 200
    assert server.alive() and "Traceback" not in server.log.read_text()[log_start:]  # each answer sent cleanly


def test_kill_restart_cleans_and_idle_sessions_expire(checkpoint_dir, tmp_path):
    """After kill -9 the next process removes the dead one's files; a timer removes idle sessions' outputs; the
    URLs each session was given (Gradio's cached copies of the outputs) answer 404 once its files are gone."""
    # outputs outside the working and temp folders (persistent storage): served through allowed_paths
    elsewhere = Path(tempfile.mkdtemp(prefix="dvlt-hostile-", dir="/var/tmp"))
    settings = {"DVLT_OUTPUT_DIR": str(elsewhere), "DVLT_SESSION_IDLE_S": "4", "DVLT_SWEEP_EVERY_S": "1"}
    first = Server(checkpoint_dir, tmp_path, **settings)
    try:
        call(Client(first.url, verbose=False), [ALOE / "aloeL.jpg"])
        (dead,) = first.output_dir.glob("run-*")
        assert any(dead.rglob("*.glb"))
        (dead_copy,) = served_copies(first)
        assert status_of(dead_copy) == 200
    finally:
        first.kill()
    second = Server(checkpoint_dir, tmp_path, **settings)
    try:
        assert not dead.exists()  # the killed process's outputs are gone at start-up
        assert served_copies(second) == []  # and so are Gradio's copies of them
        assert status_of(dead_copy.replace(first.url, second.url)) == 404
        call(Client(second.url, verbose=False), [ALOE / "aloeR.jpg"])
        (live,) = second.output_dir.glob("run-*")
        assert any(live.rglob("*.glb"))
        (url,) = served_copies(second)
        assert status_of(url) == 200
        deadline = time.time() + 30
        while any(live.rglob("*.glb")) and time.time() < deadline:
            time.sleep(1)  # no request arrives: only the timer can remove them
        assert not any(live.rglob("*.glb"))
        assert status_of(url) == 404
    finally:
        second.stop()
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_an_unwritable_output_folder_is_a_banner_not_a_crash(checkpoint_dir, tmp_path):
    """DVLT_OUTPUT_DIR under a file cannot be created (root ignores permissions; this fails for everyone): the app
    starts, says what is wrong and how to fix it, and refuses runs with that message."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    server = Server(checkpoint_dir, tmp_path, DVLT_OUTPUT_DIR=str(blocker / "outputs"))
    try:
        page = urllib.request.urlopen(server.url, timeout=30).read().decode()
        assert "Output folder not writable" in page and "DVLT_OUTPUT_DIR" in page
        _, message = measured(
            server, "unwritable output folder", lambda: call(Client(server.url, verbose=False), [ALOE / "aloeL.jpg"])
        )
        assert "output folder cannot be written (Not a directory)" in message and "DVLT_OUTPUT_DIR" in message
        assert_no_paths(message, server)
    finally:
        server.stop()


def test_full_disk_leaves_nothing_partial(tmp_path):
    outputs = OutputFolders(tmp_path)
    folder = outputs.new("session-a")
    with pytest.raises(DiskFullError, match="disk is full"):
        with all_or_nothing(folder):
            (folder / "scene.glb").write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not folder.exists()


def test_session_folders_are_collision_free_and_capped(tmp_path):
    assert session_key("a.b") != session_key("ab") and session_key("../x") != session_key("x")
    outputs = OutputFolders(tmp_path, disk_mb=1)
    old = outputs.new("s")
    (old / "big.bin").write_bytes(bytes(900_000))
    time.sleep(0.01)
    newer = outputs.new("s")
    (newer / "big.bin").write_bytes(bytes(900_000))
    outputs.new("s")  # over the 1 MB cap: the oldest result goes first
    assert not old.exists() and newer.exists()
    outputs.forget("s")
    assert not (outputs.root / session_key("s")).exists()


def test_downloads_say_when_full_size_photos_are_gone(tmp_path):
    """Exports read the full-size photos from the upload; once it is cleaned up they say so (no silent crops)."""
    from conftest import known_scene

    from dvlt.studio import SessionResult

    rec = known_scene()
    photos = []
    for index in range(rec.num_views):
        path = tmp_path / f"photo{index}.png"
        Image.new("RGB", (1200, 900), (40 * index, 90, 160)).save(path)
        photos.append(str(path))
    session = SessionResult(rec, tmp_path / "p.npz", tuple(photos), resolution=252)
    full, note = session.with_photos(16)
    assert note is None and [image.size for image in full.originals] == [(1200, 900)] * rec.num_views
    Path(photos[2]).unlink()
    fallback, note = session.with_photos(16)
    assert fallback.originals is None and "no longer on the server" in note


def test_closing_a_tab_leaves_the_photos_in_gradios_cache(tmp_path):
    """A COLMAP download copies the photos byte for byte; when its session ends, the clean-up of served copies must
    not take Gradio's cached inputs (same name, same bytes) that other sessions and the examples still use."""
    from conftest import known_scene

    from dvlt.studio import SessionResult, download

    rec = known_scene()
    cache = tmp_path / "gradio-cache"  # Gradio keeps inputs and served copies alike under <digest>/<name>
    photos = []
    for index in range(rec.num_views):
        path = cache / f"digest{index}" / rec.names[index]  # as uploaded: the names the export keeps
        path.parent.mkdir(parents=True)
        Image.new("RGB", (336, 252), (40 * index, 90, 160)).save(path)
        photos.append(str(path))
    full, _ = SessionResult(rec, tmp_path / "p.npz", tuple(photos), resolution=252).with_photos(16)
    outputs = OutputFolders(tmp_path / "outputs", copies=cache)
    archive = download(full, "COLMAP (3DGS, gsplat, nerfstudio-colmap)", SceneOptions(), outputs.new("a"))
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.read(f"dvlt-colmap/images/{rec.names[1]}") == Path(photos[1]).read_bytes()
    outputs.forget("a")
    assert all(Path(photo).is_file() for photo in photos)


def test_internal_errors_are_logged_not_blamed_on_the_user(app_url, caplog):
    import gradio as gr
    import numpy as np

    import app

    with pytest.raises(gr.Error, match="Something went wrong on our side") as raised:
        app.human_errors(lambda: np.ones(3).reshape(2, 2))()  # a ValueError inside numpy is a bug of ours
    assert "reshape" not in str(raised.value)
    assert any(record.exc_info and "reshape" in str(record.exc_info[1]) for record in caplog.records)
    with pytest.raises(gr.Error, match="K must be a whole number"):
        app.human_errors(lambda: app.studio.whole_steps(8.5))()


def test_decode_slots_are_shared_and_busy_is_explained():
    """All requests share limits.CONCURRENT_DECODES slots; one that cannot get a slot is told the server is busy."""
    import threading

    from dvlt.budget import decode_slot
    from dvlt.errors import ServerBusyError

    holding, release = threading.Barrier(limits.CONCURRENT_DECODES + 1), threading.Event()

    def hold() -> None:
        with decode_slot():
            holding.wait()
            release.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(limits.CONCURRENT_DECODES)]
    for thread in threads:
        thread.start()
    holding.wait()
    with pytest.raises(ServerBusyError, match="busy decoding other uploads"):
        with decode_slot(wait_s=0.2):
            pass
    release.set()
    for thread in threads:
        thread.join()
    with decode_slot(wait_s=0.2):  # free again
        pass


def test_concurrent_decodes_stay_at_the_documented_number(monkeypatch):
    """Twelve requests decode at once: at most the README's number of decodes run together, server-wide. Each may
    hold one full-size photo (50 MP, 3 bytes a pixel) plus its encoded copy, so the slots together stay within one
    request's memory bound: raising limits.CONCURRENT_DECODES (a review once set 200) fails here."""
    import re
    import threading

    from conftest import ROOT

    from dvlt import studio
    from dvlt.inputs import Frames

    readme = (ROOT / "README.md").read_text()
    documented = int(re.search(r"\| uploads decoded at once \(whole server\) \| (\d+);", readme).group(1))
    assert documented * limits.MAX_IMAGE_PIXELS * 3 * 2 <= SINGLE_REQUEST_BOUND
    running, most, lock = [0], [0], threading.Lock()

    def counting_decode(*args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return "photos", Frames()

    monkeypatch.setattr(studio, "load_sequence", counting_decode)
    requests = [
        threading.Thread(target=studio.decode_uploads, args=(["photo.jpg"], studio.Sampling(), 16)) for _ in range(12)
    ]
    for request in requests:
        request.start()
    for request in requests:
        request.join()
    assert most[0] == documented == limits.CONCURRENT_DECODES, (most[0], documented)
