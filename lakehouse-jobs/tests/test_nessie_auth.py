"""The lakehouse jobs' Nessie credentials (NESSIE_AUTH_*): parsed strictly, handed to the Spark catalog,
and sent on every REST call of NessieClient (checked against a real HTTP server on loopback)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from simgate.lakehouse.nessie import NessieClient
from simgate.lakehouse.nessie_auth import NessieAuth, NessieAuthError


def test_no_settings_means_no_authentication() -> None:
    auth = NessieAuth.from_env({})
    assert auth.type == "NONE"
    assert auth.catalog_properties("c") == {"c.authentication.type": "NONE"}
    assert auth.requests_auth() is None


@pytest.mark.parametrize(
    "env, message",
    [
        ({"NESSIE_AUTH_TYPE": "KERBEROS"}, "expected one of NONE, BEARER, OAUTH2"),
        ({"NESSIE_AUTH_TYPE": "BEARER"}, "needs NESSIE_AUTH_TOKEN"),
        (
            {"NESSIE_AUTH_TYPE": "oauth2", "NESSIE_OAUTH2_CLIENT_ID": "spark"},
            "needs NESSIE_OAUTH2_TOKEN_URL, NESSIE_OAUTH2_CLIENT_SECRET",
        ),
    ],
)
def test_incomplete_or_unknown_settings_are_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(NessieAuthError, match=message):
        NessieAuth.from_env(env)


def test_the_spark_catalog_gets_the_nessie_client_properties() -> None:
    bearer = NessieAuth.from_env({"NESSIE_AUTH_TYPE": "BEARER", "NESSIE_AUTH_TOKEN": "t0k"})
    assert bearer.catalog_properties("spark.sql.catalog.nessie") == {
        "spark.sql.catalog.nessie.authentication.type": "BEARER",
        "spark.sql.catalog.nessie.authentication.token": "t0k",
    }
    oauth = NessieAuth.from_env(
        {
            "NESSIE_AUTH_TYPE": "OAUTH2",
            "NESSIE_OAUTH2_TOKEN_URL": "https://idp/token",
            "NESSIE_OAUTH2_CLIENT_ID": "spark",
            "NESSIE_OAUTH2_CLIENT_SECRET": "s3cret",
        }
    ).catalog_properties("c")
    assert oauth["c.authentication.type"] == "OAUTH2"
    assert oauth["c.authentication.oauth2.token-endpoint"] == "https://idp/token"
    assert oauth["c.authentication.oauth2.grant-type"] == "client_credentials"
    assert (oauth["c.authentication.oauth2.client-id"], oauth["c.authentication.oauth2.client-secret"]) == ("spark", "s3cret")


class _Server:
    """A loopback server that answers Nessie's GET /trees/<ref> and an OAuth2 token endpoint, and keeps the
    Authorization header of every request."""

    def __init__(self) -> None:
        seen: list[tuple[str, str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                seen.append(("GET", self.path, self.headers.get("Authorization", "")))
                if self.headers.get("Authorization", "") in ("", "Bearer wrong"):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._json({"reference": {"name": "main", "type": "BRANCH", "hash": "abc"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                seen.append(("POST", self.path, self.headers.get("Authorization", "") + "|" + body))
                self._json({"access_token": "issued-1", "token_type": "bearer", "expires_in": 3600})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def test_rest_calls_carry_the_bearer_token(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NESSIE_AUTH_TYPE", "BEARER")
    monkeypatch.setenv("NESSIE_AUTH_TOKEN", "t0k")
    assert NessieClient(f"{server.url}/api/v2").hash_of("main") == "abc"
    assert server.seen == [("GET", "/api/v2/trees/main", "Bearer t0k")]


def test_without_credentials_a_protected_nessie_refuses(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NESSIE_AUTH_TYPE", raising=False)
    with pytest.raises(Exception, match="401"):
        NessieClient(f"{server.url}/api/v2").hash_of("main")


def test_oauth2_client_credentials_fetch_one_token_and_reuse_it(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NESSIE_AUTH_TYPE", "OAUTH2")
    monkeypatch.setenv("NESSIE_OAUTH2_TOKEN_URL", f"{server.url}/realms/simgate/token")
    monkeypatch.setenv("NESSIE_OAUTH2_CLIENT_ID", "spark")
    monkeypatch.setenv("NESSIE_OAUTH2_CLIENT_SECRET", "s3cret")
    client = NessieClient(f"{server.url}/api/v2")
    client.hash_of("main")
    client.hash_of("main")
    posts = [s for s in server.seen if s[0] == "POST"]
    gets = [s for s in server.seen if s[0] == "GET"]
    assert len(posts) == 1
    basic = "Basic " + base64.b64encode(b"spark:s3cret").decode()
    assert posts[0][1] == "/realms/simgate/token" and posts[0][2] == f"{basic}|grant_type=client_credentials"
    assert [g[2] for g in gets] == ["Bearer issued-1", "Bearer issued-1"]
