"""Finding, fetching and checking DVLT checkpoints.

A source is a Hugging Face Hub repo id (default `nvidia/dvlt`, file
`model.safetensors`), a local directory holding that file, a weights file
(`.safetensors`, or a torch `.pt`/`.pth`/`.bin` state dict), or an HTTP(S)
URL. The Hub cache is always tried first, and the network is probed with a
short timeout before any download, so an offline machine fails in seconds
with a message that says how to fix it instead of hanging in retries.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import CheckpointMismatchError, CheckpointNotFoundError, CheckpointUnavailableError

DEFAULT_REPO = "nvidia/dvlt"
DEFAULT_FILENAME = "model.safetensors"
PROBE_TIMEOUT_S = 5.0
DOWNLOAD_TIMEOUT_S = 30.0
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _fix_hint(repo: str, filename: str) -> str:
    return (
        f"Fix: on a machine with internet run `hf download {repo} {filename}` (it fills the Hugging Face cache), "
        f"or download the file and pass its path (or set DVLT_CHECKPOINT=/path/to/{filename})."
    )


def endpoint_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if an HTTP(S) endpoint answers anything at all within `timeout` seconds."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error status
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
        return False


def resolve_hub_file(repo: str, filename: str = DEFAULT_FILENAME, revision: str | None = None) -> Path:
    """Local path of `filename` from Hub repo `repo`: from the cache, else downloaded."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename, revision=revision, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    except (EntryNotFoundError, RepositoryNotFoundError) as error:  # pragma: no cover - depends on cache state
        raise CheckpointNotFoundError(f"{repo}/{filename}: {error}") from error

    if _offline() or constants.HF_HUB_OFFLINE:
        raise CheckpointUnavailableError(
            f"{repo}/{filename} is not in the Hugging Face cache and HF_HUB_OFFLINE is set. "
            + _fix_hint(repo, filename)
        )
    endpoint = constants.ENDPOINT.rstrip("/")
    if not endpoint_reachable(endpoint):
        raise CheckpointUnavailableError(
            f"{repo}/{filename} is not cached and {endpoint} cannot be reached (no network?). "
            + _fix_hint(repo, filename)
        )
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, etag_timeout=PROBE_TIMEOUT_S))
    except (EntryNotFoundError, RepositoryNotFoundError) as error:
        raise CheckpointNotFoundError(
            f"The Hub has no {filename} in {repo!r} (or the repo is private/gated: log in with `hf auth login`)."
        ) from error
    except Exception as error:  # network failures mid-download
        raise CheckpointUnavailableError(
            f"Downloading {repo}/{filename} failed: {error}. " + _fix_hint(repo, filename)
        ) from error


def cache_root() -> Path:
    """Where downloaded checkpoints and converted models are kept: $DVLT_CACHE, else ~/.cache/dvlt."""
    return Path(os.environ.get("DVLT_CACHE") or Path.home() / ".cache" / "dvlt")


def download_url(url: str, cache_dir: Path | None = None) -> Path:
    """Download an HTTP(S) checkpoint once into the cache directory and return its path."""
    cache_dir = Path(cache_dir or cache_root())
    name = Path(urllib.parse.urlparse(url).path).name or DEFAULT_FILENAME
    target = cache_dir / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as partial:
                shutil.copyfileobj(response, partial, length=1 << 20)
        os.replace(partial.name, target)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise CheckpointNotFoundError(f"{url} answered 404 Not Found: check the URL.") from error
        raise CheckpointUnavailableError(f"{url} answered HTTP {error.code}: {error.reason}.") from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise CheckpointUnavailableError(
            f"Could not download {url}: {getattr(error, 'reason', error)}. Check the address and your network, "
            "or download the file yourself and pass its local path."
        ) from error
    return target


def resolve_checkpoint(
    source: str | os.PathLike = DEFAULT_REPO, filename: str = DEFAULT_FILENAME, revision: str | None = None
) -> Path:
    """Local path of the weights file named by `source` (file, directory, URL or Hub repo id)."""
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidate = path / filename
        if candidate.is_file():
            return candidate
        present = sorted(p.name for p in path.iterdir())[:8]
        raise CheckpointNotFoundError(f"{path} has no {filename} (it contains: {present or 'nothing'}).")
    if urllib.parse.urlparse(text).scheme in {"http", "https"}:
        return download_url(text)
    looks_like_file = text.startswith((".", "~")) or text.endswith((".safetensors", *TORCH_SUFFIXES))
    if REPO_ID.match(text) and not looks_like_file:
        return resolve_hub_file(text, filename, revision)
    raise CheckpointNotFoundError(
        f"Checkpoint {text!r} not found: it is not an existing file or directory, an http(s) URL, "
        "or a Hub repo id like 'nvidia/dvlt'."
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file or a torch-saved state dict, as float32 on the CPU."""
    try:
        if path.suffix in TORCH_SUFFIXES:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
        else:
            state = load_file(str(path))
    except (SafetensorError, RuntimeError, OSError, ValueError) as error:
        raise CheckpointMismatchError(
            f"{path} is not a readable checkpoint ({error}). Is the download complete?"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointMismatchError(f"{path} does not hold a state dict of tensors.")
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}


def _sample(keys: list[str], count: int = 5) -> str:
    shown = ", ".join(keys[:count])
    return shown + (f", ... ({len(keys) - count} more)" if len(keys) > count else "")


def check_compatible(
    state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], strict: bool, source: str
) -> tuple[list[str], list[str]]:
    """Compare a checkpoint with the model's state dict; raise on problems strict loading cannot accept.

    Returns (missing, unexpected). Shape mismatches always raise.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if mismatched:
        raise CheckpointMismatchError(
            f"{source}: {len(mismatched)} tensor(s) have the wrong shape: {_sample(mismatched, 3)}. "
            "This is not a DVLT (ViT-B, depth-conv) checkpoint, or it was saved for a different configuration."
        )
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s): {_sample(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s): {_sample(unexpected)}")
        raise CheckpointMismatchError(
            f"{source} does not match the DVLT layout ({'; '.join(parts)}). "
            "Use the released nvidia/dvlt model.safetensors, or pass strict=False to load what matches."
        )
    return missing, unexpected


def load_weights(
    model: torch.nn.Module,
    source: str | os.PathLike = DEFAULT_REPO,
    strict: bool = True,
    filename: str = DEFAULT_FILENAME,
    revision: str | None = None,
) -> tuple[list[str], list[str]]:
    """Find, read and check a checkpoint, then load it into `model`; returns (missing, unexpected) keys."""
    path = resolve_checkpoint(source, filename, revision)
    state = read_state_dict(path)
    missing, unexpected = check_compatible(state, model.state_dict(), strict, str(path))
    skipped = set(unexpected)
    model.load_state_dict({key: value for key, value in state.items() if key not in skipped}, strict=False)
    return missing, unexpected
