"""Precision is a rule on the CPU's flags, never a timing: every start of the app picks the same one and shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import torch
from app_server import free_port
from conftest import ROOT

from dvlt import DVLT
from dvlt.cpu import bf16_rule, fp32_flops_per_cycle
from dvlt.runtime import precision_name, requested_precision


def expected_cpu_precision() -> str:
    """The measured rule, read from /proc/cpuinfo here, independently of dvlt: AMX or AMD AVX512-BF16 -> bf16."""
    try:
        lines = open("/proc/cpuinfo", encoding="utf-8").read().splitlines()
    except OSError:
        return "fp32"
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    amd = any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in lines)
    return "bf16" if "amx_bf16" in flags or (amd and "avx512_bf16" in flags) else "fp32"


def test_bf16_where_it_was_measured_faster():
    assert bf16_rule({"avx512_bf16", "amx_bf16", "amx_tile"}, "GenuineIntel").bf16  # AMX: ~2.5x
    assert bf16_rule({"avx512_bf16", "avx512f"}, "AuthenticAMD").bf16  # Zen 4: 1.4-1.5x
    assert not bf16_rule({"avx512_bf16", "avx512f"}, "GenuineIntel").bf16  # Intel without AMX: slower
    assert not bf16_rule({"avx2", "avx512f"}, "AuthenticAMD").bf16  # no bf16 units
    assert not bf16_rule(set(), "").bf16
    assert precision_name("auto", "cuda") == "bf16" and precision_name("fp32", "cuda") == "fp32"


def test_roofline_counts_the_datapath_each_cpu_generation_has():
    """fp32 FLOP per cycle per core (two FMA pipes): Intel AVX-512 servers and AMD Zen 5 (family 26) have 512-bit
    pipes, Zen 4 (family 25) runs AVX-512 on 256-bit halves; the peak this gives is what rooflines are drawn on."""
    assert fp32_flops_per_cycle({"avx512f", "avx2"}, "GenuineIntel", 6) == 64
    assert fp32_flops_per_cycle({"avx512f", "avx512_bf16", "avx2"}, "AuthenticAMD", 25) == 32
    assert fp32_flops_per_cycle({"avx512f", "avx512_bf16", "avx2"}, "AuthenticAMD", 26) == 64
    assert fp32_flops_per_cycle({"avx2"}, "AuthenticAMD", 26) == 32
    assert fp32_flops_per_cycle(set(), "", None) == 16


def test_env_overrides_auto_but_not_an_explicit_choice(monkeypatch):
    monkeypatch.setenv("DVLT_PRECISION", "bf16")
    assert requested_precision(None) == "bf16" and precision_name("auto", "cpu") == "bf16"
    assert DVLT().compute_dtype(torch.device("cpu")) == torch.bfloat16
    assert DVLT(precision="fp32").compute_dtype(torch.device("cpu")) == torch.float32
    monkeypatch.setenv("DVLT_PRECISION", "fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        requested_precision(None)


def start_app_and_read_config(checkpoint_dir, output_dir, env_extra: dict | None = None) -> str:
    """`python app.py` in a subprocess; returns the page's /config text, then stops the app."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "DVLT_PRECISION"}
    env.update(
        DVLT_CHECKPOINT=str(checkpoint_dir),
        DVLT_OUTPUT_DIR=str(output_dir),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        **(env_extra or {}),
    )
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"app exited: {process.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    return response.read().decode()
            except OSError:
                time.sleep(1)
        raise AssertionError("the app did not start within 400 s")
    finally:
        process.terminate()
        process.wait(timeout=60)


def shown_precision(config: str) -> str:
    """The precision in the estimate box's text ('… · fp32 (…) · N threads') of the served page."""
    components = json.loads(config)["components"]
    text = next(c["props"]["value"] for c in components if c["props"].get("elem_id") == "estimate")
    assert "CPU" in text and "thread" in text
    return "bf16" if " · bf16 (" in text else "fp32" if " · fp32 (" in text else "?"


def test_two_starts_pick_the_same_precision_and_show_it(checkpoint_dir, tmp_path):
    first = shown_precision(start_app_and_read_config(checkpoint_dir, tmp_path / "a"))
    second = shown_precision(start_app_and_read_config(checkpoint_dir, tmp_path / "b"))
    assert first == second == expected_cpu_precision()
