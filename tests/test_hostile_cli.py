"""The real CLI in a subprocess against hostile options and output folders."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ALOE, ROOT

from dvlt import limits
from dvlt.cli import SceneFolder

FAST = ["--img-size", "252", "--steps", "8", "--quiet"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "dvlt", "reconstruct", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_options_that_could_not_finish_are_refused(tmp_path):
    cases = {
        "--steps 1000000000": f"--steps must be between 1 and {limits.STEPS_HARD_MAX}",
        "--img-size 14000": f"--img-size must be a multiple of 14 between 14 and {limits.IMG_SIZE_MAX}",
    }
    for option, expected in cases.items():
        result = run_cli(str(ALOE), "--out", str(tmp_path / "out"), *option.split())
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_inputs_and_output_checked_before_the_model_loads(tmp_path):
    """A missing input or an unwritable --out fails at once: the (missing) checkpoint is never reached."""
    nowhere = str(tmp_path / "no-checkpoint")
    result = run_cli(str(ALOE), str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out"), "--checkpoint", nowhere)
    assert result.returncode == 1 and "missing.mp4: no such file or folder" in result.stderr
    assert "checkpoint" not in result.stderr.lower() and "Traceback" not in result.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(str(ALOE), "--out", str(blocker / "out"), "--checkpoint", nowhere)
    assert result.returncode == 1 and "cannot write to the output folder" in result.stderr
    assert "checkpoint" not in result.stderr.lower()


def scene_folders(out) -> list[str]:
    """What OUT holds besides the batch manifest (manifest-rank*.jsonl) and its lock folder (.locks)."""
    return sorted(p.name for p in out.iterdir() if not p.name.startswith("manifest-") and p.name != ".locks")


def test_scene_folders_are_never_mixed(tmp_path, checkpoint_dir):
    """Same-name inputs get distinct folders; a second run needs --overwrite and then replaces the scene whole."""
    for parent in ("first", "second"):
        shutil.copytree(ALOE, tmp_path / parent / "aloe")
    out = tmp_path / "out"
    inputs = [str(tmp_path / "first" / "aloe"), str(tmp_path / "second" / "aloe")]
    result = run_cli(*inputs, "--out", str(out), "--formats", "glb,ply", "--checkpoint", str(checkpoint_dir), *FAST)
    assert result.returncode == 0, result.stderr
    assert scene_folders(out) == ["aloe", "aloe-2"]
    assert all((out / name / "points.ply").is_file() for name in ("aloe", "aloe-2"))

    again = [inputs[0], "--out", str(out), "--formats", "glb", "--checkpoint", str(checkpoint_dir), *FAST]
    result = run_cli(*again)
    assert result.returncode == 1 and "already exist" in result.stderr and "--overwrite" in result.stderr
    result = run_cli(*again, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "aloe").iterdir()) == ["scene.glb"]  # the first run's PLY is gone
    assert scene_folders(out) == ["aloe", "aloe-2"]  # no temporary folders left


def test_interrupted_export_leaves_no_half_written_scene(tmp_path):
    target = tmp_path / "scene"
    with pytest.raises(KeyboardInterrupt):
        with SceneFolder(target) as folder:
            (folder / "scene.glb").write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    target.mkdir()
    (target / "scene.glb").write_bytes(b"previous")
    with pytest.raises(OSError):
        with SceneFolder(target) as folder:
            raise OSError("export failed")
    assert [p.name for p in tmp_path.iterdir()] == ["scene"] and (target / "scene.glb").read_bytes() == b"previous"
    with SceneFolder(target) as folder:
        (folder / "points.ply").write_bytes(b"new")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["scene"]
    assert [p.name for p in target.iterdir()] == ["points.ply"]


def test_ctrl_c_just_after_the_folder_is_created_leaves_nothing(tmp_path, monkeypatch):
    """SIGINT delivered the instant the temporary folder exists (before the `with` body owns it) is held until
    the folder is owned, then cleaned up; a full disk while writing is reported as such, with nothing left."""
    import errno
    import signal
    import tempfile
    import threading

    from dvlt import cli
    from dvlt.errors import DiskFullError

    make_folder = tempfile.mkdtemp

    def mkdtemp_then_ctrl_c(**kwargs):
        folder = make_folder(**kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return folder

    monkeypatch.setattr(cli.tempfile, "mkdtemp", mkdtemp_then_ctrl_c)
    # A running thread, like the CLI's torch and tqdm threads: the kernel may hand SIGINT to it, so a signal mask
    # in the main thread would let about 1 interrupt in 7 through (measured); 50 tries make that certain to show.
    spinning = threading.Event()

    def spin() -> None:
        while not spinning.is_set():
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a shell, also under nohup / `&`
    try:
        for _ in range(50):
            with pytest.raises(KeyboardInterrupt):
                with SceneFolder(tmp_path / "scene"):
                    pytest.fail("the interrupt should arrive before the body runs")
            assert list(tmp_path.iterdir()) == []
    finally:
        spinning.set()
        spinner.join()
        signal.signal(signal.SIGINT, previous)
    monkeypatch.undo()
    with pytest.raises(DiskFullError, match="disk is full"):
        with SceneFolder(tmp_path / "scene"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_keeps_finished_scenes_and_leaves_no_partial_one(tmp_path, checkpoint_dir):
    """A real SIGINT while the second input's files are being written: the first scene stays whole, nothing of
    the second is left, the exit status is 130 and the message is one line, without a traceback."""
    import signal
    import time

    from conftest import BOX

    out = tmp_path / "out"
    command = [sys.executable, "-m", "dvlt", "reconstruct", str(ALOE), str(BOX), "--num-frames", "12"]
    command += ["--out", str(out), "--formats", "all", "--checkpoint", str(checkpoint_dir), *FAST]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a shell, also if ours ignores it
    )
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if any(path.name.startswith(".box.partial-") for path in out.glob(".*")):
            break  # the second scene is being written
        time.sleep(0.002)
    assert process.poll() is None, "the run ended before the second scene was written: " + process.stderr.read()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert scene_folders(out) == ["aloe"]  # no 'box', no hidden '.box.partial-*'
    assert (out / "aloe" / "scene.glb").is_file() and (out / "aloe" / "colmap").is_dir()


def test_an_interrupt_swallowed_by_a_finaliser_still_ends_the_cli_with_130(tmp_path, monkeypatch, capsys):
    """Python drops a KeyboardInterrupt raised inside a `__del__` ('Exception ignored'): libraries' finalisers run
    at any allocation, so a Ctrl-C handled there would let the CLI finish and exit 0. The CLI counts interrupts
    in its one SIGINT handler and still reports the run as interrupted."""
    import signal

    from dvlt import cli

    class Finaliser:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # Python runs the handler here, inside __del__, and drops its KeyboardInterrupt

    def export_that_finalises(args) -> int:
        Finaliser()  # dropped at once: __del__ runs now
        return 0

    monkeypatch.setattr(cli, "run_export", export_that_finalises)
    status = export_as_from_a_shell(tmp_path)
    assert status == 130 and "error: interrupted" in capsys.readouterr().err


def export_as_from_a_shell(tmp_path: Path) -> int:
    """`dvlt export` through cli.main with Python's own Ctrl-C handler, as in a shell (also under nohup / `&`)."""
    from dvlt import cli

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return cli.main(["export", str(tmp_path / "p.npz"), "--out", str(tmp_path / "out")])
    finally:
        signal.signal(signal.SIGINT, previous)


def swallowed_ctrl_c() -> None:
    """A real SIGINT handled inside a finaliser, which drops its KeyboardInterrupt (as a library's `__del__` can)."""
    import signal

    class Finaliser:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # the handler runs here, and Python drops its KeyboardInterrupt

    Finaliser()


def test_an_interrupt_turned_into_another_error_still_ends_the_cli_with_130(tmp_path, monkeypatch, capsys):
    """A Ctrl-C that a library turns into its own error (here an OSError) is still an interrupt: exit 130."""

    from dvlt import cli

    def export_that_fails(args) -> int:
        swallowed_ctrl_c()
        raise OSError("a library's error after the interrupt")

    monkeypatch.setattr(cli, "run_export", export_that_fails)
    status = export_as_from_a_shell(tmp_path)
    err = capsys.readouterr().err
    assert status == 130 and "error: interrupted" in err and "library's error" not in err


@pytest.mark.parametrize("surfaced_as", ["the input's error", "nothing (a finished scene)"])
def test_an_interrupt_a_library_hid_stops_the_run_before_the_next_input(
    surfaced_as, tmp_path, monkeypatch, checkpoint_dir, capsys
):
    """With several inputs, a Ctrl-C that a library turned into the input's error, or swallowed while the scene
    went on to finish, stops the run there: the next input is not started (minutes of work after the user asked
    to stop), no error is blamed on the input, exit 130."""
    import signal

    from conftest import BOX

    from dvlt import cli, pipeline, studio

    started = []
    real_load_sequence, real_reconstruct = cli.load_sequence, pipeline.reconstruct

    def load_sequence(source, **kwargs):
        started.append(source)
        if surfaced_as == "the input's error":
            swallowed_ctrl_c()
            raise OSError("a decoder's error after the interrupt")
        return real_load_sequence(source, **kwargs)

    def reconstruct(*args, **kwargs):
        swallowed_ctrl_c()
        return real_reconstruct(*args, **kwargs)

    monkeypatch.setattr(cli, "load_sequence", load_sequence)
    monkeypatch.setattr(pipeline, "reconstruct", reconstruct)
    monkeypatch.setattr(studio, "probe_speed", lambda *args: None)  # time estimates play no part here
    out = tmp_path / "out"
    command = ["reconstruct", str(ALOE), str(BOX), "--out", str(out), "--formats", "glb"]
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a shell, also under nohup / `&`
    try:
        status = cli.main([*command, "--checkpoint", str(checkpoint_dir), *FAST])
    finally:
        signal.signal(signal.SIGINT, previous)
        gc.collect()  # the interrupted run's frames (its model, 1.5 GB) sit in reference cycles until collected
    err = capsys.readouterr().err
    assert status == 130 and "error: interrupted" in err and "after the interrupt" not in err, err
    assert started == [str(ALOE)]
    assert scene_folders(out) == ([] if surfaced_as == "the input's error" else ["aloe"])


def test_a_second_ctrl_c_while_cleaning_up_leaves_nothing(tmp_path, monkeypatch):
    """Holding Ctrl-C repeats it: one arriving while the partial folder of an interrupted scene is being removed
    waits until it is gone, so nothing is left behind; the run still ends interrupted."""
    import signal

    from dvlt import cli

    real_rmtree = shutil.rmtree

    def rmtree_interrupted(path, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # the key repeats as the clean-up starts
        real_rmtree(path, **kwargs)

    monkeypatch.setattr(cli.shutil, "rmtree", rmtree_interrupted)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with SceneFolder(tmp_path / "scene") as folder:
                (folder / "scene.glb").write_bytes(b"half")
                raise KeyboardInterrupt  # the first Ctrl-C
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []


def test_a_signal_handler_failing_as_a_hold_closes_keeps_ctrl_c_working(monkeypatch):
    """Closing a hold runs every signal already arrived; if another signal's handler raises there, the hold still
    closes, so the next Ctrl-C interrupts at once instead of being held for ever."""
    import signal

    from dvlt import interrupts

    def failing_handler(number, frame):
        raise RuntimeError("another signal's handler")

    real_signal = signal.signal

    def signal_with_a_pending_failure(number, handler):
        if isinstance(handler, interrupts.InterruptHold):  # the flush as the block closes
            os.kill(os.getpid(), signal.SIGUSR1)  # its handler raises here, where the flush would run it
        return real_signal(number, handler)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_usr1 = signal.signal(signal.SIGUSR1, failing_handler)
    try:
        hold = interrupts.installed_hold()
        monkeypatch.setattr(interrupts.signal, "signal", signal_with_a_pending_failure)
        with pytest.raises(RuntimeError, match="another signal"):
            with interrupts.interrupts_deferred():
                pass
        monkeypatch.undo()
        assert hold.depth == 0
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))
    finally:
        signal.signal(signal.SIGUSR1, previous_usr1)
        signal.signal(signal.SIGINT, previous)


TWO_MODELS_THEN_CTRL_C = """
import gc, os, signal, sys
from dvlt import DVLT
from dvlt.model.openvino_backend import OpenVINOBackend

def made():
    model = DVLT(img_size=252, inference_steps=8)
    model.load_pretrained(sys.argv[1], strict=True)
    model.setup_test("cpu")
    assert OpenVINOBackend.for_model(model, "fp32") is not None
    return model

first, second = made(), made()
del first; gc.collect()  # freed in the order they were made
del second; gc.collect()
os.kill(os.getpid(), signal.SIGINT)
sum(range(1000))
"""


def test_ctrl_c_after_two_models_were_freed_still_interrupts(checkpoint_dir):
    """OpenVINO's CPU plugin installs a signal stack of its own and puts back the one it replaced when destroyed:
    with a Core per model, two models freed in the order they were made left a freed stack installed, and the next
    Ctrl-C killed Python with SIGSEGV (exit -11, no message, partial files). One Core per process keeps it valid."""
    pytest.importorskip("openvino")
    command = [sys.executable, "-c", TWO_MODELS_THEN_CTRL_C, str(checkpoint_dir)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a shell, also under nohup / `&`
    )
    # Python ends on an uncaught KeyboardInterrupt by re-raising SIGINT at its default (-2), or with exit 1 where
    # that signal cannot end it; either way a Python traceback, never SIGSEGV
    assert result.returncode in (1, -signal.SIGINT), result
    assert result.stderr.rstrip().endswith("KeyboardInterrupt"), result


def test_a_run_that_refuses_its_inputs_writes_nothing(tmp_path):
    """An empty folder or a photo we cannot read is refused before OUT, its manifest or a scene folder exists."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "photo.jpg").write_bytes(b"P5\n4 4\n255\n" + bytes(16))  # a PGM named .jpg
    for source, expected in ((empty, "has no images or videos"), (tmp_path / "notes", "not an image we can read")):
        out = tmp_path / f"out-{source.name}"
        result = run_cli(str(source), "--out", str(out), "--checkpoint", str(tmp_path / "no-checkpoint"))
        assert result.returncode == 1 and expected in result.stderr, result.stderr
        assert not out.exists(), sorted(out.rglob("*"))


def export_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ctrl_c_during_dvlt_export_keeps_the_earlier_export_whole(tmp_path):
    """`dvlt export` writes aside and moves its files into OUT only when all are written: SIGINT at any moment
    leaves either the earlier export byte for byte (exit 130) or the new one whole (exit 0), and no temporary
    folder; OUT's unrelated files are kept."""
    import signal
    import time

    from sphere_scene import sphere_scene

    rec, _ = sphere_scene()
    npz = rec.to_npz(tmp_path / "known.npz")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, photo in zip(rec.names, rec.originals):
        photo.save(photos / name, quality=95)
    out = tmp_path / "X"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    command = [sys.executable, "-m", "dvlt", "export", str(npz), "--out", str(out), "--formats", "all"]
    command += ["--images", str(photos), "--quiet"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a shell
        )

    def writing_started(process: subprocess.Popen, since: float) -> float:
        """When the export began writing (its temporary folder, or a file of OUT, appeared or changed)."""
        while process.poll() is None:
            if any(p.name.startswith(".X.") for p in tmp_path.iterdir()) or any(
                p.stat().st_mtime > since for p in out.rglob("*") if p.is_file()
            ):
                break
            time.sleep(0.002)
        return time.monotonic()

    first = start()
    began = writing_started(first, time.time())
    assert first.wait(timeout=300) == 0, first.stderr.read()
    seconds = time.monotonic() - began  # how long writing takes
    earlier = export_files(out)
    assert "colmap/images/view0.jpg" in earlier and earlier["notes.txt"] == b"mine"
    statuses = []
    for fraction in (0.0, 0.2, 0.4, 0.6, 0.8, 0.95):  # moments spread over the writing, whoever writes how
        process = start()
        time.sleep(max(0.0, writing_started(process, time.time()) + fraction * seconds - time.monotonic()))
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        statuses.append(process.returncode)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["X", "known.npz", "photos"]  # nothing temporary
        now = export_files(out)  # an export is byte-identical to the last but for the Rerun recording's id
        assert now.keys() == earlier.keys() and now["notes.txt"] == b"mine", (process.returncode, stderr)
        assert all(now[name] == earlier[name] for name in now if name != "scene.rrd"), "a file was cut short"
        assert abs(len(now["scene.rrd"]) - len(earlier["scene.rrd"])) < 0.01 * len(earlier["scene.rrd"])  # whole
        assert process.returncode in (0, 130, -signal.SIGINT), stderr  # -2: Python was still starting up
        if process.returncode == 130:  # CPython prints (and drops) an interrupt that lands in an import-lock
            own = stderr.split("Exception ignored in")[0]  # callback; the run still ends as interrupted
            assert "error: interrupted" in stderr and "Traceback" not in own, stderr
    assert 130 in statuses, statuses


def test_a_failed_export_commit_puts_the_earlier_export_back(tmp_path, monkeypatch):
    """If moving the new files into OUT fails half-way, OUT is as before: earlier files back, new ones gone."""
    import errno

    out = tmp_path / "X"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "notes.txt").write_text("mine")
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if self.name == "c.txt" and ".partial-" in str(self):
            raise OSError(errno.EIO, "Input/output error")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        with SceneFolder(out, merge=True) as folder:
            for name in ("a.txt", "b.txt", "c.txt"):
                (folder / name).write_text(f"new {name}")
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a.txt": "old a", "notes.txt": "mine"}
    assert [p.name for p in tmp_path.iterdir()] == ["X"]  # no temporary folders left


def test_an_ignored_sigint_stays_ignored():
    """Started under `nohup` or as a background job (`cmd &` in a script), SIGINT is ignored from the start: the
    hold installs nothing and a Ctrl-C neither interrupts nor is counted (the CLI then exits 0, not 130)."""
    import signal

    from dvlt.interrupts import installed_hold, interrupts_deferred, interrupts_received

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert installed_hold() is None
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN and interrupts_received() == 0
    finally:
        signal.signal(signal.SIGINT, previous)
