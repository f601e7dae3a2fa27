"""How the lakehouse jobs authenticate to Nessie, from the environment the cluster gives them (Secret
simgate-nessie-client): NESSIE_AUTH_TYPE is NONE (the local stack, the default), BEARER (a fixed token in
NESSIE_AUTH_TOKEN) or OAUTH2 (client credentials: NESSIE_OAUTH2_TOKEN_URL, NESSIE_OAUTH2_CLIENT_ID,
NESSIE_OAUTH2_CLIENT_SECRET). One value serves both sides: the Spark catalog's Nessie client (catalog
properties) and this package's REST calls (an Authorization header)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Mapping

import requests

AUTH_TYPES = ("NONE", "BEARER", "OAUTH2")


class NessieAuthError(ValueError):
    """The NESSIE_AUTH_* settings are incomplete or name an unknown type."""


@dataclass(frozen=True)
class NessieAuth:
    type: str = "NONE"
    token: str = ""
    token_url: str = ""
    client_id: str = ""
    client_secret: str = ""

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> "NessieAuth":
        e = os.environ if env is None else env
        kind = (e.get("NESSIE_AUTH_TYPE") or "NONE").strip().upper()
        if kind not in AUTH_TYPES:
            raise NessieAuthError(f"NESSIE_AUTH_TYPE={kind!r}: expected one of {', '.join(AUTH_TYPES)}")
        auth = NessieAuth(
            kind,
            e.get("NESSIE_AUTH_TOKEN", ""),
            e.get("NESSIE_OAUTH2_TOKEN_URL", ""),
            e.get("NESSIE_OAUTH2_CLIENT_ID", ""),
            e.get("NESSIE_OAUTH2_CLIENT_SECRET", ""),
        )
        missing = {
            "NONE": [],
            "BEARER": [("NESSIE_AUTH_TOKEN", auth.token)],
            "OAUTH2": [
                ("NESSIE_OAUTH2_TOKEN_URL", auth.token_url),
                ("NESSIE_OAUTH2_CLIENT_ID", auth.client_id),
                ("NESSIE_OAUTH2_CLIENT_SECRET", auth.client_secret),
            ],
        }[kind]
        empty = [name for name, value in missing if not value]
        if empty:
            raise NessieAuthError(f"NESSIE_AUTH_TYPE={kind} needs {', '.join(empty)}")
        return auth

    def catalog_properties(self, prefix: str) -> dict[str, str]:
        """Properties of Iceberg's Nessie catalog (it hands `authentication.*` to the Nessie client)."""
        props = {f"{prefix}.authentication.type": self.type}
        if self.type == "BEARER":
            props[f"{prefix}.authentication.token"] = self.token
        elif self.type == "OAUTH2":
            props.update(
                {
                    f"{prefix}.authentication.oauth2.token-endpoint": self.token_url,
                    f"{prefix}.authentication.oauth2.grant-type": "client_credentials",
                    f"{prefix}.authentication.oauth2.client-id": self.client_id,
                    f"{prefix}.authentication.oauth2.client-secret": self.client_secret,
                }
            )
        return props

    def requests_auth(self, timeout: float = 30.0) -> requests.auth.AuthBase | None:
        if self.type == "BEARER":
            return _Bearer(lambda: self.token)
        if self.type == "OAUTH2":
            return _Bearer(_ClientCredentials(self, timeout).token)
        return None


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token) -> None:  # token: () -> str
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        return request


class _ClientCredentials:
    """An OAuth2 client-credentials token, fetched on first use and again shortly before it expires."""

    def __init__(self, auth: NessieAuth, timeout: float) -> None:
        self._auth = auth
        self._timeout = timeout
        self._lock = threading.Lock()
        self._value = ""
        self._expires = 0.0

    def token(self) -> str:
        with self._lock:
            if self._value and time.monotonic() < self._expires:
                return self._value
            response = requests.post(
                self._auth.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self._auth.client_id, self._auth.client_secret),
                timeout=self._timeout,
            )
            if response.status_code >= 400:
                raise NessieAuthError(
                    f"OAuth2 token request to {self._auth.token_url}: {response.status_code} {response.text[:200]}"
                )
            body = response.json()
            self._value = str(body["access_token"])
            lifetime = float(body.get("expires_in", 300))
            self._expires = time.monotonic() + max(0.0, lifetime - 30.0)
            return self._value
