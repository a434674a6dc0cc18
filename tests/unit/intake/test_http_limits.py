"""Limits of the HTTP app on hostile input: nesting depth (issue 18)."""

from __future__ import annotations

import json

from services.intake.domain.admission import MAX_NESTING_DEPTH
from tests.unit.intake.harness import AUTH, case_opened, serving


def nested(levels: int) -> bytes:
    """JSON of an object nested `levels` deep: {"x": {"x": ... {} ...}}."""
    return b'{"x": ' * (levels - 1) + b"{}" + b"}" * (levels - 1)


def with_deep_field(document: dict, levels: int) -> bytes:
    """The document's JSON with `data.deep` nested `levels` deep (too deep for json.dumps)."""
    document["data"]["deep"] = "DEEP"
    return json.dumps(document).encode().replace(b'"DEEP"', nested(levels))


async def test_a_small_body_nesting_1000_levels_in_data_is_422_naming_the_field(tmp_path):
    body = with_deep_field(case_opened(), 1000)
    assert len(body) < 8_000  # a small body: the size limit is no defence
    async with serving(tmp_path) as (client, producer):
        response = await client.post("/v1/events", content=body, headers=AUTH)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        [error] = response.json()["errors"]
        assert error["pointer"] == "/data/deep"
        assert str(MAX_NESTING_DEPTH) in error["detail"]

        good = json.dumps(case_opened()).encode()
        batch = await client.post(
            "/v1/events:batch", content=b"[" + good + b"," + body + b"]", headers=AUTH
        )
        assert batch.status_code == 422, batch.text
        [item] = batch.json()["items"]
        assert item["index"] == 1 and item["errors"][0]["pointer"] == "/1/data/deep"
        assert producer.written == []  # nothing of the refused batch was written

        # Deeper than the JSON parser follows at all: still 422, not 400 or 500.
        deeper = b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        answer = await client.post("/v1/events", content=deeper, headers=AUTH)
        assert answer.status_code == 422, answer.text
        assert str(MAX_NESTING_DEPTH) in answer.json()["errors"][0]["detail"]


async def test_nesting_up_to_the_limit_is_judged_as_usual(tmp_path):
    at_limit = with_deep_field(case_opened(), MAX_NESTING_DEPTH - 2)  # event, data, then these
    over = with_deep_field(case_opened(), MAX_NESTING_DEPTH - 1)
    async with serving(tmp_path) as (client, _):
        usual = await client.post("/v1/events", content=at_limit, headers=AUTH)
        assert usual.status_code == 422
        # refused for what it is (a field the case event has not), not for its depth
        assert [e["pointer"] for e in usual.json()["errors"]] == ["/data/deep"]
        assert "Extra inputs" in usual.json()["errors"][0]["detail"]
        refused = await client.post("/v1/events", content=over, headers=AUTH)
        assert refused.status_code == 422
        assert str(MAX_NESTING_DEPTH) in refused.json()["errors"][0]["detail"]
        accepted = await client.post("/v1/events", json=case_opened(), headers=AUTH)
        assert accepted.status_code == 202
