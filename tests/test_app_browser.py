"""The Space in a real headless Chromium: upload, reconstruct, re-render, download, examples."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import trimesh
from conftest import ALOE, ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists() and os.environ.get("DVLT_REQUIRE_BROWSER") != "1":
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason=f"{CHROMIUM} not installed (.ci/run installs it)")]


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1150}, accept_downloads=True)
        page = context.new_page()
        page.goto(app_url)
        page.wait_for_selector("#uploads")
        yield page
        browser.close()


def scene_info(page) -> str:
    return page.locator("#scene-info").inner_text()


def point_count(info: str) -> int:
    """The N of 'GLB 4.6 MB · N points · ...'."""
    return int(info.split(" points")[0].split("·")[-1].strip().replace(",", ""))


def test_upload_reconstruct_rerender_download(page, tmp_path):
    page.locator("#uploads input[type=file]").set_input_files([str(ALOE / "aloeL.jpg"), str(ALOE / "aloeR.jpg")])
    page.wait_for_selector("#preview img", timeout=60_000)
    page.wait_for_function("document.querySelector('#estimate').innerText.includes('2 views')", timeout=60_000)
    page.click("#reconstruct")
    page.wait_for_selector("#scene canvas", timeout=180_000)
    page.wait_for_selector("#downloads a[href*='.glb']", timeout=180_000)
    first = scene_info(page)
    assert "2 cameras" in first

    # the confidence slider re-renders from the session cache: fewer points
    slider = page.locator("#conf input[type=range]")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    points_before = point_count(first)
    page.wait_for_function(
        "([before]) => { const t = document.querySelector('#scene-info').innerText;"
        " return t.includes(' points') && !t.includes(before + ' points'); }",
        arg=[f"{points_before:,}"],
        timeout=60_000,
    )
    points_after = point_count(scene_info(page))
    assert points_after < points_before

    page.wait_for_function("document.querySelector('#downloads a[href*=\".glb\"]') !== null")
    with page.expect_download(timeout=60_000) as download:
        page.locator("#downloads a[href*='.glb']").first.click()
    glb = tmp_path / "scene.glb"
    download.value.save_as(glb)
    scene = trimesh.load(glb, force="scene")
    assert len(scene.geometry["points"].vertices) == points_after  # the download is the scene on screen
    assert sorted(n for n in scene.graph.nodes_geometry if n.startswith("camera_")) == ["camera_000", "camera_001"]

    page.get_by_role("tab", name="Depth & confidence").click()
    page.wait_for_selector("#depth-gallery img", timeout=30_000)
    assert page.locator("#depth-gallery img").count() >= 2
    page.get_by_role("tab", name="3D scene").click()
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1500)  # let the 3D viewer draw
    page.screenshot(path=str(ARTIFACTS / "reconstruction.png"), full_page=True)
    assert (ARTIFACTS / "reconstruction.png").stat().st_size > 50_000


def test_example_click_is_cached(page):
    cache = Path(os.environ["GRADIO_EXAMPLES_CACHE"])
    shutil.rmtree(cache, ignore_errors=True)
    page.get_by_text("Rubber whale pair").click()
    for _ in range(240):  # the first click runs the model once and caches the result for everyone
        if any(cache.rglob("*.glb")):
            break
        page.wait_for_timeout(500)
    assert any(cache.rglob("*.glb")), "the example result was cached"
    page.wait_for_function(
        "document.querySelector('#downloads') && document.querySelector('#scene canvas')", timeout=60_000
    )
    page.get_by_text("Aloe stereo pair").click()
    page.get_by_text("Rubber whale pair").click()  # cached now: shown without a model run
    page.wait_for_function("document.querySelector('#scene-info').innerText.includes('2 cameras')", timeout=30_000)
    assert len(list(cache.rglob("*.glb"))) >= 1
