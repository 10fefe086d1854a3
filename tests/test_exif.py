"""EXIF focal lengths (dvlt.exif) on photos whose tags are written here with Pillow, and `--intrinsics exif`:
cameras fixed to the EXIF focal length with poses re-fitted, read back with pycolmap against the known scene."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pycolmap
import pytest
from PIL import ExifTags, Image
from sphere_scene import sphere_scene

from dvlt.cli import main
from dvlt.exif import compare_intrinsics, photo_focal, with_exif_intrinsics
from dvlt.inputs import open_image

BASE = ExifTags.Base


def tagged_photo(path, size, tags: dict, orientation: int = 1, image: Image.Image | None = None):
    """Save a JPEG with the given EXIF sub-IFD tags (and orientation); returns its path."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub.update(tags)
    (image or Image.new("RGB", size, (90, 120, 150))).save(path, exif=exif, quality=95)
    return path


def test_35mm_equivalent_scales_with_the_photo_diagonal(tmp_path):
    path = tagged_photo(tmp_path / "a.jpg", (400, 300), {BASE.FocalLengthIn35mmFilm: 26})
    focal = photo_focal(open_image(path))
    assert focal.pixels == pytest.approx(26 * 500 / 43.2666, rel=1e-4)  # diagonal 500 px, 36x24 mm diagonal 43.27
    assert focal.source == "35 mm equivalent 26 mm"


def test_focal_length_and_sensor_pitch_win_and_follow_a_resize(tmp_path):
    tags = {
        BASE.FocalLength: 4.25,
        BASE.FocalPlaneXResolution: 2500.0,  # pixels per cm at capture: 250 px/mm
        BASE.FocalPlaneResolutionUnit: 3,
        BASE.ExifImageWidth: 800,  # captured at 800x600, saved at 400x300
        BASE.ExifImageHeight: 600,
        BASE.FocalLengthIn35mmFilm: 26,
    }
    path = tagged_photo(tmp_path / "b.jpg", (400, 300), tags)
    assert photo_focal(open_image(path)).pixels == pytest.approx(4.25 * 250 / 2, rel=1e-6)


def test_a_rotated_photo_keeps_its_focal_length(tmp_path):
    path = tagged_photo(tmp_path / "c.jpg", (400, 300), {BASE.FocalLengthIn35mmFilm: 30}, orientation=6)
    upright = open_image(path)
    assert upright.size == (300, 400)
    assert photo_focal(upright).pixels == pytest.approx(30 * 500 / 43.2666, rel=1e-4)


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {BASE.FocalLength: 4.25},  # no sensor size: not convertible to pixels
        {BASE.FocalLengthIn35mmFilm: 0},
        {BASE.FocalLengthIn35mmFilm: 60000},  # absurd: 700 times the photo's side
    ],
)
def test_untagged_or_broken_photos_have_no_exif_focal(tmp_path, tags):
    assert photo_focal(open_image(tagged_photo(tmp_path / "d.jpg", (400, 300), tags))) is None
    assert photo_focal(Image.new("RGB", (40, 30))) is None


@pytest.fixture()
def exif_scene(tmp_path):
    """The sphere scene with every predicted focal length 6 % too long and every camera 5 cm off (the points are
    right), and its true photos tagged with their true focal length except view 1 (fx != fy there), as a
    predictions npz + folder."""
    rec, truth = sphere_scene()
    intrinsics = rec.intrinsics.copy()
    intrinsics[:, 0, 0] *= 1.06
    intrinsics[:, 1, 1] *= 1.06
    c2w = rec.c2w.copy()
    c2w[:, :, 3] += [0.03, -0.02, 0.03]
    rec = dataclasses.replace(rec, intrinsics=intrinsics, c2w=c2w)
    photos = tmp_path / "photos"
    photos.mkdir()
    for view, (name, photo) in enumerate(zip(rec.names, rec.originals)):
        focal = truth.photo_intrinsics[view][0, 0]
        tags = {} if view == 1 else {BASE.FocalLength: 5.0, BASE.FocalPlaneXResolution: focal / 5.0 * 10}
        tagged_photo(photos / name, photo.size, {**tags, BASE.FocalPlaneResolutionUnit: 3}, image=photo)
    return rec, truth, rec.to_npz(tmp_path / "predictions.npz"), photos


def test_comparison_lists_predicted_and_exif_focal_lengths(exif_scene):
    rec, truth, _, photos = exif_scene
    from dvlt.export.photos import with_photos

    comparison = compare_intrinsics(with_photos(rec, photos))
    assert comparison.exif[1] is None and comparison.rows()[1][3] == "no EXIF focal length"
    for view in (0, 2, 3):
        assert comparison.exif[view].pixels == pytest.approx(truth.photo_intrinsics[view][0, 0], rel=1e-6)
        assert comparison.predicted[view] == pytest.approx(1.06 * truth.photo_intrinsics[view][0, 0], rel=1e-6)
        assert comparison.rows()[view][4] == "+6.0 %"


def test_exif_intrinsics_refit_poses_to_the_truth(exif_scene, tmp_path):
    rec, truth, npz, photos = exif_scene
    lines = []
    out = tmp_path / "out"
    args = ["export", str(npz), "--out", str(out), "--images", str(photos), "--formats", "colmap"]
    assert main([*args, "--intrinsics", "exif"]) == 0
    from dvlt.export.photos import with_photos

    refitted, comparison = with_exif_intrinsics(with_photos(rec, photos), lines.append)
    before, after = map(float, re.search(r"([\d.]+) px -> ([\d.]+) px", lines[0]).groups())
    assert "3 of 4 views" in lines[0] and before > 1.0 and after < 0.05  # EXIF is the truth here
    model = pycolmap.Reconstruction(str(out / "colmap" / "sparse" / "0"))
    for image in model.images.values():
        view = int(image.name[4])
        camera = model.cameras[image.camera_id]
        expected = truth.photo_intrinsics[view][0, 0] * (1.06 if view == 1 else 1.0)
        assert camera.focal_length_x == pytest.approx(expected, rel=1e-4)
        c2w = np.linalg.inv(np.vstack((image.cam_from_world().matrix(), [0, 0, 0, 1])))[:3]
        if view != 1:
            assert np.allclose(c2w[:, 3], truth.c2w[view][:, 3], atol=2e-3)


def test_exif_intrinsics_on_export_needs_the_photos(exif_scene, tmp_path, capsys):
    _, _, npz, _ = exif_scene
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(npz), "--out", str(tmp_path / "o"), "--intrinsics", "exif"])
    assert exit_.value.code == 2 and "--images" in capsys.readouterr().err
