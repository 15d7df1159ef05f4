"""The OpenAPI document of the HTTP API, generated from the handlers' routes and contract models.

The predict, feedback and admin functions sit behind one HTTP API, so their documents are merged.
The predict function serves this document at ``GET /openapi.json`` with the champion's features
filled in.
``python -m mlops.handlers.openapi`` rewrites the committed copy (``make openapi``);
a test fails when the committed copy and the code disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# Generated data, kept out of the package source: functions/ is the code asset's root
# (/var/task on Lambda), so the document ships with every function that serves it.
DOCUMENT = Path(__file__).resolve().parents[2] / "openapi.json"
TITLE = "serverless-mlops"
API_VERSION = "1"
DESCRIPTION = (
    "Predictions from the champion model, feedback on them, and the registry's audit trail and "
    "changes (IAM-authorised HTTP API). Request bodies are JSON objects without duplicate keys."
)


def openapi_document() -> dict[str, Any]:
    # Imported here: the handlers' modules are only needed when a document is made.
    from mlops.handlers import admin, feedback, predict

    merged: dict[str, Any] = {}
    for app in (predict.documented_app(), feedback.app.documented(), admin.app.documented()):
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
        for path, operations in doc.get("paths", {}).items():
            merged["paths"].setdefault(path, {}).update(operations)
        merged.setdefault("components", {}).setdefault("schemas", {}).update(
            doc.get("components", {}).get("schemas", {})
        )
    _drop_unreferenced_schemas(merged)
    return merged


def _drop_unreferenced_schemas(document: dict[str, Any]) -> None:
    """Powertools adds schemas for its own request validation, which these functions do not use."""
    schemas = document.get("components", {}).get("schemas", {})
    while True:
        text = json.dumps({k: v for k, v in document.items() if k != "components"}) + json.dumps(schemas)
        unused = [name for name in schemas if f'"#/components/schemas/{name}"' not in text]
        if not unused:
            return
        for name in unused:
            del schemas[name]


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    DOCUMENT.write_text(render(), encoding="utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
