"""Thin HTTP clients for what an operator uses: the authority's API and a connector's management API.

WHY only HTTP: the demo must show the data space as an operator sees it, so it never imports a connector's
internals. Every non-success answer becomes an :class:`ApiError` that keeps the problem+json ``code`` and
``detail``, because the story prints the engine's explanation from them.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connector.demo.errors import DemoError
from connector.demo.space import PYTHON_CLI, REPO_ROOT, AuthorityEndpoint, Company

EDC_CONTEXT = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/", "odrl": "http://www.w3.org/ns/odrl/2/"}
DSP_PROTOCOL = "dataspace-protocol-http:2025-1"


class ApiError(DemoError):
    """An API answered with an error; ``status``/``problem`` keep what it said."""

    code = "demo_api_error"

    def __init__(self, method: str, url: str, status: int, problem: Any) -> None:
        self.http_status = status
        self.problem = problem if isinstance(problem, dict) else {"detail": str(problem)[:500]}
        detail = self.problem.get("detail") or self.problem.get("title") or ""
        super().__init__(f"{method} {url} answered {status}: {detail}".strip())

    @property
    def problem_code(self) -> str:
        return str(self.problem.get("code") or self.problem.get("type") or "")

    @property
    def missing(self) -> bool:
        """True when the endpoint itself does not exist in this build (the framework's bare 404/405)."""
        return self.http_status in (404, 405) and self.problem.get("detail") in ("Not Found", "Method Not Allowed")


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


class _Http:
    def __init__(self, base_url: str, headers: Mapping[str, str], timeout: float = 20.0, *,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, headers=dict(headers), timeout=timeout, verify=verify)

    def call(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None,
             headers: Mapping[str, str] | None = None, content: str | bytes | None = None) -> Any:
        try:
            response = self.client.request(method, path, json=body if content is None else None, content=content,
                                           params=params, headers=dict(headers or {}))
        except httpx.HTTPError as exc:
            raise DemoError(f"{method} {self.base_url}{path} failed: {exc}") from exc
        if not response.is_success:
            raise ApiError(method, self.base_url + path, response.status_code, _decode(response))
        return _decode(response)

    def close(self) -> None:
        self.client.close()


class AuthorityClient(_Http):
    """The authority's public and admin API (``X-Admin-Key``)."""

    def __init__(self, endpoint: AuthorityEndpoint, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(endpoint.url, {"X-Admin-Key": endpoint.admin_key}, verify=verify)
        self.endpoint = endpoint

    def did_document(self) -> dict[str, Any]:
        return dict(self.call("GET", "/.well-known/did.json"))

    def register(self, company: Company, credentials: list[str]) -> dict[str, Any]:
        return dict(self.call("POST", "/admin/participants", body={
            "did": company.did, "name": company.name, "bpn": company.bpn, "jurisdiction": company.jurisdiction,
            "credentials": credentials}))

    def directory(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/directory"))

    def trust_list(self) -> dict[str, list[str]]:
        return dict(self.call("GET", "/trust-list"))

    def issued(self, holder: str) -> list[dict[str, Any]]:
        return list(self.call("GET", "/admin/credentials", params={"holder": holder}))

    def revoke(self, credential_id: str) -> dict[str, Any]:
        return dict(self.call("POST", "/admin/revoke", body={"credentialId": credential_id}))


class ManagementClient(_Http):
    """A connector's EDC-shaped management API (``/management/v3``, ``X-Api-Key``)."""

    def __init__(self, company: Company, *, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(company.management_url + "/management", {"X-Api-Key": company.api_key}, verify=verify)
        self.company = company

    def v3(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call(method, "/v3" + path, body=body, **kw)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise DemoError(f"expected JSON from the pactum CLI, got: {self.stdout[:200]!r}") from exc


class RunningCli:
    """A ``pactum`` CLI process started by :func:`start_cli`; :meth:`result` waits for it."""

    def __init__(self, args: list[str], popen: subprocess.Popen[str], timeout: float) -> None:
        self.args = args
        self.popen = popen
        self.timeout = timeout

    def result(self) -> CliResult:
        try:
            stdout, stderr = self.popen.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            self.popen.kill()
            self.popen.communicate()
            raise DemoError(f"pactum {' '.join(self.args[:2])} did not finish in {self.timeout:.0f} s") from exc
        return CliResult(self.popen.returncode, stdout, stderr)


def start_cli(args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> RunningCli:
    """Start the ``pactum`` CLI as an operator would (a separate process) without waiting for it."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    try:
        popen = subprocess.Popen([*PYTHON_CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=full_env, cwd=Path.cwd())
    except OSError as exc:
        raise DemoError(f"cannot run the pactum CLI: {exc.strerror or exc}") from exc
    return RunningCli(args, popen, timeout)


def pactum_cli(args: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> CliResult:
    """Run the ``pactum`` CLI and wait for its output."""
    return start_cli(args, env=env, timeout=timeout).result()
