"""Measuring a reconstruction (dvlt.measure): points and distances under photo positions against a scene whose
geometry is known by ray casting (tests/sphere_scene.py), and the real scale one known distance gives."""

from __future__ import annotations

import numpy as np
import pytest
from sphere_scene import sphere_scene

from dvlt.measure import KnownDistance, MeasureError, with_known_distance

# photo positions (view, x, y) on smooth surfaces, away from the sphere's silhouette, off pixel centres
ON_SPHERE = [(0, 178.3, 140.7), (1, 160.2, 150.9), (2, 150.6, 133.1), (3, 122.4, 171.8)]
ON_WALL = [(0, 30.7, 40.2), (1, 290.1, 260.4), (2, 25.3, 250.8), (3, 200.2, 30.6)]


@pytest.fixture(scope="module")
def scene():
    return sphere_scene(with_photos=False)


@pytest.mark.parametrize("view,x,y", ON_SPHERE + ON_WALL)
def test_point_at_is_the_surface_point_the_photo_sees(scene, view, x, y):
    rec, truth = scene
    seen = truth.render(view, np.array([x]), np.array([y]))
    expected, depth = seen["points"][0], seen["depth"][0]
    assert np.linalg.norm(rec.point_at(view, (x, y)) - expected) < 2e-3 * depth  # a tenth of a canvas pixel


def test_point_at_a_canvas_pixel_centre_is_that_pixels_point(scene):
    rec, _ = scene
    transform = rec.transforms[1]
    xy = transform.canvas_to_original(np.array([80 + 0.5, 60 + 0.5]))  # canvas pixel (row 60, column 80)
    assert np.allclose(rec.point_at(1, xy), rec.points[1, 60, 80], atol=1e-6)


@pytest.mark.parametrize("a,b", [(ON_SPHERE[0], ON_WALL[1]), (ON_SPHERE[1], ON_SPHERE[3]), (ON_WALL[2], ON_WALL[3])])
def test_distance_between_views_is_exact_to_one_percent(scene, a, b):
    rec, truth = scene
    points = [truth.render(v, np.array([x]), np.array([y]))["points"][0] for v, x, y in (a, b)]
    expected = np.linalg.norm(points[0] - points[1])
    measured = rec.distance(a[0], a[1:], b[0], b[1:])
    assert measured == pytest.approx(expected, rel=0.01)


def test_scaled_multiplies_every_length(scene):
    rec, _ = scene
    double = rec.scaled(2.5)
    assert np.allclose(double.depth, rec.depth * 2.5) and np.allclose(double.points, rec.points * 2.5)
    assert np.allclose(double.c2w[:, :, 3], rec.c2w[:, :, 3] * 2.5)
    assert np.array_equal(double.c2w[:, :, :3], rec.c2w[:, :, :3]) and np.array_equal(double.intrinsics, rec.intrinsics)
    a, b = ON_SPHERE[0], ON_WALL[1]
    assert double.distance(a[0], a[1:], b[0], b[1:]) == pytest.approx(2.5 * rec.distance(a[0], a[1:], b[0], b[1:]))


def test_a_known_distance_makes_the_scene_metric(scene):
    rec, truth = scene
    a, b = ON_SPHERE[0], ON_WALL[1]
    metric = with_known_distance(rec, KnownDistance(a[0], a[1:], b[0], b[1:], 2.5))
    assert metric.distance(a[0], a[1:], b[0], b[1:]) == pytest.approx(2.5, rel=1e-6)
    assert metric.scale_note == "scale set from a known distance of 2.50 m"
    expected = 2.5 / np.linalg.norm(
        np.subtract(*[truth.render(v, np.array([x]), np.array([y]))["points"][0] for v, x, y in (a, b)])
    )
    baseline = np.linalg.norm(truth.c2w[1][:, 3] - truth.c2w[0][:, 3])
    assert np.linalg.norm(metric.c2w[1, :, 3] - metric.c2w[0, :, 3]) == pytest.approx(baseline * expected, rel=0.01)


def test_npz_keeps_the_scale_note_and_direct_points(scene, tmp_path):
    rec, _ = scene
    rec = rec.scaled(3.0, "scale set from a known distance of 1.00 m")
    from dataclasses import replace

    rec = replace(rec, points_direct=rec.points + 0.01)
    back = type(rec).from_npz(rec.to_npz(tmp_path / "p.npz"))
    assert back.scale_note == "scale set from a known distance of 1.00 m"
    assert np.allclose(back.points_direct, rec.points_direct)


@pytest.mark.parametrize(
    "view,xy,message",
    [
        (4, (10, 10), "view 4 does not exist"),
        (-1, (10, 10), "view -1 does not exist"),
        (0, (331, 10), "outside view 0"),
        (0, (float("nan"), 10), "outside view 0"),
        (2, (25.3, 280.0), "cropped off"),  # landscape photos lose rows at the top and bottom
        (3, (10.0, -0.5), "outside view 3"),
    ],
)
def test_bad_positions_are_refused_precisely(scene, view, xy, message):
    rec, _ = scene
    with pytest.raises(MeasureError, match=message):
        rec.point_at(view, xy)


def test_a_position_without_depth_is_refused(scene):
    rec, _ = scene
    blank = rec.scaled(1.0)
    blank.valid = blank.valid.copy()
    blank.valid[0, :20, :20] = False
    with pytest.raises(MeasureError, match="no 3D point"):
        blank.point_at(0, (5.0, 30.0))


@pytest.mark.parametrize(
    "values,message",
    [
        (["0", "1", "2", "1", "3", "4"], "7 values"),
        (["0", "1", "2", "x", "3", "4", "2"], "whole numbers"),
        (["0", "1", "2", "1", "3", "4", "-2"], "positive number of metres"),
        (["0", "1", "2", "1", "3", "4", "inf"], "positive number of metres"),
    ],
)
def test_known_distance_values_are_checked(values, message):
    with pytest.raises(MeasureError, match=message):
        KnownDistance.parse(values)
