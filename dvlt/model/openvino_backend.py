"""The network on OpenVINO's CPU runtime: converted once per checkpoint, compiled for this CPU, run by `DVLT.forward`.

Why: on CPUs torch eager reaches ~60-70 % of the machine's peak; OpenVINO's CPU plugin fuses the
attention, norms and residual scales into its matrix kernels and, in bf16, keeps softmax,
normalisation and accumulation in float32, so it is both faster and closer to float32 than
torch's bf16 autocast (docs/performance.md, "OpenVINO").

    backend = OpenVINOBackend.for_model(model, "bf16")   # converts on first use, cached on disk
    session = backend.session()                          # own infer requests: one per forward
    x = session.tokens(images); x = session.step(x, ...); session.decode_views(...)

The converted models are saved under `$DVLT_CACHE/openvino/` (see `dvlt.weights.cache_root`),
keyed by the weights' digest, the OpenVINO version and `PARTS_FORMAT`, so a restart only compiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..weights import cache_root
from .layers import RopeTable

if TYPE_CHECKING:
    from .network import DVLT

PARTS = ("encoder", "loop", "rays", "depth")
PARTS_FORMAT = 4  # bump when dvlt/model/openvino_parts.py changes what a converted part computes (or the folder)
SHARED_FILE = "shared.json"  # per part: which IR constants are a tensor of the model, byte for byte
SHARED_MIN_BYTES = 64 * 1024  # smaller constants stay in the IR
# Parts run in bf16 under precision "bf16"; the others stay float32 (see docs/performance.md, "OpenVINO"): the ray
# head is 1 % of the FLOPs and alone adds 4.7e-3 to the rays' error in bf16.
BF16_PARTS = ("encoder", "loop", "depth")
BF16_PARTS_VARIABLE = "DVLT_OPENVINO_BF16_PARTS"  # e.g. "loop": the split that keeps depth and rays within 1e-3


def bf16_parts() -> tuple[str, ...]:
    """The parts computed in bf16 under precision "bf16": $DVLT_OPENVINO_BF16_PARTS (comma-separated), else the
    default split; "none" keeps all four in float32."""
    listed = os.environ.get(BF16_PARTS_VARIABLE, "").strip().lower()
    if not listed:
        return BF16_PARTS
    parts = tuple(part.strip() for part in listed.split(",") if part.strip() and part.strip() != "none")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"{BF16_PARTS_VARIABLE} names unknown parts {unknown}; the parts are {', '.join(PARTS)}")
    return parts


_LOCK = threading.Lock()
_CORE_LOCK = threading.Lock()
_CORE: Any = None


def openvino_version() -> str | None:
    """The installed OpenVINO's version, or None when it is not installed (torch is used then)."""
    try:
        import openvino
    except ImportError:
        return None
    return openvino.get_version().split("-")[0]


def weights_digest(model: DVLT) -> str:
    """A digest of every tensor of the state dict: the converted models belong to exactly these weights."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def weights_version(model: DVLT) -> tuple:
    """Cheap identity of the current weights (storage and in-place version of each tensor), read on every forward:
    the tensors themselves, not `state_dict()`'s detached copies."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def converted_folder(model: DVLT, root: Path | None = None) -> Path:
    """The folder holding the three parts as OpenVINO IR for `model`'s weights, converting them if missing."""
    from .openvino_helper import HELPER_PARTS, finish_helper, start_helper, stop_helper
    from .openvino_parts import write_parts

    root = Path(root or cache_root() / "openvino")
    folder = root / f"{openvino_version()}-f{PARTS_FORMAT}-{weights_digest(model)}"
    if all((folder / name).is_file() for name in (*(f"{part}.xml" for part in PARTS), SHARED_FILE)):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=root))
    helpers = {part: start_helper(model, part, partial) for part in HELPER_PARTS}  # converted beside the others
    try:
        write_parts(model, tuple(part for part in PARTS if part not in helpers), partial)
        failed = tuple(part for part, helper in helpers.items() if not finish_helper(helper, part, partial))
        write_parts(model, failed, partial)  # what a helper could not do
        (partial / SHARED_FILE).write_text(json.dumps(shared_constants(model, partial)))
        partial.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder left by an older interrupted run
        try:
            partial.rename(folder)
        except OSError:  # another process finished the same conversion first
            if not (folder / SHARED_FILE).is_file():
                raise
    finally:
        for helper in helpers.values():
            stop_helper(helper)
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def shared_core() -> Any:
    """The process's one OpenVINO Core. Its CPU plugin installs a signal stack of its own on the thread that first
    compiles, and puts back the one it replaced when it is destroyed; with a Core per model, plugins destroyed in the
    order they were made leave a freed stack installed, and the next signal (a Ctrl-C) kills Python with SIGSEGV.
    One Core keeps one plugin, alive until the process exits (and compiles share its caches)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


def _tensor_key(array: np.ndarray) -> tuple[str, int, str]:
    return (
        str(array.dtype),
        array.size,
        hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).hexdigest(),
    )


def model_tensors(model: DVLT) -> dict[str, Tensor]:
    """Every parameter and buffer of `model` by name (the tensors themselves)."""
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def shared_constants(model: DVLT, folder: Path) -> dict[str, dict[str, str]]:
    """For each converted part, {IR constant name: model tensor name} where the constant holds exactly that
    tensor's values (matched by digest): at compile time those constants are the model's own memory, not a copy."""
    by_key = {}
    for name, tensor in model_tensors(model).items():
        array = tensor.detach().numpy()
        if array.nbytes >= SHARED_MIN_BYTES and array.flags.c_contiguous:
            by_key.setdefault(_tensor_key(array), name)
    core, shared = shared_core(), {}
    for part in PARTS:
        constants = (
            op for op in core.read_model(folder / f"{part}.xml").get_ordered_ops() if op.get_type_name() == "Constant"
        )
        shared[part] = {
            op.get_friendly_name(): by_key[key]
            for op in constants
            if op.get_byte_size() >= SHARED_MIN_BYTES and (key := _tensor_key(op.get_data())) in by_key
        }
    return shared


def read_sharing(core: Any, folder: Path, part: str, model: DVLT, keep: list) -> Any:
    """Read one converted part, its large constants replaced by the model's own tensors (shared, not copied:
    the float32 weights are held once, by torch); the arrays shared are appended to `keep`."""
    from openvino import opset13

    ir = core.read_model(folder / f"{part}.xml")
    names = json.loads((folder / SHARED_FILE).read_text())[part]
    tensors = model_tensors(model)
    for op in ir.get_ordered_ops():
        tensor = tensors.get(names.get(op.get_friendly_name(), ""))
        if op.get_type_name() != "Constant" or tensor is None:
            continue
        shape = tuple(op.get_output_shape(0))
        array = tensor.detach().numpy()
        if (
            array.dtype != op.get_element_type().to_dtype()
            or array.size != int(np.prod(shape))
            or not array.flags.c_contiguous
        ):
            continue
        array = array.reshape(shape)
        keep.append(array)
        op.output(0).replace(opset13.constant(array, shared_memory=True).output(0))
    return ir


class OpenVINOBackend:
    """The three parts compiled for this CPU in one precision ('fp32' or 'bf16')."""

    def __init__(self, model: DVLT, folder: Path, precision: str, threads: int | None = None) -> None:
        import openvino.properties as props
        import openvino.properties.hint as hints

        self.model = model
        self.precision = precision
        self.folder = folder
        core = shared_core()
        threads = threads or torch.get_num_threads()
        self.bf16_parts = bf16_parts() if precision == "bf16" else ()
        self.parts = {}
        self.shared: list[np.ndarray] = []  # the model's tensors the compiled parts read in place: kept alive here
        for part in PARTS:
            inference = "bf16" if part in self.bf16_parts else "f32"
            config = {
                hints.inference_precision: inference,
                hints.performance_mode: hints.PerformanceMode.LATENCY,
                props.inference_num_threads: threads,
            }
            self.parts[part] = core.compile_model(read_sharing(core, folder, part, model, self.shared), "CPU", config)

    @classmethod
    def for_model(cls, model: DVLT, precision: str) -> OpenVINOBackend | None:
        """The backend for `model`'s current weights (kept on the model), or None where OpenVINO cannot run it."""
        key = (weights_version(model), precision, bf16_parts() if precision == "bf16" else ())
        cached = model.__dict__.get("_openvino")
        if cached is not None and cached[0] == key:
            return cached[1]
        with _LOCK:
            try:
                backend = cls(model, converted_folder(model), precision)
            except Exception as error:  # noqa: BLE001 - any conversion failure falls back to torch
                warnings.warn(f"OpenVINO could not run the model ({error}); using PyTorch.", RuntimeWarning, 2)
                backend = None
            model.__dict__["_openvino"] = (key, backend)  # not a submodule: state_dict() stays the checkpoint's
        return backend

    def session(self) -> OpenVINOSession:
        """Fresh infer requests for one forward pass (sessions may run in parallel threads)."""
        return OpenVINOSession(self)


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.detach().float().contiguous().numpy()


class OpenVINOSession:
    """One forward pass's calls into the compiled parts, in `DVLT.forward`'s terms."""

    def __init__(self, backend: OpenVINOBackend) -> None:
        self.model = backend.model
        self.encoder = backend.parts["encoder"].create_infer_request()
        self.rays = backend.parts["rays"].create_infer_request()
        self.depth = backend.parts["depth"].create_infer_request()
        # two requests used in turn: each step reads the other's output buffer in place (no copies)
        self.loop = [backend.parts["loop"].create_infer_request() for _ in range(2)]
        self.turn = 0

    def tokens(self, images: Tensor) -> Tensor:
        """(B, S, 3, H, W) in [0, 1] -> tokens with the special tokens prepended, (B*S, P, dim)."""
        batch, views, _, height, width = images.shape
        patch = self.model.patch_size
        grid = (height // patch, width // patch)
        pos = self.model.patch_embed_encoder.positional_embedding(*grid)[:, 1:].unflatten(1, grid)
        z0 = [torch.from_numpy(self.encoder.infer([_array(item), _array(pos)])[0].copy()) for item in images.unbind(0)]
        return self.model.with_special_tokens(torch.cat(z0), views)

    def step(self, x: Tensor, frame_gates: Tensor, global_gates: Tensor, rope: RopeTable, views: int) -> Tensor:
        """One loop step for every batch item: (B*S, P, dim) -> same."""
        gates, tables = (_array(frame_gates), _array(global_gates)), (_array(rope.cos), _array(rope.sin))
        outputs = []
        for item in x.split(views):
            request = self.loop[self.turn]
            self.turn = 1 - self.turn
            result = request.infer([item.numpy(), *gates, *tables], share_inputs=True, share_outputs=True)
            outputs.append(torch.from_numpy(result[0]))
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def decode_views(self, x: Tensor, rope: RopeTable, height: int, width: int) -> tuple[Tensor, Tensor, Tensor]:
        """The dense heads on a few views (V, P, dim): rays (V, 6, H, W), raw depth (V, 2, H, W), camera tokens."""
        patch, special = self.model.patch_size, self.model.config.special_tokens
        patches = x[:, special:].unflatten(1, (height // patch, width // patch))
        uv_grids = self.model.depth_decoder.uv_grids(height, width, x.float())
        tokens: list[Any] = [_array(x[:, :special]), _array(patches)]
        rays, camera_tokens = (torch.from_numpy(out.copy()) for out in self.rays.infer(tokens).values())
        uv = [_array(grid) for grid in uv_grids]
        # one view per depth call: the full-resolution conv head's buffers are then one view's (-0.2 GiB at
        # 4 x 378 x 504), at the same speed
        raw_depth = np.concatenate(
            [self.depth.infer([*(t[v : v + 1] for t in tokens), *uv])[0].copy() for v in range(len(patches))]
        )
        return rays, torch.from_numpy(raw_depth), camera_tokens
