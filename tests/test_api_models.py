"""The frontend's models of the backend's answers match the backend's OpenAPI schemas.

The frontend is deployed on its own and never imports backend code, so it has its own
pydantic models of the answers (frontend/web/backend_client.py: API_MODELS). The backend's
document (`/openapi.json` of the running backend, generated from backend/api/schemas.py) is
the authority: every frontend model must have a schema of the same name there, with the same
fields, the same required set and the same types (nullability and formats included). A field
added, dropped, renamed or retyped on either side fails here.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest
from conftest import FRONTEND_DIR, Stack

pytestmark = pytest.mark.timeout(60)

# Words for people, not shapes: left out of the comparison.
PROSE = {"title", "description", "examples"}

DUMP_FRONTEND_SCHEMAS = """
import json
from web.backend_client import API_MODELS
print(json.dumps({
    model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}")
    for model in API_MODELS
}))
"""


def shape(schema: Any) -> Any:
    """`schema` without prose, `$defs` and ref prefixes: what a validator would check."""
    if isinstance(schema, dict):
        return {
            key: (value.rsplit("/", 1)[-1] if key == "$ref" else shape(value))
            for key, value in schema.items()
            if key not in PROSE and key != "$defs"
        }
    if isinstance(schema, list):
        return [shape(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def backend_schemas(stack: Stack) -> dict[str, Any]:
    response = httpx.get(f"{stack.backend.url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text[:300]
    return response.json()["components"]["schemas"]


@pytest.fixture(scope="module")
def frontend_schemas() -> dict[str, Any]:
    result = subprocess.run(
        [str(FRONTEND_DIR / ".venv/bin/python"), "-c", DUMP_FRONTEND_SCHEMAS],
        cwd=FRONTEND_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


def test_every_frontend_model_has_a_backend_schema(
    backend_schemas: dict[str, Any], frontend_schemas: dict[str, Any]
) -> None:
    assert {"Flight", "FlightPage", "CarrierStats", "Airport"} <= set(frontend_schemas)
    missing = sorted(set(frontend_schemas) - set(backend_schemas))
    assert not missing, f"frontend models without a backend schema: {missing}"


def test_each_frontend_model_matches_its_backend_schema(
    backend_schemas: dict[str, Any], frontend_schemas: dict[str, Any]
) -> None:
    differences = {}
    for name, schema in frontend_schemas.items():
        ours, theirs = shape(schema), shape(backend_schemas.get(name, {}))
        for part in ("type", "required"):
            if ours.get(part) != theirs.get(part):
                differences[f"{name} {part}"] = [ours.get(part), theirs.get(part)]
        fields, their_fields = ours.get("properties", {}), theirs.get("properties", {})
        for field in sorted(set(fields) | set(their_fields)):
            if fields.get(field) != their_fields.get(field):
                differences[f"{name}.{field}"] = [fields.get(field), their_fields.get(field)]
    assert not differences, "[frontend, backend]:\n" + json.dumps(differences, indent=1)


def test_the_comparison_sees_a_drifted_field(backend_schemas: dict[str, Any]) -> None:
    """Guards the comparison: the drift the hand-written types had (CarrierStats.name as a
    plain string) is a difference."""
    drifted = json.loads(json.dumps(backend_schemas["CarrierStats"]))
    drifted["properties"]["name"] = {"type": "string", "title": "Name"}
    assert shape(drifted) != shape(backend_schemas["CarrierStats"])
