"""The Measure & video tab's logic (dvlt.studio_measure), without the UI, on the ray-cast sphere scene."""

from __future__ import annotations

import numpy as np
import pytest
from sphere_scene import sphere_scene

from dvlt.measure import MeasureError
from dvlt.studio_measure import (
    PICK_COLOURS,
    Adjustments,
    add_pick,
    adjusted,
    clicked_pick,
    known_from,
    marked_view,
    measurement,
    view_image,
)


@pytest.fixture(scope="module")
def scene():
    return sphere_scene(with_photos=False)


def test_a_click_is_the_photo_position_of_the_pixel_centre(scene):
    rec, truth = scene
    assert view_image(rec, 3).size == (95, 126)  # the portrait view without its padding
    view, x, y = clicked_pick(rec, 3, (40, 70))  # column 40, row 70 of the shown image
    assert np.allclose(rec.point_at(view, (x, y)), rec.points[3, 70, 40 + 36], atol=1e-6)  # padded 36 columns
    seen = truth.render(3, np.array([x]), np.array([y]))
    assert np.linalg.norm(rec.point_at(view, (x, y)) - seen["points"][0]) < 1e-3 * seen["depth"][0]


def test_picks_go_a_then_b_then_start_again():
    a, b, c = (0, 1.0, 2.0), (1, 3.0, 4.0), (2, 5.0, 6.0)
    assert add_pick([], a) == [a] and add_pick([a], b) == [a, b] and add_pick([a, b], c) == [c]


def test_measurement_text_and_the_scale_it_sets(scene):
    rec, _ = scene
    picks = [clicked_pick(rec, 0, (90, 60)), clicked_pick(rec, 1, (150, 110))]
    unit = rec.distance(picks[0][0], picks[0][1:], picks[1][0], picks[1][1:])
    assert f"{unit:.4g} scene units" in measurement(rec, picks)
    known = known_from(picks, 2.5)
    metric, comparison = adjusted(rec, Adjustments(known=known))
    assert comparison is None and "**Distance A–B: 2.5 m**" in measurement(metric, picks)
    assert "scale set from a known distance of 2.50 m" in measurement(metric, picks)
    again, _ = adjusted(rec, Adjustments(known=known_from(picks, 2.5)))  # always from the run's result
    assert np.allclose(again.c2w, metric.c2w) and known_from(picks, 0) is None and known_from(picks, None) is None
    assert "Now click B" in measurement(rec, picks[:1]) and "Click a point" in measurement(rec, [])


def test_known_distance_needs_two_picks_and_a_positive_length(scene):
    rec, _ = scene
    with pytest.raises(MeasureError, match="Click A and B first"):
        known_from([clicked_pick(rec, 0, (90, 60))], 2.0)
    with pytest.raises(MeasureError, match="positive number of metres"):
        known_from([clicked_pick(rec, 0, (90, 60))] * 2, -1.0)
    with pytest.raises(MeasureError, match="view 9 does not exist"):
        clicked_pick(rec, 9, (1, 1))


def test_direct_points_choice_changes_the_points(scene):
    from dataclasses import replace

    rec, _ = scene
    rec = replace(rec, points_direct=rec.points + np.float32(0.5))
    direct, _ = adjusted(rec, Adjustments(points="direct"))
    assert np.allclose(direct.points, rec.points + 0.5) and adjusted(rec, Adjustments())[0] is rec


def test_marks_are_drawn_where_the_picks_are(scene):
    rec, _ = scene
    picks = [clicked_pick(rec, 0, (90, 60)), clicked_pick(rec, 1, (20, 20))]
    image = np.asarray(marked_view(rec, 0, picks))
    ring = image[60 - 8 : 60 + 9, 90 - 8 : 90 + 9].reshape(-1, 3)
    assert (ring == PICK_COLOURS["A"]).all(axis=1).any() and not (ring == PICK_COLOURS["B"]).all(axis=1).any()


def test_the_measured_segment_is_drawn_in_the_glb(scene, tmp_path):
    import trimesh

    from dvlt.export.glb import write_glb
    from dvlt.studio_measure import measured_segment

    rec, _ = scene
    picks = [clicked_pick(rec, 0, (90, 60)), clicked_pick(rec, 2, (120, 40))]
    assert measured_segment(rec, picks[:1]) is None
    a, b = measured_segment(rec, picks)
    path = write_glb(rec, tmp_path / "scene.glb", measurement=(a, b)).path
    tube = trimesh.load(path, force="scene").geometry["measurement"]
    ends = np.asarray(tube.vertices).reshape(-1, 2, 4, 3).mean(axis=2)  # (segments, start/end, xyz): ring centres
    length = np.linalg.norm(ends[0, 1] - ends[0, 0])
    assert length == pytest.approx(rec.distance(picks[0][0], picks[0][1:], picks[1][0], picks[1][1:]), rel=1e-5)
