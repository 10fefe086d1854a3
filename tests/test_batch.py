"""Batch scale-out: the CLI under torchrun shards scenes over processes, writes a manifest and resumes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ALOE, ROOT, WHALE
from PIL import Image

from dvlt.batch import Launch, Manifest, SceneLockedError, assign, cpu_share, process_device


def small_scenes(root: Path, count: int = 4) -> list[Path]:
    """`count` folders of two small real photos each (crops of the aloe and whale pairs)."""
    sources = [ALOE / "aloeL.jpg", ALOE / "aloeR.jpg", WHALE / "rubberwhale1.png", WHALE / "rubberwhale2.png"]
    scenes = []
    for index in range(count):
        folder = root / f"scene{index}"
        folder.mkdir(parents=True)
        for view in range(2):
            image = Image.open(sources[(2 * index + view) % 4]).convert("RGB")
            left = 20 * index
            image.crop((left, 0, left + image.width // 2, image.height // 2)).resize((96, 72)).save(
                folder / f"v{view}.png"
            )
        scenes.append(folder)
    return scenes


def manifest_lines(out: Path) -> list[dict]:
    return [
        json.loads(line) for path in sorted(out.glob("manifest-rank*.jsonl")) for line in path.read_text().splitlines()
    ]


def cli_args(scenes, out, checkpoint_dir, *extra):
    return [
        "reconstruct",
        *map(str, scenes),
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint_dir),
        "--img-size",
        "252",
        "--steps",
        "8",
        "--formats",
        "npz",
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def test_torchrun_shards_scenes_over_two_processes_and_resumes(checkpoint_dir, tmp_path):
    scenes = small_scenes(tmp_path / "in")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "dvlt"]
    result = subprocess.run(
        [*command, *cli_args(scenes, out, checkpoint_dir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = manifest_lines(out)
    assert sorted(line["name"] for line in lines) == [f"scene{i}" for i in range(4)]
    for line in lines:
        assert line["status"] == "ok" and line["error"] is None and line["views"] == 2
        assert line["rank"] == line["index"] % 2  # deterministic sharding by input index
        assert Path(line["outputs"]["npz"]).is_file() and line["seconds"]["model"] > 0
    assert {p.name for p in out.glob("manifest-rank*.jsonl")} == {"manifest-rank0.jsonl", "manifest-rank1.jsonl"}
    assert not list((out / ".locks").iterdir())  # every lock released
    for folder in scenes:
        with np.load(out / folder.name / "predictions.npz") as data:
            assert data["depth"].shape[0] == 2 and np.isfinite(data["depth"]).all()

    # a crash lost scene2's output: the relaunch redoes only that one
    (out / "scene2" / "predictions.npz").unlink()
    before = (out / "scene0" / "predictions.npz").stat().st_mtime_ns
    again = subprocess.run(
        [sys.executable, "-m", "dvlt", *cli_args(scenes, out, checkpoint_dir, "--resume")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("done in an earlier run, skipped") == 3
    redone = [json.loads(line) for line in (out / "manifest-rank0.jsonl").read_text().splitlines()][2:]
    assert [line["name"] for line in redone] == ["scene2"] and redone[0]["status"] == "ok"
    assert (out / "scene2" / "predictions.npz").is_file()
    assert (out / "scene0" / "predictions.npz").stat().st_mtime_ns == before


def test_one_folder_has_one_owner():
    inputs = ["a/x", "b/y", "c/x", "d/z", "e/y"]
    scenes = assign(inputs, lambda text: text.split("/")[1], 2)
    assert [s.rank for s in scenes] == [0, 1, 0, 1, 1]  # c/x follows a/x, e/y follows b/y
    owners = {}
    for scene in scenes:
        assert owners.setdefault(scene.name, scene.rank) == scene.rank


def test_launch_environment_device_and_threads():
    launch = Launch.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (launch.rank, launch.world_size, launch.local_rank, launch.local_world_size) == (3, 4, 1, 2)
    assert launch.distributed and not Launch.from_env({}).distributed
    assert process_device("auto", launch, cuda_available=True) == "cuda:1"
    assert process_device("auto", launch, cuda_available=False) == "auto"
    assert process_device("cpu", launch, cuda_available=True) == "cpu"
    assert process_device("auto", Launch(), cuda_available=True) == "cuda"
    cores = len(os.sched_getaffinity(0))
    assert cpu_share(launch) == max(1, cores // 2) and cpu_share(Launch()) == cores


def test_locks_refuse_a_live_writer_and_take_over_a_dead_one(tmp_path):
    manifest = Manifest(tmp_path, Launch())
    (scene,) = assign(["in/s"], lambda text: "s", 1)
    locks = tmp_path / ".locks"
    locks.mkdir()
    import socket

    host = socket.gethostname()
    (locks / "s.lock").write_text(json.dumps({"host": host, "pid": os.getpid(), "rank": 0}))
    with pytest.raises(SceneLockedError, match="being written by another process"):
        with manifest.claim(scene):
            pytest.fail("a live lock must not be taken")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (locks / "s.lock").write_text(json.dumps({"host": host, "pid": int(dead.stdout), "rank": 0}))
    with manifest.claim(scene) as entry:
        entry.outputs = {"npz": str(tmp_path / "missing.npz")}
    with open(manifest.path, "a") as handle:
        handle.write('{"input": "in/s", "status": "o')  # a line cut short by a crash is ignored
    records = manifest.records()
    assert [r["status"] for r in records] == ["error", "ok"] and not (locks / "s.lock").exists()
    todo, skipped = manifest.mine([scene], resume=True)
    assert todo == [scene] and not skipped  # recorded ok, but its output is gone: redo
