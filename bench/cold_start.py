"""Cold start of the app: seconds from `python app.py` to its first reconstruction, fresh and after a restart.

    python bench/cold_start.py --rounds 2 [--out docs/performance.md]

"Fresh" starts with an empty `DVLT_CACHE` (as after a new install: the CPU runtime converts the network once);
"restart" starts again on the cache the fresh start left (it only compiles). Each start is a new process serving
the real app on synthetic weights saved as a checkpoint folder; the first request is `/reconstruct` of the two
aloe photos at the app's default settings, sent with gradio_client as soon as the page answers. Fresh and restart
alternate, one of each per round. Prints a markdown table; with `--out` it replaces the table between the
cold-start markers of that file.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, synthetic_checkpoint
from markers import replace_marked

from dvlt.cpu import cpu_description

PHOTOS = [ROOT / "examples" / "aloe" / "aloeL.jpg", ROOT / "examples" / "aloe" / "aloeR.jpg"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, limit_s: float = 600) -> None:
    """Poll the page until it answers 200 (or the process dies, or `limit_s` passes)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode} before serving")
        try:
            if urllib.request.urlopen(url, timeout=5).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"app.py did not serve within {limit_s:.0f} s")


def one_start(checkpoint: Path, cache: Path, log: Path) -> tuple[float, float]:
    """(seconds until the page answers, seconds until the first reconstruction is back), from the process start."""
    from gradio_client import Client, handle_file

    port = free_port()
    environment = {
        **os.environ,
        "DVLT_CHECKPOINT": str(checkpoint),
        "DVLT_CACHE": str(cache),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    url = f"http://127.0.0.1:{port}/"
    start = time.monotonic()
    with open(log, "ab") as output:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=output, stderr=output)
    try:
        wait_until_up(url, process)
        up = time.monotonic() - start
        client = Client(url, verbose=False)
        info = client.predict(files=[handle_file(str(p)) for p in PHOTOS], api_name="/reconstruct")[1]
        first = time.monotonic() - start
        if "2 cameras" not in info:
            raise RuntimeError(f"unexpected first result: {info!r}")
        return up, first
    finally:
        process.terminate()
        process.wait(timeout=60)


def table(rows: dict[str, list[tuple[float, float]]]) -> str:
    lines = [
        "| start | page answers s (median) | first reconstruction back s (median) | min–max | starts |",
        "|---|---|---|---|---|",
    ]
    for name, times in rows.items():
        ups, firsts = [t[0] for t in times], [t[1] for t in times]
        lines.append(
            f"| {name} | {statistics.median(ups):.1f} | {statistics.median(firsts):.1f} | "
            f"{min(firsts):.1f}–{max(firsts):.1f} | {len(times)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="a markdown file with the cold-start markers to update")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dvlt-cold-start-"))
    checkpoint = synthetic_checkpoint()
    rows: dict[str, list[tuple[float, float]]] = {"fresh (converts)": [], "restart (compiles)": []}
    for index in range(args.rounds):
        cache = work / f"cache-{index}"
        rows["fresh (converts)"].append(one_start(checkpoint, cache, work / "app.log"))
        rows["restart (compiles)"].append(one_start(checkpoint, cache, work / "app.log"))
        print(f"round {index + 1}: fresh {rows['fresh (converts)'][-1]}, restart {rows['restart (compiles)'][-1]}")
    text = (
        f"Machine: {cpu_description()}. Date: {time.strftime('%Y-%m-%d')}. Request: `/reconstruct` of 2 photos at "
        "the app's defaults.\n\n" + table(rows)
    )
    print(text)
    if args.out and not replace_marked(args.out, "cold-start", text + "\n"):
        raise SystemExit(f"{args.out} has no <!-- cold-start:begin/end --> markers")


if __name__ == "__main__":
    main()
