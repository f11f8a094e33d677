from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import AUTH, ReadyTestClient, make_settings


def test_livez_and_readyz(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ok = {"status": "ok", "checks": {"database": "ok", "data": "ok", "writes": "ok"}}
    for path in ("/readyz", "/health"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == ok


def test_not_ready_without_database(tmp_path: Path) -> None:
    # Without entering the client, the lifespan never runs: the database is not open.
    app = create_app(make_settings(tmp_path / "app.db"))
    c = ReadyTestClient(app, headers=AUTH)
    assert c.get("/livez").status_code == 200
    response = c.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "fail",
        "checks": {"database": "opening the database file"},
    }
    api = c.get("/api/v1/airlines")
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert not (tmp_path / "app.db").exists()


def test_500_is_problem_json_without_internals(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "app.db"))

    def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    with ReadyTestClient(app, raise_server_exceptions=False, headers=AUTH) as c:
        response = c.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Internal Server Error" and body["instance"] == "/boom"
    assert "secret" not in response.text and "Traceback" not in response.text


def test_openapi_docs(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/api/v1/flights" in client.get("/openapi.json").json()["paths"]


def test_empty_database_without_demo_data(tmp_path: Path) -> None:
    with ReadyTestClient(create_app(make_settings(tmp_path / "app.db")), headers=AUTH) as c:
        assert c.get("/readyz").status_code == 200
        empty = {"items": [], "total": 0, "next_cursor": None, "prev_cursor": None}
        assert c.get("/api/v1/flights").json() == empty
        assert c.get("/api/v1/stats/carriers").json() == {"items": []}


def test_operation_name_skips_leading_comments() -> None:
    from api.observability.database import operation_name

    assert (
        operation_name("-- create the tables\n-- second line\ncreate table x (a int)") == "CREATE"
    )
    assert operation_name("  select 1") == "SELECT"
    assert operation_name("-- only a comment") == ""
