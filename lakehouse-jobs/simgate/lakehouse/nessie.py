"""A small client of Nessie's REST API v2 for what the WAP job does around Spark: read a reference's
hash, create and delete branches, merge a branch into main guarded by an expected hash, tag, read the log.

Nessie's expected-hash guard for a merge is per content key: the merge is refused (409) when a table the
branch changed was also changed on main after the expected hash; unrelated commits on main (another
topic's run) do not block it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import requests

from .nessie_auth import NessieAuth


class NessieError(RuntimeError):
    pass


class NessieConflict(NessieError):
    """The merge or reference change was refused because the target moved in a conflicting way."""


@dataclass(frozen=True)
class Reference:
    name: str
    type: str
    hash: str


class NessieClient:
    def __init__(self, uri: str, timeout: float = 30.0, session: requests.Session | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.timeout = timeout
        if session is None:
            # The job's Nessie credentials (NESSIE_AUTH_*; none on the local stack) go on every call.
            session = requests.Session()
            session.auth = NessieAuth.from_env().requests_auth(timeout)
        self.http = session

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"{self.uri}{path}", timeout=self.timeout, **kwargs)
        if response.status_code == 409:
            raise NessieConflict(f"{method} {path}: {response.status_code} {response.text[:500]}")
        if response.status_code >= 400:
            raise NessieError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def reference(self, name: str) -> Reference | None:
        response = self.http.get(f"{self.uri}/trees/{name}", timeout=self.timeout)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise NessieError(f"GET /trees/{name}: {response.status_code} {response.text[:500]}")
        ref = response.json()["reference"]
        return Reference(ref["name"], ref["type"], ref["hash"])

    def hash_of(self, name: str) -> str:
        ref = self.reference(name)
        if ref is None:
            raise NessieError(f"reference {name} does not exist")
        return ref.hash

    def _create(self, name: str, ref_type: str, source: str, source_hash: str) -> Reference:
        body = self._call(
            "POST",
            "/trees",
            params={"name": name, "type": ref_type},
            json={"type": "BRANCH", "name": source, "hash": source_hash},
        )
        ref = body["reference"]
        return Reference(ref["name"], ref["type"], ref["hash"])

    def create_branch(self, name: str, from_hash: str, source: str = "main") -> Reference:
        return self._create(name, "BRANCH", source, from_hash)

    def create_tag(self, name: str, at_hash: str, source: str = "main") -> Reference:
        return self._create(name, "TAG", source, at_hash)

    def delete_reference(self, name: str) -> bool:
        ref = self.reference(name)
        if ref is None:
            return False
        self._call("DELETE", f"/trees/{name}@{ref.hash}")
        return True

    def merge(self, branch: str, into: str, expected_hash: str, message: str, properties: dict[str, str] | None = None) -> str:
        """Merges `branch` (at its current hash) into `into`, guarded by `expected_hash`; returns the new
        hash of `into`. `properties` go into the merge commit's metadata (found again with `find_commit`).
        Raises NessieConflict when a key changed on both sides."""
        source = self.hash_of(branch)
        meta: dict[str, Any] = {"message": message}
        if properties:
            meta["properties"] = dict(properties)
        body = self._call(
            "POST",
            f"/trees/{into}@{expected_hash}/history/merge",
            json={"fromRefName": branch, "fromHash": source, "message": message, "commitMeta": meta},
        )
        if not body.get("wasSuccessful", False):
            raise NessieConflict(f"merge of {branch} into {into} was not applied: {body}")
        return body["resultantTargetHash"]

    def log(self, ref: str, max_records: int = 100) -> list[dict[str, Any]]:
        body = self._call("GET", f"/trees/{ref}/history", params={"maxRecords": max_records})
        return [entry["commitMeta"] for entry in body.get("logEntries", [])]

    def find_commit(self, ref: str, cel_filter: str, page_size: int = 100) -> dict[str, Any] | None:
        """The newest commit of `ref`'s history matching a CEL filter (Nessie evaluates it over the whole
        history, page by page: `commit.properties['k'] == 'v'`, `commit.message.startsWith('...')`);
        its commit metadata (with `hash`), or None."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"maxRecords": page_size, "filter": cel_filter}
            if token:
                params["pageToken"] = token
            body = self._call("GET", f"/trees/{ref}/history", params=params)
            for entry in body.get("logEntries", []):
                return entry["commitMeta"]
            token = body.get("token")
            if not body.get("hasMore") or not token:
                return None

    def references(self) -> Iterator[Reference]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"maxRecords": 500}
            if token:
                params["pageToken"] = token
            body = self._call("GET", "/trees", params=params)
            for ref in body.get("references", []):
                yield Reference(ref["name"], ref["type"], ref.get("hash", ""))
            token = body.get("token")
            if not body.get("hasMore") or not token:
                return

    def content_keys(self, ref: str) -> set[str]:
        """Every content key on `ref` (tables and namespaces) as `namespace.table` text."""
        keys: set[str] = set()
        token: str | None = None
        while True:
            params: dict[str, Any] = {"maxRecords": 1000}
            if token:
                params["pageToken"] = token
            body = self._call("GET", f"/trees/{ref}/entries", params=params)
            for entry in body.get("entries", []):
                keys.add(".".join(entry["name"]["elements"]))
            token = body.get("token")
            if not body.get("hasMore") or not token:
                return keys

    def content_exists(self, ref: str, key: str) -> bool:
        response = self.http.get(f"{self.uri}/trees/{ref}/contents/{key}", timeout=self.timeout)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise NessieError(f"GET /trees/{ref}/contents/{key}: {response.status_code} {response.text[:500]}")
        return True

    def delete_contents(self, keys: list[str], message: str, ref: str = "main") -> list[str]:
        """Deletes the tables `keys` (`namespace.table`) from `ref` in one commit (the catalog entry only:
        their files are Nessie GC's); returns the keys that existed."""
        present = [k for k in keys if self.content_exists(ref, k)]
        if present:
            self._call(
                "POST",
                f"/trees/{ref}@{self.hash_of(ref)}/history/commit",
                json={
                    "commitMeta": {"message": message},
                    "operations": [{"type": "DELETE", "key": {"elements": k.split(".")}} for k in present],
                },
            )
        return present
