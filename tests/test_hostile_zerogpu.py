"""ZeroGPU fidelity on a CPU: ZeroGPU runs each `@spaces.GPU` function in a forked worker, pickling its arguments
in and its result out. The same is done here with `infer` and `infer_windows`: the result must equal the direct
call, and the worker must not change anything of the app's that the main process relies on afterwards (such a
change would be lost on ZeroGPU)."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle

import numpy as np
import pytest
import torch
from conftest import ALOE, BOX

from dvlt import limits
from dvlt.studio import Sampling, decode_uploads


def app_state(app) -> dict[str, str]:
    """What the app keeps between requests (estimator, cached results, sessions, model), one digest each."""

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    weights = hashlib.sha256()
    for name, tensor in sorted(app.MODEL.state_dict().items()):
        weights.update(name.encode() + tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return {
        "estimator": digest(repr(app.ESTIMATOR) + repr({k: list(v) for k, v in app.ESTIMATOR._ratios.items()})),
        "example results": digest(repr(sorted(map(repr, app.EXAMPLE_RESULTS._items)))),
        "sessions": digest(repr(sorted(app.OUTPUTS._last_seen))),
        "model mode": repr(app.MODEL.training),
        "model weights and buffers": weights.hexdigest()[:16],
    }


def worker(connection, function_name: str, payload: bytes) -> None:
    """The forked ZeroGPU worker: unpickle the arguments, run, pickle the result and the app's state back."""
    import torch

    import app

    torch.set_num_threads(1)  # libgomp's pool does not survive fork (ZeroGPU's parent never runs torch on a CPU)
    before = app_state(app)
    args = pickle.loads(payload)
    result = getattr(app, function_name)(*args)
    connection.send_bytes(pickle.dumps((result, before, app_state(app))))
    connection.close()


def in_forked_worker(function_name: str, args: tuple):
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=worker, args=(send, function_name, pickle.dumps(args)))
    process.start()
    send.close()
    if not receive.poll(timeout=600):
        process.kill()
        pytest.fail(f"{function_name} did not return from the forked worker")
    result, before, after = pickle.loads(receive.recv_bytes())
    process.join(timeout=60)
    assert process.exitcode == 0
    return result, before, after


def same_reconstruction(a, b) -> None:
    for field in ("depth", "confidence", "c2w", "intrinsics", "images", "valid"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.num_views == b.num_views and a.size == b.size and a.names == b.names


@pytest.mark.parametrize("function_name", ["infer", "infer_windows"])
def test_gpu_functions_give_the_same_result_in_a_forked_worker(app_url, function_name):
    import app

    if function_name == "infer":
        frames = decode_uploads([str(ALOE / "aloeL.jpg"), str(ALOE / "aloeR.jpg")], Sampling(), app.MAX_VIEWS, 252)
    else:  # more frames than one window: a long clip
        frames = decode_uploads([str(BOX)], Sampling("count", count=app.MAX_VIEWS + 4), app.CLIP_FRAMES, 252)
        assert len(frames) > app.MAX_VIEWS
    args = (list(frames), limits.STEPS_MIN, 252)
    state = app_state(app)
    forked, before, after = in_forked_worker(function_name, args)
    assert before == state, "the forked worker starts from the app's state"
    assert after == before, "the worker changed app state that ZeroGPU would lose"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the worker, so the sums run in the same order
    try:
        direct = getattr(app, function_name)(*args)
    finally:
        torch.set_num_threads(threads)
    same_reconstruction(forked, direct)
    assert app_state(app) == state  # and the direct call, in the main process, did not either
