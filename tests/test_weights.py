"""Loading checkpoints from every kind of source, and every way that can go wrong."""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from conftest import ROOT
from safetensors.torch import save_file

from dvlt import DVLT, CheckpointMismatchError, CheckpointNotFoundError


@pytest.fixture(scope="module")
def http_server(checkpoint_dir):
    """A real HTTP server on localhost serving the checkpoint directory."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(checkpoint_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def loaded_equal(net: DVLT, state: dict[str, torch.Tensor]) -> bool:
    current = net.state_dict()
    return all(torch.equal(current[k], v) for k, v in state.items())


def test_load_from_directory_and_file(checkpoint_dir, synthetic_state):
    for source in (checkpoint_dir, checkpoint_dir / "model.safetensors", str(checkpoint_dir / "model.safetensors")):
        net = DVLT()
        assert net.load_pretrained(source) == ([], [])
        assert loaded_equal(net, synthetic_state)


def test_load_torch_state_dict_with_module_prefix(tmp_path, synthetic_state):
    path = tmp_path / "model.pt"
    torch.save({f"module.{k}": v for k, v in synthetic_state.items()}, path)
    net = DVLT()
    net.load_pretrained(path)
    assert loaded_equal(net, synthetic_state)


def test_load_from_url_caches_download(http_server, tmp_path, monkeypatch, synthetic_state):
    monkeypatch.setenv("DVLT_CACHE", str(tmp_path / "cache"))
    net = DVLT()
    net.load_pretrained(f"{http_server}/model.safetensors")
    assert loaded_equal(net, synthetic_state)
    cached = list((tmp_path / "cache").rglob("model.safetensors"))
    assert len(cached) == 1 and cached[0].stat().st_size > 400e6


def test_url_not_found_says_so(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("DVLT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CheckpointNotFoundError, match="404"):
        DVLT().load_pretrained(f"{http_server}/missing.safetensors")


def test_missing_path_and_missing_file_in_directory(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="not found"):
        DVLT().load_pretrained(tmp_path / "nope" / "model.safetensors")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckpointNotFoundError, match=r"has no model.safetensors.*notes.txt"):
        DVLT().load_pretrained(tmp_path)


def test_missing_and_unexpected_keys_are_named(tmp_path, synthetic_state):
    state = dict(synthetic_state)
    del state["camera_head.fc_pose.bias"], state["ray_decoder.head.weight"]
    state["extra.layer.weight"] = torch.zeros(3)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    with pytest.raises(CheckpointMismatchError) as error:
        DVLT().load_pretrained(path)
    message = str(error.value)
    assert "missing 2 key(s): camera_head.fc_pose.bias, ray_decoder.head.weight" in message
    assert "unexpected 1 key(s): extra.layer.weight" in message
    net = DVLT()
    missing, unexpected = net.load_pretrained(path, strict=False)
    assert missing == ["camera_head.fc_pose.bias", "ray_decoder.head.weight"] and unexpected == ["extra.layer.weight"]
    assert torch.equal(net.state_dict()["camera_token"], synthetic_state["camera_token"])


def test_shape_mismatch_is_refused_even_when_not_strict(tmp_path, synthetic_state):
    state = dict(synthetic_state)
    state["camera_token"] = torch.zeros(1, 3, 1, 768)
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    for strict in (True, False):
        with pytest.raises(CheckpointMismatchError, match=r"camera_token \(1, 3, 1, 768\) vs model \(1, 2, 1, 768\)"):
            DVLT().load_pretrained(path, strict=strict)


def test_corrupt_file_is_reported(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointMismatchError, match="not a readable checkpoint"):
        DVLT().load_pretrained(path)


def run_isolated(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run loading code in a fresh interpreter so huggingface_hub reads our cache/endpoint settings."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=timeout
    )


HUB_LOAD = """
    import time
    from dvlt import DVLT
    from dvlt.errors import CheckpointUnavailableError
    start = time.time()
    try:
        DVLT().load_pretrained("nvidia/dvlt")
        print("LOADED")
    except CheckpointUnavailableError as error:
        print("UNAVAILABLE", round(time.time() - start, 1), error)
"""


def test_hub_id_loads_from_the_cache_offline(tmp_path, checkpoint_dir):
    snapshot = tmp_path / "hub" / "models--nvidia--dvlt" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(checkpoint_dir / "model.safetensors")
    (tmp_path / "hub" / "models--nvidia--dvlt" / "refs").mkdir()
    (tmp_path / "hub" / "models--nvidia--dvlt" / "refs" / "main").write_text("a" * 40)
    result = run_isolated(HUB_LOAD, {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert "LOADED" in result.stdout, result.stdout + result.stderr


def test_hub_id_not_cached_while_offline_fails_fast(tmp_path):
    result = run_isolated(HUB_LOAD, {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert (
        "UNAVAILABLE" in result.stdout
        and "HF_HUB_OFFLINE" in result.stdout
        and "hf download nvidia/dvlt" in result.stdout
    )


def test_hub_id_with_silent_endpoint_fails_in_seconds(tmp_path):
    """An endpoint that accepts connections but never answers must not hang the loader."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        start = time.time()
        env = {
            "HF_HUB_CACHE": str(tmp_path / "hub"),
            "HF_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "HF_HUB_OFFLINE": "0",
        }
        result = run_isolated(HUB_LOAD, env)
        elapsed = time.time() - start
    finally:
        silent.close()
    assert "UNAVAILABLE" in result.stdout and "cannot be reached" in result.stdout, result.stdout + result.stderr
    assert elapsed < 30  # probe timeout is 5 s; a plain hf_hub_download would retry for minutes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_loaded_model_keeps_one_copy_of_its_weights_resident(checkpoint_dir):
    """After load_pretrained nothing holds the checkpoint's read copy: the process grows by about the weights
    once (the model's, 0.44 GiB), not twice (a kept reference to the read state dict doubles it)."""
    script = textwrap.dedent(
        f"""
        import torch
        from dvlt import DVLT
        def resident():
            return int(open("/proc/self/statm").read().split()[1]) * 4096
        before = resident()
        net = DVLT()
        net.load_pretrained({str(checkpoint_dir)!r})
        weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
        print((resident() - before) / weights)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    growth = float(done.stdout.split()[-1])
    assert growth < 1.4, f"the process grew by {growth:.2f}x the weights"
