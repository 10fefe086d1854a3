"""The Measure & video tab's endpoints over real HTTP with gradio_client: the point source and the fly-through."""

from __future__ import annotations

import av
from conftest import ALOE
from gradio_client import Client, handle_file

from dvlt.records import Reconstruction


def test_point_source_and_flythrough_endpoints(app_url):
    client = Client(app_url, verbose=False)
    display = {"conf": 20, "show_cameras": True, "max_points": 300_000, "mask_black": False, "mask_white": False}
    display |= {"drop_edges": False, "frustum_scale": 0.08}
    client.predict(
        files=[handle_file(str(ALOE / "aloeL.jpg")), handle_file(str(ALOE / "aloeR.jpg"))],
        mode="frames per second",
        fps=2,
        count=8,
        reference=0,
        steps=8,
        resolution=252,
        auto_reference=False,
        api_name="/reconstruct",
        **display,
    )
    views = ["view 0", "view 1"]
    outputs = client.predict(
        metres=None, points="direct point head", exif=False, views=views, api_name="/apply_scene_choices", **display
    )
    downloads = outputs[2]
    npz = next(item for item in downloads if str(item).endswith(".npz"))
    saved = Reconstruction.from_npz(npz)
    assert (saved.points == saved.points_direct).all()  # the session's result now holds the direct points
    video = client.predict(views=views, api_name="/flythrough", **display)
    path = video["video"] if isinstance(video, dict) else video
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 192
