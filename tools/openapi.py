"""Write the ops API's OpenAPI 3.1 document, generated from the handler's routes and models.

Usage: ``python -m tools.openapi`` (rewrites ``docs/openapi.json``); ``--check`` exits 1 when the
committed file differs from what the code generates. A test runs the check.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "functions" / "ops_api" / "app.py"
DOCUMENT = ROOT / "docs" / "openapi.json"


def generate() -> str:
    if str(ROOT / "layers" / "core") not in sys.path:
        sys.path.insert(0, str(ROOT / "layers" / "core"))
    spec = importlib.util.spec_from_file_location("ops_api_app", HANDLER)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {HANDLER}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Title, description, servers and the bearer scheme come from the handler's document_api.
    module.document_api()
    text = module.app.get_openapi_json_schema()
    document: dict[str, Any] = json.loads(text)
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    generated = generate()
    if "--check" in argv:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != generated:
            print(f"{DOCUMENT.relative_to(ROOT)} is stale: run `make openapi` and commit it", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(generated)
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
