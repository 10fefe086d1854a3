"""Start the real app in-process, once per test session, on synthetic weights."""

from __future__ import annotations

import importlib
import os
import socket
import sys

from conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app(checkpoint_dir, output_dir) -> tuple[object, str]:
    """Import app.py with DVLT_CHECKPOINT pointing at the synthetic checkpoint and serve it."""
    os.environ["DVLT_CHECKPOINT"] = str(checkpoint_dir)
    os.environ["DVLT_OUTPUT_DIR"] = str(output_dir)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(output_dir / "examples-cache")
    # uploads in a cache of this test session's own: /tmp/gradio is shared by every Gradio process on the machine,
    # and one that shuts down deletes the files it wrote there, even when another app's upload has the same hash
    os.environ["GRADIO_TEMP_DIR"] = str(output_dir / "gradio-cache")
    sys.path.insert(0, str(ROOT))
    app = importlib.import_module("app")
    port = free_port()
    app.demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_options()
    )
    return app, f"http://127.0.0.1:{port}/"
