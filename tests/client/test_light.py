"""``import aisp.client`` stays light, and the client needs only the base dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "cv2", "mediapipe", "onnxruntime", "fastapi", "aisp.api", "sqlalchemy", "starlette",
         "uvicorn", "websockets", "aisp.runtime", "aisp.pipeline", "aisp.store")


def _loaded(body: str, names: tuple[str, ...] = HEAVY) -> list[str]:
    probe = f"sorted(m for m in {names!r} if sys.modules.get(m) is not None)"
    code = f"import json, sys\n{body}\nprint(json.dumps({probe}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_is_light() -> None:
    assert _loaded("import aisp.client") == []
    assert _loaded("from aisp.client import Client, AsyncClient\nClient('http://127.0.0.1:1').close()") == []


def test_json_results_need_numpy_but_no_vision_or_server_library() -> None:
    body = (
        "from aisp.client._types import FrameResult\n"
        "FrameResult.from_dict({'models': {'m': {'model': 'm', 'inference_ms': 1, 'detections': []}}})\n"
    )
    assert _loaded(body) == ["numpy"]


@pytest.mark.parametrize("module", ["cv2", "mediapipe", "onnxruntime", "av", "fastapi", "sqlalchemy"])
def test_result_types_import_without_heavy_backends(module: str) -> None:
    """``aisp.models.results`` (what the client returns) imports with a backend made unimportable."""
    body = (
        f"sys.modules[{module!r}] = None\n"
        "from aisp.models.results import Detections, ModelResult\n"
        "from aisp.client._types import CacheReport, FrameResult\n"
    )
    assert _loaded(body, (module,)) == []


def test_the_client_uses_base_dependencies_only() -> None:
    """Every third-party library the client package imports is a base dependency (no extra)."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    base = {re.split(r"[<>=\[ ]", d.strip().strip('",'))[0].lower() for d in block.splitlines() if d.strip()}
    dist = {"cv2": "opencv-contrib-python", "PIL": None}  # PIL: only for an image the caller passes
    used = set()
    for path in (root / "src" / "aisp" / "client").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                used.add(node.module.split(".")[0])
    third = {m for m in used if m not in sys.stdlib_module_names and m != "aisp"}
    needed = {dist.get(m, m) for m in third} - {None}
    assert third >= {"httpx", "websockets", "anyio"}
    assert needed <= base, f"not base dependencies: {sorted(needed - base)}"


def test_public_names_resolve() -> None:
    import aisp.client

    for name in aisp.client.__all__:
        assert getattr(aisp.client, name) is not None, name
    assert set(aisp.client.__all__) <= set(dir(aisp.client))
    with pytest.raises(AttributeError):
        aisp.client.NoSuchThing  # noqa: B018
