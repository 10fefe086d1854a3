"""The Space's form and messages without the UI: an upload after an example, API display defaults, the
reference-view line, long-clip estimates and the download formats offered."""

from __future__ import annotations

import base64
import io

import pytest
from conftest import ALOE, BOX, WHALE
from PIL import Image

from dvlt import form, studio
from dvlt.estimate import Estimator
from dvlt.longclip import estimate_clip
from dvlt.scene import SceneOptions

EXAMPLE_FILES = ["/cache/a1/aloeL.jpg", "/cache/b2/aloeR.jpg"]
EXAMPLE = form.ExampleFill(
    tuple(EXAMPLE_FILES),
    {"mode": "frames per second", "fps": 2, "count": 8, "reference": 0, "steps": 8, "resolution": 252},
)


def test_an_upload_after_an_example_replaces_its_files_and_fast_settings():
    mine = ["/cache/c3/IMG_0001.heic", "/cache/d4/IMG_0002.heic", "/cache/e5/IMG_0003.heic"]
    settings = dict(EXAMPLE.settings)
    files, reset = form.after_upload([*EXAMPLE_FILES, *mine], EXAMPLE, settings)
    assert files == mine  # not "5 views" with the example's two photos mixed in
    assert reset["steps"] == 12 and reset["resolution"] == 504  # the defaults, not the example's K=8 at 252 px
    assert reset["mode"] == "frames per second" and reset["fps"] == 2.0 and reset["reference"] == 0


def test_the_moment_an_upload_joins_an_example_is_recognised():
    assert form.mixed_with_example([*EXAMPLE_FILES, "/cache/f6/mine.jpg"], EXAMPLE)
    assert not form.mixed_with_example(EXAMPLE_FILES, EXAMPLE) and not form.mixed_with_example(["/x/mine.jpg"], EXAMPLE)
    assert not form.mixed_with_example([*EXAMPLE_FILES, "/cache/f6/mine.jpg"], None)


def test_only_the_examples_files_leave_wherever_they_sit_in_the_list():
    files, _ = form.after_upload(["/cache/0/mine.jpg", *EXAMPLE_FILES, "/cache/9/more.jpg"], EXAMPLE, {})
    assert files == ["/cache/0/mine.jpg", "/cache/9/more.jpg"]


def test_settings_the_user_changed_after_the_example_stay():
    settings = {**EXAMPLE.settings, "steps": 14, "resolution": "378"}  # moved by the user since the example
    files, reset = form.after_upload([*EXAMPLE_FILES, "/cache/f6/mine.jpg"], EXAMPLE, settings)
    assert files == ["/cache/f6/mine.jpg"] and reset["steps"] == 14 and reset["resolution"] == "378"


def test_without_an_example_an_upload_adds_to_the_users_own_files():
    files, settings = form.after_upload([{"path": "/cache/1/a.jpg"}, {"path": "/cache/2/b.jpg"}], None, {"steps": 8})
    assert files == ["/cache/1/a.jpg", "/cache/2/b.jpg"] and settings == {"steps": 8}


def test_an_example_is_remembered_by_its_file_paths_and_settings():
    remembered = form.remember_example([{"path": p} for p in EXAMPLE_FILES], {**EXAMPLE.settings, "other": 1})
    assert remembered == EXAMPLE


def test_api_display_settings_left_out_keep_the_ones_on_show_and_views_default_to_all():
    shown = SceneOptions(conf_percentile=60, max_points=50_000, views=(1,), show_cameras=False, drop_edges=False)
    kept = studio.requested_options(shown)
    assert kept.views is None  # every view, not none of them (the old default gave 0 points)
    assert (kept.conf_percentile, kept.max_points, kept.show_cameras, kept.drop_edges) == (60, 50_000, False, False)
    changed = studio.requested_options(shown, conf=10, views=["view 0"], show_cameras=True)
    assert (changed.conf_percentile, changed.views, changed.show_cameras, changed.max_points) == (
        10,
        (0,),
        True,
        50_000,
    )


def test_one_reference_line_names_an_automatic_and_a_chosen_reference():
    frames = [Image.open(ALOE / "aloeL.jpg"), Image.open(ALOE / "aloeR.jpg"), Image.open(WHALE / "rubberwhale1.png")]
    index, line = studio.choose_reference(frames)
    assert line == studio.reference_line(index, "auto") and f"view {index}**" in line and "automatically" in line
    assert "view 2**, your choice" in studio.reference_line(2, "chosen")


def test_long_clip_estimate_is_in_seconds_and_memory_and_warns_over_two_minutes():
    slow = Estimator()
    slow.scale[("cpu", "fp32")] = 50.0  # a slow machine: the same clip takes minutes
    sizes = [(480, 640)] * 40
    total, line = estimate_clip(slow, sizes, 504, 16, "cpu", "fp32", max_views=16)
    assert total.seconds > 120 and "TFLOP" not in line and "GB" in line and " min" in line
    assert "Over 2 minutes" in line and "378 px" in line
    warned = set()
    for resolution in (252, 378, 504):  # the warning comes exactly when the whole clip is over 2 minutes
        for frames in (20, 40):
            total, line = estimate_clip(Estimator(), [(480, 640)] * frames, resolution, 8, "cpu", "fp32", max_views=16)
            assert ("Over 2 minutes" in line) == (total.seconds > 120) and "TFLOP" not in line
            warned.add(total.seconds > 120)
    assert warned == {True, False}


def test_every_offered_download_format_can_be_written_here():
    offered = studio.offered_formats()
    assert "Rerun recording (.rrd)" in offered and studio.can_refine()  # both packages are runtime dependencies


def test_formats_whose_package_is_missing_are_not_offered(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("rerun", "pycolmap") else real(name, *a)
    )
    assert "Rerun recording (.rrd)" not in studio.offered_formats() and not studio.can_refine()
    assert "COLMAP (3DGS, gsplat, nerfstudio-colmap)" in studio.offered_formats()


@pytest.mark.parametrize("path", [ALOE / "aloeL.jpg", BOX], ids=["photo", "video"])
def test_example_thumbnails_are_small_pictures_of_the_example(path):
    uri = studio.thumbnail_data_uri(path)
    assert uri.startswith("data:image/jpeg;base64,") and len(uri) < 12_000
    picture = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(picture.size) == 96 and picture.getextrema()[0][1] > picture.getextrema()[0][0]  # not blank
