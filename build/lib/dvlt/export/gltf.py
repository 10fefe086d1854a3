"""A minimal binary glTF 2.0 (GLB) writer for coloured points and coloured triangle meshes.

Written with numpy in one pass (no per-vertex Python), so a 2-million-point
scene is serialised in tens of milliseconds. Points use KHR_materials_unlit so
viewers show their true colours instead of shading them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

FLOAT, UNSIGNED_BYTE, UNSIGNED_INT = 5126, 5121, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
POINTS, TRIANGLES = 0, 4


@dataclass
class GlbBuilder:
    """Accumulates nodes, meshes and binary data; `to_bytes` returns the .glb file."""

    gltf: dict = field(
        default_factory=lambda: {
            "asset": {"version": "2.0", "generator": "dvlt-studio"},
            "scene": 0,
            "scenes": [{"nodes": []}],
            "nodes": [],
            "meshes": [],
            "materials": [],
            "accessors": [],
            "bufferViews": [],
            "buffers": [],
        }
    )
    chunks: list[bytes] = field(default_factory=list)
    offset: int = 0

    def _accessor(self, data: np.ndarray, component: int, kind: str, target: int, normalized: bool = False) -> int:
        raw = np.ascontiguousarray(data).tobytes()
        self.gltf["bufferViews"].append(
            {"buffer": 0, "byteOffset": self.offset, "byteLength": len(raw), "target": target}
        )
        padding = (-len(raw)) % 4
        self.chunks.append(raw + b"\0" * padding)
        self.offset += len(raw) + padding
        accessor = {
            "bufferView": len(self.gltf["bufferViews"]) - 1,
            "componentType": component,
            "count": int(len(data)),
            "type": kind,
        }
        if normalized:
            accessor["normalized"] = True
        if kind == "VEC3" and component == FLOAT:  # POSITION needs bounds
            accessor["min"] = data.min(axis=0).tolist() if len(data) else [0.0] * 3
            accessor["max"] = data.max(axis=0).tolist() if len(data) else [0.0] * 3
        self.gltf["accessors"].append(accessor)
        return len(self.gltf["accessors"]) - 1

    def _material(self, unlit: bool) -> int:
        material = {
            "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1], "metallicFactor": 0.0, "roughnessFactor": 1.0},
            "doubleSided": True,
        }
        if unlit:
            material["extensions"] = {"KHR_materials_unlit": {}}
            self.gltf["extensionsUsed"] = ["KHR_materials_unlit"]
        self.gltf["materials"].append(material)
        return len(self.gltf["materials"]) - 1

    def _node(self, name: str, primitive: dict) -> None:
        self.gltf["meshes"].append({"name": name, "primitives": [primitive]})
        self.gltf["nodes"].append({"name": name, "mesh": len(self.gltf["meshes"]) - 1})
        self.gltf["scenes"][0]["nodes"].append(len(self.gltf["nodes"]) - 1)

    def add_points(self, name: str, xyz: np.ndarray, rgb: np.ndarray) -> None:
        """Points (N, 3) float with colours (N, 3) uint8."""
        rgba = np.column_stack((rgb, np.full(len(rgb), 255, np.uint8)))
        attributes = {
            "POSITION": self._accessor(xyz.astype(np.float32), FLOAT, "VEC3", ARRAY_BUFFER),
            "COLOR_0": self._accessor(rgba, UNSIGNED_BYTE, "VEC4", ARRAY_BUFFER, normalized=True),
        }
        self._node(name, {"attributes": attributes, "mode": POINTS, "material": self._material(unlit=True)})

    def add_mesh(self, name: str, vertices: np.ndarray, faces: np.ndarray, rgb: np.ndarray) -> None:
        """A triangle mesh (V, 3) / (F, 3) in one colour (3,) uint8, drawn double-sided."""
        colors = np.tile(np.append(rgb, 255).astype(np.uint8), (len(vertices), 1))
        attributes = {
            "POSITION": self._accessor(vertices.astype(np.float32), FLOAT, "VEC3", ARRAY_BUFFER),
            "COLOR_0": self._accessor(colors, UNSIGNED_BYTE, "VEC4", ARRAY_BUFFER, normalized=True),
        }
        indices = self._accessor(faces.astype(np.uint32).reshape(-1), UNSIGNED_INT, "SCALAR", ELEMENT_ARRAY_BUFFER)
        self._node(
            name,
            {"attributes": attributes, "indices": indices, "mode": TRIANGLES, "material": self._material(unlit=False)},
        )

    def to_bytes(self) -> bytes:
        binary = b"".join(self.chunks)
        self.gltf["buffers"] = [{"byteLength": len(binary)}] if binary else []
        text = json.dumps(self.gltf, separators=(",", ":")).encode("utf-8")
        text += b" " * ((-len(text)) % 4)
        body = struct.pack("<II", len(text), 0x4E4F534A) + text  # JSON chunk
        if binary:
            body += struct.pack("<II", len(binary), 0x004E4942) + binary  # BIN chunk
        return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body  # 'glTF', version 2
