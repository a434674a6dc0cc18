"""The staff API's doors, without a database: authentication, scope and limits are decided
before anything is read or written (a pool that fails when touched proves it)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.common.settings import REPO_ROOT
from services.feedback.config import Capability, StaffToken, StaffTokens, load_policy_book
from services.feedback.entrypoints.web import create_web_app
from services.feedback.ratelimit import Limits

BSN = "111222333"


class UntouchablePool:
    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the database was touched")


def token(name: str, municipalities: list[str], capabilities: list[Capability]) -> StaffToken:
    return StaffToken(
        name=name,
        sha256=hashlib.sha256(name.encode()).hexdigest(),
        municipalities=municipalities,
        capabilities=capabilities,
    )


@pytest.fixture
def client() -> TestClient:
    ctx = SimpleNamespace(
        lifespan=None,
        link_key=b"k" * 32,
        limits=Limits.build(page_per_minute=100, failed_lookups_per_hour=100, staff_per_minute=3),
        staff_tokens=StaffTokens(
            [
                token("kcc", ["GM0383"], [Capability.RECORD_ANSWERS, Capability.READ_CONTACT_LIST]),
                token("fg", ["GM0383"], [Capability.ERASE]),
            ]
        ),
        book=load_policy_book(REPO_ROOT / "deploy" / "config"),
        pool=UntouchablePool(),
    )
    return TestClient(create_web_app(ctx))


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


IN_PERSON = {"subject_kind": "contact", "subject_id": "C-1", "channel": "counter", "score": 5}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("get", "/api/v1/lists/GM0383/2026-01-01/letter_list.csv", None, {}, 401),
        ("get", "/api/v1/lists/GM0383/2026-01-01/letter_list.csv", None, bearer("x"), 401),
        ("get", "/api/v1/lists/GM0373/2026-01-01/letter_list.csv", None, bearer("kcc"), 403),
        ("get", "/api/v1/lists/GM0383/2026-01-01/letter_list.csv", None, bearer("fg"), 403),
        ("post", "/api/v1/responses", IN_PERSON | {"municipality": "GM0373"}, bearer("kcc"), 403),
        ("post", "/api/v1/responses", IN_PERSON | {"municipality": "GM9999"}, bearer("kcc"), 403),
        ("post", "/api/v1/responses", IN_PERSON | {"municipality": "GM0383"}, bearer("fg"), 403),
        ("post", "/api/v1/responses", IN_PERSON | {"municipality": "GM0383"}, {}, 401),
        (
            "post",
            "/api/v1/surveys/8c0b8a40-5a0e-4a3c-9a55-5a3c9a555a3c/responses",
            {"score": 3},
            bearer("fg"),
            403,
        ),
        ("post", "/api/v1/erasures", {"municipality": "GM0383", "bsn": BSN}, bearer("kcc"), 403),
        ("post", "/api/v1/erasures", {"municipality": "GM0373", "bsn": BSN}, bearer("fg"), 403),
        ("post", "/api/v1/erasures", {"municipality": "GM0383", "bsn": BSN}, bearer("y"), 401),
    ],
)
def test_refused_before_the_database_is_touched(
    client: TestClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    status: int,
) -> None:
    response = client.request(method.upper(), path, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert BSN not in response.text


def test_a_bad_erasure_request_names_the_field_never_the_value(client: TestClient) -> None:
    response = client.post(
        "/api/v1/erasures",
        json={"municipality": "GM0383", "bsn": "123456789", "phone": "12345"},
        headers=bearer("fg"),
    )
    assert response.status_code == 422
    fields = {tuple(p["loc"]) for p in response.json()["detail"]}
    assert fields == {("body", "bsn"), ("body", "phone")}
    assert "123456789" not in response.text and "12345" not in response.text
    nothing = client.post("/api/v1/erasures", json={"municipality": "GM0383"}, headers=bearer("fg"))
    assert nothing.status_code == 422 and "at least one" in nothing.text


def test_a_token_over_its_limit_gets_429_with_retry_after(client: TestClient) -> None:
    url = "/api/v1/lists/GM0373/2026-01-01/letter_list.csv"  # refused, but counted
    assert [client.get(url, headers=bearer("kcc")).status_code for _ in range(3)] == [403] * 3
    over = client.get(url, headers=bearer("kcc"))
    assert over.status_code == 429 and over.headers["Retry-After"] == "20"
    assert client.get(url, headers=bearer("fg")).status_code == 403  # another token
