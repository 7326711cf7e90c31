"""The model registry through both MMS route families, in-process on a real database."""

from __future__ import annotations

import hashlib
import io
import tarfile
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from modelyard.store.database import Database
from modelyard.store.tables import ManifestModelRow, ManifestRow, ModelRow, utcnow
from tests.integration.conftest import Api, FileServer

ACCOUNTS = "/api/subscriptions/sub1/resourceGroups/Group1/accounts/acct1"
HOSTING = "/api/subscriptions/sub1/resourceGroups/group1/hostingAccounts/acct1"
V_ACCOUNTS = {"api-version": "2017-09-01-preview"}
V_HOSTING = {"api-version": "2017-06-01-privatepreview"}


def write(api: Api, name: str, data: bytes) -> str:
    path = api.files / name
    path.write_bytes(data)
    return path.as_uri()


def register(api: Api, url: str, name: str = "churn", **extra: Any) -> Any:
    body = {"name": name, "url": url, "mimeType": "application/octet-stream", **extra}
    return api.http.post(f"{ACCOUNTS}/models", params=V_ACCOUNTS, json=body)


def model_rows(api: Api) -> int:
    db = Database(api.settings.effective_database_url)
    try:
        with db.session(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(ModelRow)) or 0)
    finally:
        db.dispose()


# -- registering ------------------------------------------------------------------------


def test_registering_stores_the_artifact_and_answers_200(api: Api) -> None:
    data = b"pickled model bytes"
    response = register(api, write(api, "m.pkl", data), tags=["prod"], description="first")
    assert response.status_code == 200
    model = response.json()
    assert model["name"] == "churn"
    assert model["version"] == 1
    assert model["tags"] == ["prod"]
    assert model["description"] == "first"
    assert model["mimeType"] == "application/octet-stream"
    assert model["unpack"] is False
    assert model["sha256"] == hashlib.sha256(data).hexdigest()
    assert model["size"] == len(data)
    uuid.UUID(model["id"])
    assert model["createdAt"].endswith("Z")


def test_the_2017_routes_answer_201_in_the_same_namespace(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    body = {"name": "churn", "url": url, "mimeType": "application/octet-stream", "unpack": "false"}
    created = api.http.post(f"{HOSTING}/models", params=V_HOSTING, json=body)
    assert created.status_code == 201
    again = register(api, url)
    assert again.json()["version"] == 2
    shown = api.http.get(f"{ACCOUNTS}/models/{created.json()['id']}", params=V_ACCOUNTS)
    assert shown.status_code == 200


def test_versions_count_up_per_name(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    versions = [register(api, url, name=n).json()["version"] for n in ["a", "a", "b", "a"]]
    assert versions == [1, 2, 1, 3]


def test_registering_from_http(api: Api, file_server: FileServer) -> None:
    (file_server.root / "remote.onnx").write_bytes(b"onnx!")
    response = register(api, f"{file_server.url}/remote.onnx")
    assert response.status_code == 200
    assert response.json()["size"] == 5


def test_an_uploaded_file_can_be_registered_and_downloaded(api: Api) -> None:
    data = bytes(range(256)) * 1000
    uploaded = api.http.post(
        f"{ACCOUNTS}/uploads",
        params={**V_ACCOUNTS, "fileName": "model.bin"},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201
    model = register(api, uploaded.json()["url"]).json()
    content = api.http.get(f"{ACCOUNTS}/models/{model['id']}/content", params=V_ACCOUNTS)
    assert content.status_code == 200
    assert content.content == data
    assert model["contentUri"].startswith("http://testserver/")


def test_an_archive_is_unpacked_when_asked(api: Api) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model/weights.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"12345"))
    response = register(api, write(api, "m.tar.gz", buffer.getvalue()), unpack=True)
    assert response.status_code == 200
    trees = list((api.settings.blob_root / "trees").rglob("weights.txt"))
    assert len(trees) == 1
    assert trees[0].read_bytes() == b"12345"


# -- reading ----------------------------------------------------------------------------


def test_lists_page_with_an_absolute_next_link_that_keeps_the_query(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    ids = [register(api, url, tags=["t1"]).json()["id"] for _ in range(5)]
    seen: list[str] = []
    response = api.http.get(
        f"{ACCOUNTS}/models", params={**V_ACCOUNTS, "count": "2", "tag": "t1", "name": "churn"}
    )
    pages = 0
    while True:
        body = response.json()
        pages += 1
        seen += [m["id"] for m in body["value"]]
        if "nextLink" not in body:
            break
        link = urlsplit(body["nextLink"])
        assert (link.scheme, link.netloc) == ("http", "testserver")
        query = parse_qs(link.query)
        assert query["api-version"] == ["2017-09-01-preview"]
        assert (query["count"], query["tag"]) == (["2"], ["t1"])
        response = api.http.get(body["nextLink"])  # followed as is, like the Azure CLI
    assert seen == ids
    assert pages == 3


def test_filters_by_name_and_tag(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    register(api, url, name="a", tags=["x"])
    register(api, url, name="b", tags=["y"])
    register(api, url, name="a", tags=["y"])
    by_name = api.http.get(f"{ACCOUNTS}/models", params={**V_ACCOUNTS, "name": "a"}).json()
    by_tag = api.http.get(f"{ACCOUNTS}/models", params={**V_ACCOUNTS, "tag": "y"}).json()
    assert [(m["name"], m["version"]) for m in by_name["value"]] == [("a", 1), ("a", 2)]
    assert [(m["name"], m["version"]) for m in by_tag["value"]] == [("b", 1), ("a", 2)]


def test_the_2017_list_is_a_bare_array(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    for _ in range(3):
        register(api, url)
    everything = api.http.get(f"{HOSTING}/models", params=V_HOSTING)
    assert [m["version"] for m in everything.json()] == [1, 2, 3]
    paged = api.http.get(f"{HOSTING}/models", params={**V_HOSTING, "count": "2"})
    assert len(paged.json()) == 2
    assert 'rel="next"' in paged.headers["link"]


def test_walking_pages_while_registering_sees_every_old_model_once(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    old = {register(api, url).json()["id"] for _ in range(6)}
    seen: list[str] = []
    response = api.http.get(f"{ACCOUNTS}/models", params={**V_ACCOUNTS, "count": "2"})
    while True:
        body = response.json()
        seen += [m["id"] for m in body["value"]]
        register(api, url)  # new rows arrive between pages
        if "nextLink" not in body:
            break
        response = api.http.get(body["nextLink"])
    assert old <= set(seen)
    assert len(seen) == len(set(seen))


# -- deleting ---------------------------------------------------------------------------


def test_delete_removes_the_row_and_the_blob(api: Api) -> None:
    model = register(api, write(api, "m.pkl", b"only me")).json()
    assert api.blob_files
    deleted = api.http.delete(f"{ACCOUNTS}/models/{model['id']}", params=V_ACCOUNTS)
    assert deleted.status_code == 200
    gone = api.http.get(f"{ACCOUNTS}/models/{model['id']}", params=V_ACCOUNTS)
    assert gone.status_code == 404
    assert api.blob_files == []


def test_delete_is_refused_while_a_manifest_uses_the_model(api: Api) -> None:
    model = register(api, write(api, "m.pkl", b"x")).json()
    db = Database(api.settings.effective_database_url)
    try:
        with db.session(write=True) as session:
            account_id = session.scalar(
                select(ModelRow.account_id).where(ModelRow.id == model["id"])
            )
            assert account_id is not None
            session.add(
                ManifestRow(
                    id="m-1",
                    account_id=account_id,
                    name="scorer",
                    version=1,
                    description="",
                    driver_program="score.py",
                    assets=[],
                    target_runtime={},
                    webservice_type="Realtime",
                    created_at=utcnow(),
                )
            )
            session.flush()
            session.add(ManifestModelRow(manifest_id="m-1", model_id=model["id"], position=0))
            session.commit()
    finally:
        db.dispose()
    refused = api.http.delete(f"{ACCOUNTS}/models/{model['id']}", params=V_ACCOUNTS)
    assert refused.status_code == 409
    assert "m-1" in refused.json()["message"]


# -- HTTP conventions -------------------------------------------------------------------


def test_every_response_carries_a_request_id_and_echoes_the_clients(api: Api) -> None:
    response = api.http.get(
        f"{ACCOUNTS}/models/nope", params=V_ACCOUNTS, headers={"x-ms-client-request-id": "abc"}
    )
    assert response.headers["x-ms-request-id"]
    assert response.headers["x-ms-client-request-id"] == "abc"
    anonymous = api.http.get(f"{ACCOUNTS}/models/nope", params=V_ACCOUNTS)
    assert anonymous.headers["x-ms-client-request-id"] == anonymous.headers["x-ms-request-id"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingApiVersionParameter"),
        ({"api-version": "2099-01-01"}, "InvalidApiVersionParameter"),
    ],
)
def test_api_version_is_required(api: Api, params: dict[str, str], code: str) -> None:
    response = api.http.get(f"{ACCOUNTS}/models", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["statusCode"] == 400
    assert body["details"][0]["message"]


def test_the_2017_routes_take_their_own_api_version(api: Api) -> None:
    assert api.http.get(f"{HOSTING}/models", params=V_ACCOUNTS).status_code == 400


def test_reading_an_account_never_written_is_404(api: Api) -> None:
    response = api.http.get(
        "/api/subscriptions/s/resourceGroups/g/accounts/never/models", params=V_ACCOUNTS
    )
    assert response.status_code == 404
    assert response.json()["code"] == "AccountNotFound"


def test_an_unknown_model_id_is_404_with_the_mms_error_body(api: Api) -> None:
    register(api, write(api, "m.pkl", b"x"))
    response = api.http.get(f"{ACCOUNTS}/models/{uuid.uuid4()}", params=V_ACCOUNTS)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "details", "statusCode"}


def test_a_bad_skip_token_is_400(api: Api) -> None:
    register(api, write(api, "m.pkl", b"x"))
    response = api.http.get(f"{ACCOUNTS}/models", params={**V_ACCOUNTS, "$skipToken": "bogus"})
    assert response.status_code == 400


# -- auth -------------------------------------------------------------------------------


def test_no_token_is_401(api: Api) -> None:
    response = api.http.get(f"{ACCOUNTS}/models", params=V_ACCOUNTS, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["statusCode"] == 401


def test_an_unknown_token_is_401(api: Api) -> None:
    response = api.http.get(
        f"{ACCOUNTS}/models", params=V_ACCOUNTS, headers={"Authorization": "Bearer myd_nope"}
    )
    assert response.status_code == 401


def test_a_reader_may_read_but_not_write_and_revocation_is_immediate(api: Api) -> None:
    register(api, write(api, "m.pkl", b"x"))
    created = api.http.post("/admin/tokens", json={"name": "ci", "role": "Reader"}).json()
    reader = {"Authorization": f"Bearer {created['token']}"}
    assert api.http.get(f"{ACCOUNTS}/models", params=V_ACCOUNTS, headers=reader).status_code == 200
    body = {"name": "x", "url": "file:///x", "mimeType": "a/b"}
    write_try = api.http.post(f"{ACCOUNTS}/models", params=V_ACCOUNTS, json=body, headers=reader)
    assert write_try.status_code == 403
    listed = api.http.get("/admin/tokens").json()["value"]
    assert all("token" not in t for t in listed)
    assert api.http.delete(f"/admin/tokens/{created['id']}").status_code == 200
    assert api.http.get(f"{ACCOUNTS}/models", params=V_ACCOUNTS, headers=reader).status_code == 401


def test_a_scoped_token_is_403_elsewhere(api: Api) -> None:
    url = write(api, "m.pkl", b"x")
    created = api.http.post(
        "/admin/tokens", json={"name": "team", "scopes": ["sub1/GROUP1/acct1"]}
    ).json()
    scoped = {"Authorization": f"Bearer {created['token']}"}
    body = {"name": "m", "url": url, "mimeType": "a/b"}
    ok = api.http.post(f"{ACCOUNTS}/models", params=V_ACCOUNTS, json=body, headers=scoped)
    assert ok.status_code == 200
    other = "/api/subscriptions/sub1/resourceGroups/group1/accounts/other/models"
    assert api.http.post(other, params=V_ACCOUNTS, json=body, headers=scoped).status_code == 403


# -- bad input leaves nothing behind ----------------------------------------------------


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("name too long", {"name": "n" * 33}, "name"),
    ("name with underscore", {"name": "bad_name"}, "name"),
    ("tag not alphanumeric", {"tags": ["not-ok"]}, "tags"),
    ("tag too long", {"tags": ["t" * 31]}, "tags"),
    ("description too long", {"description": "d" * 201}, "description"),
    ("url missing", {"url": None}, "url"),
    ("mimeType missing", {"mimeType": None}, "mimeType"),
    ("forbidden scheme", {"url": "ftp://example.com/m.pkl"}, "url"),
    ("link-local host", {"url": "http://169.254.169.254/latest/meta-data"}, "url"),
    ("file outside the allowed roots", {"url": "file:///etc/passwd"}, "url"),
    ("unknown upload", {"url": "upload://no-such-upload"}, "url"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_are_400_naming_the_field_and_store_nothing(
    api: Api, case: str, change: dict[str, Any], field: str
) -> None:
    body: dict[str, Any] = {
        "name": "ok",
        "url": write(api, "m.pkl", b"x"),
        "mimeType": "application/octet-stream",
    }
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    response = api.http.post(f"{ACCOUNTS}/models", params=V_ACCOUNTS, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert field in error["message"] or error["details"][0]["code"] == field
    assert model_rows(api) == 0
    assert api.blob_files == []


def test_a_url_that_404s_is_400_and_stores_nothing(api: Api, file_server: FileServer) -> None:
    response = register(api, f"{file_server.url}/missing.pkl")
    assert response.status_code == 400
    assert "404" in response.json()["message"]
    assert model_rows(api) == 0
    assert api.blob_files == []


def test_malformed_json_is_400(api: Api) -> None:
    response = api.http.post(
        f"{ACCOUNTS}/models",
        params=V_ACCOUNTS,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "InvalidJson"


def test_a_wrong_content_type_is_415(api: Api) -> None:
    response = api.http.post(
        f"{ACCOUNTS}/models",
        params=V_ACCOUNTS,
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.json()["statusCode"] == 415


@pytest.mark.parametrize(
    "archive",
    [
        pytest.param(_zip({"../escape.txt": b"evil"}), id="zip-slip"),
        pytest.param(_zip({"zeros.bin": b"\0" * (50 * 1024 * 1024)}), id="zip-bomb"),
        pytest.param(b"not an archive at all", id="not-an-archive"),
    ],
)
def test_unsafe_archives_are_refused_and_store_nothing(api: Api, archive: bytes) -> None:
    response = register(api, write(api, "m.zip", archive), unpack=True)
    assert response.status_code == 400, response.text
    assert model_rows(api) == 0
    assert api.blob_files == []


def test_an_oversized_upload_is_413_and_stores_nothing(api: Api, tmp_path: Path) -> None:
    object.__setattr__(api.http.app.state.context, "max_artifact_bytes", 10)  # type: ignore[attr-defined]
    response = api.http.post(
        f"{ACCOUNTS}/uploads",
        params=V_ACCOUNTS,
        content=b"x" * 100,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 413
    assert api.blob_files == []
