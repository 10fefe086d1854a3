"""Many scenes over many processes: sharding under torchrun / accelerate launch, a resumable manifest, locks.

A launcher (`torchrun`, `accelerate launch`) starts one process per GPU and sets
RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE. Every process computes the same
assignment of scenes to ranks from the input list alone (by the index of each
output folder's first input), so no two processes ever own one folder and no
communication is needed. Each rank appends one JSON line per scene to its own
`manifest-rank<R>.jsonl` in the output folder; a relaunched batch skips the scenes
any manifest records as done whose outputs still exist. A lock file per scene
(`.locks/<name>.lock`, created atomically) guards against two batches started
into the same folder at once.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DVLTError

LOCK_DIR = ".locks"


class SceneLockedError(DVLTError):
    """Another process is writing this scene's output folder."""


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a launched job (rank 0 of 1 when run directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Launch:
        """Read the variables torchrun and accelerate launch set."""
        env = os.environ if env is None else env
        world = int(env.get("WORLD_SIZE", 1))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
        return cls(int(env.get("RANK", 0)), world, int(env.get("LOCAL_RANK", 0)), local_world)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def process_device(requested: str, launch: Launch, cuda_available: bool) -> str:
    """The device for this process: one GPU per process (cuda:LOCAL_RANK) under a launcher, else as asked."""
    if requested in ("auto", "cuda") and cuda_available:
        return f"cuda:{launch.local_rank}" if launch.distributed else "cuda"
    return requested


def cpu_share(launch: Launch) -> int:
    """CPU threads for one of LOCAL_WORLD_SIZE processes on this machine: a fair share, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, launch.local_world_size))


@dataclass(frozen=True)
class Scene:
    index: int  # position in the input list
    text: str  # the input as given
    name: str  # output sub-folder
    rank: int  # the process that owns it


def assign(inputs: Sequence[str], name_of: Callable[[str], str], world_size: int) -> list[Scene]:
    """Every input with its owner rank: the first input writing a folder decides, so a folder has one owner."""
    first: dict[str, int] = {}
    scenes = []
    for index, text in enumerate(inputs):
        name = name_of(text)
        owner = first.setdefault(name, index) % world_size
        scenes.append(Scene(index, text, name, owner))
    return scenes


@dataclass
class Entry:
    """One manifest line in the making."""

    scene: Scene
    rank: int
    status: str = "running"
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    views: int | None = None
    windows: int | None = None
    error: str | None = None

    def line(self) -> str:
        record = {
            "input": self.scene.text,
            "name": self.scene.name,
            "index": self.scene.index,
            "rank": self.rank,
            "host": socket.gethostname(),
            "status": self.status,
            "views": self.views,
            "windows": self.windows,
            "seconds": {key: round(value, 4) for key, value in self.seconds.items()},
            "outputs": self.outputs,
            "error": self.error,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        return json.dumps(record)


def pid_alive(pid: int) -> bool:
    """True while a process of this id exists on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Manifest:
    """This rank's manifest file, what every rank recorded before, and the per-scene locks."""

    def __init__(self, out: Path, launch: Launch) -> None:
        self.out, self.launch = Path(out), launch
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / f"manifest-rank{launch.rank}.jsonl"
        self.locks = self.out / LOCK_DIR

    def records(self) -> list[dict[str, Any]]:
        """Every line of every rank's manifest in the output folder (unreadable lines skipped)."""
        found = []
        for path in sorted(self.out.glob("manifest-rank*.jsonl")):
            for text in path.read_text().splitlines():
                try:
                    found.append(json.loads(text))
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash
        return found

    def done(self) -> set[tuple[str, str]]:
        """(input, name) of scenes recorded as ok whose outputs all still exist."""
        return {
            (record["input"], record["name"])
            for record in self.records()
            if record.get("status") == "ok" and all(Path(p).exists() for p in record.get("outputs", {}).values())
        }

    def mine(self, scenes: Sequence[Scene], resume: bool) -> tuple[list[Scene], list[Scene]]:
        """(scenes this rank must run, scenes it skips because they are done)."""
        owned = [scene for scene in scenes if scene.rank == self.launch.rank]
        finished = self.done() if resume else set()
        todo = [scene for scene in owned if (scene.text, scene.name) not in finished]
        return todo, [scene for scene in owned if (scene.text, scene.name) in finished]

    def _lock(self, scene: Scene) -> Path:
        """Create the scene's lock atomically, taking over one left by a dead process on this host."""
        self.locks.mkdir(exist_ok=True)
        path = self.locks / f"{scene.name}.lock"
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "rank": self.launch.rank}
        for _ in range(2):
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    holder = json.loads(path.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    holder = {}
                stale = holder.get("host") == owner["host"] and not pid_alive(int(holder.get("pid", 0) or 0))
                if stale:
                    path.unlink(missing_ok=True)
                    continue
                raise SceneLockedError(
                    f"{scene.name} is being written by another process (host {holder.get('host', '?')}, "
                    f"pid {holder.get('pid', '?')}); if none is running, delete {LOCK_DIR}/{path.name} "
                    "in the output folder."
                ) from None
            with os.fdopen(descriptor, "w") as handle:
                json.dump(owner, handle)
            return path
        raise SceneLockedError(f"Could not lock {scene.name}.")

    @contextmanager
    def claim(self, scene: Scene) -> Iterator[Entry]:
        """Lock the scene's folder, then append its manifest line: ok on success, the error on failure."""
        entry = Entry(scene, self.launch.rank)
        try:
            lock = self._lock(scene)
        except SceneLockedError as error:
            entry.status, entry.error = "error", str(error)
            self.write(entry)
            raise
        start = time.perf_counter()
        try:
            yield entry
            entry.status = "ok"
        except BaseException as error:
            entry.status, entry.error = "error", str(error) or type(error).__name__
            raise
        finally:
            entry.seconds["total"] = time.perf_counter() - start
            self.write(entry)
            lock.unlink(missing_ok=True)

    def write(self, entry: Entry) -> None:
        """Append one line and flush it to disk (a crash loses at most the scene in progress)."""
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(entry.line() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
