"""The OpenAPI document of the HTTP API, generated from the handlers' routes and contract models.

The predict and feedback functions sit behind one HTTP API, so their documents are merged.
``python -m mlops.handlers.openapi`` rewrites the committed copy (``make openapi``);
a test fails when the committed copy and the code disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("openapi.json")
TITLE = "serverless-mlops"
API_VERSION = "1"
DESCRIPTION = "Predictions from the champion model and feedback on them (IAM-authorised HTTP API)"


def openapi_document() -> dict[str, Any]:
    # Imported here: the handlers' modules are only needed when a document is made.
    from mlops.handlers import feedback, predict

    merged: dict[str, Any] = {}
    for app in (predict.app, feedback.app):
        doc = json.loads(
            app.get_openapi_json_schema(
                title=TITLE,
                version=API_VERSION,
                description=DESCRIPTION,
            )
        )
        if not merged:
            merged = doc
            continue
        merged["paths"].update(doc.get("paths", {}))
        merged.setdefault("components", {}).setdefault("schemas", {}).update(
            doc.get("components", {}).get("schemas", {})
        )
    return merged


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOCUMENT.write_text(render(), encoding="utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
