"""The Measure & video tab in a real headless Chromium: click two points, set the real scale, EXIF focal
lengths, the point source and the fly-through, each checked in what the page shows and the files it serves."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
import trimesh
from conftest import ALOE
from PIL import ExifTags, Image
from test_app_browser import ARGS, CHROMIUM, assert_no_error, scene_info, wait_for_run

from dvlt.records import Reconstruction

pytestmark = pytest.mark.browser
if not Path(CHROMIUM).exists():
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason=f"{CHROMIUM} not installed")]


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1500, "height": 1150}).new_page()
        page.goto(app_url)
        page.wait_for_selector("#uploads")
        yield page
        browser.close()


def tagged_aloe(folder: Path) -> list[str]:
    """The aloe pair with a 35 mm equivalent focal length of 28 mm in their EXIF."""
    paths = []
    for name in ("aloeL.jpg", "aloeR.jpg"):
        exif = Image.Exif()
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = 28
        Image.open(ALOE / name).save(folder / name, exif=exif, quality=95)
        paths.append(str(folder / name))
    return paths


def fetch(page, url: str) -> bytes:
    """The bytes the app serves at a link of the page."""
    return page.request.get(url if url.startswith("http") else page.url.rstrip("/") + url).body()


def text_of(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def wait_text(page, selector: str, needle: str, timeout: int = 120_000) -> None:
    page.wait_for_function(
        "([s, n]) => (document.querySelector(s)?.innerText || '').includes(n)", arg=[selector, needle], timeout=timeout
    )


def click_photo(page, x: float, y: float) -> None:
    """Click the shown photo at fractions (x, y) of its size, once the photo with the previous marks is in place."""
    photo = page.locator("#measure-photo img")
    source = photo.get_attribute("src")
    page.wait_for_timeout(500)
    page.wait_for_function(
        "([s]) => { const img = document.querySelector('#measure-photo img');"
        " return img && img.complete && img.getAttribute('src') === s; }",
        arg=[source],
    )
    box = photo.bounding_box()
    page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
    page.wait_for_function(
        "([s]) => document.querySelector('#measure-photo img')?.getAttribute('src') !== s", arg=[source], timeout=60_000
    )


def test_measure_scale_exif_points_and_flythrough(page, tmp_path):
    page.locator("#uploads input[type=file]").set_input_files(tagged_aloe(tmp_path))
    page.wait_for_selector("#preview img", timeout=60_000)
    page.get_by_label("252").check()
    page.wait_for_function("document.querySelector('#estimate').innerText.includes('2 views')", timeout=60_000)
    page.click("#reconstruct")
    wait_for_run(page, 2, "")

    page.get_by_role("tab", name="Measure & video").click()
    photo = page.locator("#measure-photo img")
    photo.wait_for(timeout=60_000)
    click_photo(page, 0.3, 0.5)
    wait_text(page, "#measure-text", "Now click B")
    click_photo(page, 0.7, 0.6)
    wait_text(page, "#measure-text", "Distance A–B")
    assert "scene units" in text_of(page, "#measure-text")
    page.get_by_role("tab", name="3D scene").click()  # the A-B segment is drawn in the scene
    link = "#scene a[data-testid='model3d-download-link']"
    page.wait_for_function("([l]) => document.querySelector(l)?.href.includes('scene-measured')", arg=[link])
    (tmp_path / "scene.glb").write_bytes(fetch(page, page.locator(link).get_attribute("href")))
    assert "measurement" in trimesh.load(tmp_path / "scene.glb", force="scene").geometry
    page.get_by_role("tab", name="Measure & video").click()

    page.locator("#known-metres input").fill("2.5")
    page.click("#apply-scene-choices")
    wait_text(page, "#scene-info", "scale set from a known distance of 2.50 m")
    wait_text(page, "#measure-text", "Distance A–B: 2.5 m")
    npz_url = page.locator("#downloads a[href*='.npz']").first.get_attribute("href")
    (tmp_path / "p.npz").write_bytes(fetch(page, npz_url))
    assert Reconstruction.from_npz(tmp_path / "p.npz").scale_note == "scale set from a known distance of 2.50 m"

    page.locator("#use-exif input[type=checkbox]").check()
    page.click("#apply-scene-choices")
    wait_text(page, "#exif-table", "35 mm equivalent 28 mm")
    assert "2 of 2 views fixed to their EXIF focal length" in text_of(page, "#exif-table")

    before = scene_info(page)
    page.get_by_label("direct point head").check()
    page.click("#apply-scene-choices")
    page.wait_for_function(
        "([b]) => document.querySelector('#scene-info').innerText !== b", arg=[before], timeout=120_000
    )
    wait_text(page, "#measure-text", "Distance A–B: 2.5 m")  # the scale is set again on the direct points
    assert "scale set from a known distance of 2.50 m" in scene_info(page)

    page.click("#make-flythrough")
    page.wait_for_selector("#flythrough video[src]", timeout=300_000)
    src = page.locator("#flythrough video").get_attribute("src")
    video = fetch(page, src)
    with av.open(io.BytesIO(video)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    # synthetic weights give scrambled cameras, so the frames' content is checked on a known scene instead
    # (test_flythrough.py); here: the button serves a whole 640-px H.264 video
    assert len(frames) >= 48 and frames[0].shape[1] == 640
    assert_no_error(page)
