"""`Client`: the Python SDK over the Model Management account API.

Every method is one HTTP call (or a walk over `nextLink`); errors come back as the
domain's exception classes (see `_errors.py`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from modelyard.client._errors import raise_for_error
from modelyard.config import DEFAULT_PORT
from modelyard.domain.errors import NotFound

API_VERSION = "2017-09-01-preview"
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
_CHUNK = 1024 * 1024

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class AccountPath:
    """Which account a client talks to: (subscriptionId, resourceGroup, accountName)."""

    subscription_id: str = "local"
    resource_group: str = "default"
    account_name: str = "default"

    @property
    def path(self) -> str:
        return (
            f"/api/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/accounts/{self.account_name}"
        )


def find_local_token(home: Path | None = None) -> str | None:
    """The admin token a local server wrote: `$MODELYARD_HOME` or `./.modelyard`."""
    base = home or Path(os.environ.get("MODELYARD_HOME", ".modelyard"))
    path = base / "admin-token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Client:
    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        account: AccountPath | None = None,
        *,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.account = account or AccountPath()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        params = {"api-version": API_VERSION, **kwargs.pop("params", {})}
        response = self._http.request(method, self.account.path + path, params=params, **kwargs)
        raise_for_error(response)
        return response

    def _walk(self, path: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        response = self._request("GET", path, params=params)
        while True:
            body = response.json()
            yield from body.get("value", [])
            next_link = body.get("nextLink")
            if not next_link:
                return
            response = self._http.get(next_link)
            raise_for_error(response)

    # -- health -----------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        response = self._http.get("/healthz")
        raise_for_error(response)
        result: dict[str, Any] = response.json()
        return result

    # -- uploads ----------------------------------------------------------------------

    def upload(self, path: Path, progress: ProgressCallback | None = None) -> dict[str, Any]:
        """Stream a local file to the server; returns `{id, url: upload://id, ...}`."""

        def chunks(handle: BinaryIO) -> Iterator[bytes]:
            while chunk := handle.read(_CHUNK):
                if progress is not None:
                    progress(len(chunk))
                yield chunk

        with path.open("rb") as handle:
            response = self._request(
                "POST",
                "/uploads",
                params={"fileName": path.name},
                content=chunks(handle),
                headers={"Content-Type": "application/octet-stream"},
            )
        result: dict[str, Any] = response.json()
        return result

    # -- models -----------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        *,
        url: str | None = None,
        path: Path | None = None,
        mime_type: str = "application/octet-stream",
        tags: list[str] | None = None,
        description: str = "",
        unpack: bool = False,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Register from a URL the server fetches, or from a local file it streams up."""
        if (url is None) == (path is None):
            raise ValueError("give exactly one of url= or path=")
        if path is not None:
            url = self.upload(path, progress)["url"]
        body = {
            "name": name,
            "url": url,
            "mimeType": mime_type,
            "tags": tags or [],
            "description": description,
            "unpack": unpack,
        }
        result: dict[str, Any] = self._request("POST", "/models", json=body).json()
        return result

    def list_models(
        self, *, name: str | None = None, tag: str | None = None, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in (("name", name), ("tag", tag)) if v}
        if page_size:
            params["count"] = str(page_size)
        return self._walk("/models", params)

    def get_model(self, model_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/models/{model_id}").json()
        return result

    def download_model(
        self, model_id: str, dest: Path, progress: ProgressCallback | None = None
    ) -> Path:
        """Stream the stored artifact to `dest` (a file, or a folder to put it in)."""
        params = {"api-version": API_VERSION}
        url = f"{self.account.path}/models/{model_id}/content"
        with self._http.stream("GET", url, params=params) as response:
            if not response.is_success:
                response.read()
                raise_for_error(response)
            if dest.is_dir():
                name = response.headers.get("content-disposition", "").rpartition("filename=")[2]
                dest = dest / (name.strip('"') or model_id)
            partial = dest.with_name(dest.name + ".part")
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes(_CHUNK):
                    handle.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
            partial.replace(dest)
        return dest

    def delete_model(self, model_id: str) -> None:
        self._request("DELETE", f"/models/{model_id}")

    # -- manifests --------------------------------------------------------------------

    def create_manifest(
        self,
        name: str,
        *,
        driver: str,
        assets: list[dict[str, Any]],
        model_ids: list[str] | None = None,
        runtime: str = "Python",
        pip_requirements: str | None = None,
        conda_env_file: str | None = None,
        description: str = "",
    ) -> dict[str, Any]:
        """`driver` is the id of the asset holding the driver program; urls as for models."""
        properties = {
            key: value
            for key, value in (
                ("pipRequirements", pip_requirements),
                ("condaEnvFile", conda_env_file),
            )
            if value
        }
        body = {
            "name": name,
            "description": description,
            "driverProgram": driver or None,
            "assets": assets,
            "modelIds": model_ids or [],
            "modelType": "Registered",
            "targetRuntime": {"runtimeType": runtime, "properties": properties},
            "webserviceType": "Realtime",
        }
        result: dict[str, Any] = self._request("POST", "/manifests", json=body).json()
        return result

    def list_manifests(
        self, *, model_id: str | None = None, name: str | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {k: v for k, v in (("modelId", model_id), ("manifestName", name)) if v}
        return self._walk("/manifests", params)

    def get_manifest(self, manifest_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/manifests/{manifest_id}").json()
        return result

    # -- images and operations --------------------------------------------------------

    def create_image(
        self, manifest_id: str, *, name: str | None = None, description: str = ""
    ) -> tuple[dict[str, Any], str]:
        """Queue a build; returns the image as first seen and the operation id."""
        body = {
            "name": name,
            "description": description,
            "imageType": "Docker",
            "manifestId": manifest_id,
        }
        response = self._request("POST", "/images", json=body)
        return response.json(), _operation_id(response)

    def list_images(
        self, *, manifest_id: str | None = None, manifest_name: str | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {
            k: v for k, v in (("manifestId", manifest_id), ("manifestName", manifest_name)) if v
        }
        return self._walk("/images", params)

    def get_image(self, image_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/images/{image_id}").json()
        return result

    def read_build_log(self, image_id: str, offset: int = 0) -> tuple[str, int, str]:
        """(text from `offset`, next offset, operation state) of an image's build log."""
        response = self._request(
            "GET", f"/images/{image_id}/buildLog", params={"offset": str(offset)}
        )
        return (
            response.text,
            int(response.headers["x-ms-log-next-offset"]),
            response.headers["x-ms-operation-state"],
        )

    def get_operation(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/operations/{operation_id}").json()
        return result

    def cancel_operation(self, operation_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", f"/operations/{operation_id}/cancel").json()
        return result

    def wait_operation(
        self,
        operation_id: str,
        *,
        timeout_s: float = 1800,
        poll_s: float = 0.5,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the operation ends; returns its final status (whatever the state)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.get_operation(operation_id)
            if on_poll is not None:
                on_poll(status)
            if status["state"] in ("Succeeded", "Failed", "Cancelled"):
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"operation {operation_id} still {status['state']}")
            time.sleep(poll_s)

    # -- realtime services -----------------------------------------------------------

    def create_service(
        self, name: str, image_id: str, **settings: Any
    ) -> tuple[dict[str, Any], str]:
        """Queue a service; `settings` are ServiceCreateRequest fields (numReplicas, ...)."""
        body = {"name": name, "imageId": image_id, **settings}
        response = self._request("POST", "/services", json=body)
        return response.json(), _operation_id(response)

    def update_service(self, service_id: str, **changes: Any) -> tuple[dict[str, Any], str]:
        response = self._request("PUT", f"/services/{service_id}", json=changes)
        return response.json(), _operation_id(response)

    def list_services(self, **filters: str) -> Iterator[dict[str, Any]]:
        return self._walk("/services", {k: v for k, v in filters.items() if v})

    def get_service(self, service_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/services/{service_id}").json()
        return result

    def find_service(self, name: str) -> dict[str, Any]:
        """A service by name (names are unique in an account)."""
        for service in self.list_services(serviceName=name):
            return service
        raise NotFound(f"no service named '{name}'", code="ServiceNotFound")

    def delete_service(self, service_id: str) -> bool:
        """True when it existed (200), False when it was already gone (204)."""
        return self._request("DELETE", f"/services/{service_id}").status_code == 200

    def get_service_keys(self, service_id: str) -> dict[str, str]:
        result: dict[str, str] = self._request("GET", f"/services/{service_id}/keys").json()
        return result

    def regenerate_service_key(self, service_id: str, key_type: str = "Primary") -> dict[str, str]:
        result: dict[str, str] = self._request(
            "POST", f"/services/{service_id}/regenerateKeys", json={"keyType": key_type}
        ).json()
        return result

    def service_logs(self, service_id: str, tail: int = 200) -> str:
        return self._request("GET", f"/services/{service_id}/logs", params={"tail": str(tail)}).text

    def collected_data(self, service_id: str, hour: str | None = None) -> list[dict[str, Any]]:
        params = {"hour": hour} if hour else {}
        text = self._request("GET", f"/services/{service_id}/collectedData", params=params).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def list_deployments(self, service_id: str | None = None) -> Iterator[dict[str, Any]]:
        return self._walk("/deployments", {"serviceId": service_id} if service_id else {})

    def score(self, scoring_uri: str, key: str, data: Any, *, timeout: float = 60) -> Any:
        """POST `data` as JSON to a scoring URI with the service key."""
        response = httpx.post(
            scoring_uri, json=data, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )
        raise_for_error(response)
        return response.json()

    # -- tokens (Owner) ---------------------------------------------------------------

    def create_token(
        self, name: str, role: str = "Contributor", scopes: list[str] | None = None
    ) -> dict[str, Any]:
        response = self._http.post(
            "/admin/tokens", json={"name": name, "role": role, "scopes": scopes}
        )
        raise_for_error(response)
        result: dict[str, Any] = response.json()
        return result

    def list_tokens(self) -> list[dict[str, Any]]:
        response = self._http.get("/admin/tokens")
        raise_for_error(response)
        result: list[dict[str, Any]] = response.json()["value"]
        return result

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        response = self._http.delete(f"/admin/tokens/{token_id}")
        raise_for_error(response)
        result: dict[str, Any] = response.json()
        return result


def _operation_id(response: httpx.Response) -> str:
    return response.headers["Operation-Location"].rstrip("/").split("/")[-1]
