"""What the fuzzer found: numbers past SQLite's 64-bit integers and non-latin-1 file names.

Each answered 500 before; now a number out of range is a 422 naming the parameter (a malformed
``Last-Event-ID`` header a 400), and a UTF-8 file name is a file name.
"""

from __future__ import annotations

import pytest

from cvplatform.errors import MalformedHeader
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio

PAST_SQLITE = "13332373308509134848"  # the fuzzer's offset: more than 2**63 - 1


@pytest.mark.parametrize(
    ("path", "params", "location"),
    [
        ("/api/v1/alerts", {"offset": PAST_SQLITE}, "query.offset"),
        ("/api/v1/audit", {"offset": PAST_SQLITE}, "query.offset"),
        ("/api/v1/audit", {"user_id": PAST_SQLITE}, "query.user_id"),
        ("/api/v1/datasets", {"offset": PAST_SQLITE}, "query.offset"),
        ("/api/v1/models", {"offset": PAST_SQLITE}, "query.offset"),
        ("/api/v1/jobs", {"offset": PAST_SQLITE}, "query.offset"),
        ("/api/v1/models", {"offset": "-1"}, "query.offset"),
        (f"/api/v1/users/{PAST_SQLITE}", {}, "path.user_id"),
        ("/api/v1/users/0", {}, "path.user_id"),
    ],
)
async def test_numbers_out_of_range_are_422(
    api: InProcessApi, admin: Caller, path: str, params: dict[str, str], location: str
) -> None:
    answer = await api.http.get(path, params=params, headers=admin.headers)
    assert answer.status_code == 422, answer.text
    assert error_of(answer)["code"] == "validation_error"
    assert [field["location"] for field in answer.json()["error"]["fields"]] == [location]


async def test_a_key_id_past_sqlite_is_422_and_revokes_nothing(
    api: InProcessApi, admin: Caller
) -> None:
    key = await api.api_key(admin.headers)
    answer = await api.http.delete(f"/api/v1/auth/api-keys/{PAST_SQLITE}", headers=admin.headers)
    assert answer.status_code == 422, answer.text
    still = await api.http.get("/api/v1/auth/me", headers={"X-API-Key": key["key"]})
    assert still.status_code == 200


@pytest.mark.parametrize("last_event_id", ["not-a-number", PAST_SQLITE, "-1", "1.5", "0x10"])
async def test_a_malformed_last_event_id_is_400_invalid_header(
    api: InProcessApi, admin: Caller, last_event_id: str
) -> None:
    answer = await api.http.get(
        "/api/v1/jobs/any/events", headers={**admin.headers, "Last-Event-ID": last_event_id}
    )
    assert answer.status_code == 400, answer.text
    error = error_of(answer, MalformedHeader)
    assert error["code"] == "invalid_header"
    assert "Last-Event-ID" in error["message"]


@pytest.mark.parametrize("last_event_id", ["0", "42", str(2**63 - 1), " 7 "])
async def test_a_well_formed_last_event_id_reaches_the_route(
    api: InProcessApi, admin: Caller, last_event_id: str
) -> None:
    answer = await api.http.get(
        "/api/v1/jobs/no-such-job/events",
        headers={**admin.headers, "Last-Event-ID": last_event_id},
    )
    assert answer.status_code == 404, answer.text  # past the header: the job is looked up


async def test_a_utf8_file_name_is_accepted_as_written(api: InProcessApi, engineer: Caller) -> None:
    answer = await api.upload_model(
        engineer.headers, b"\x08\x08" + bytes(64), "模型-détection.onnx", unique("u"), "detection"
    )
    assert answer.status_code == 202, answer.text
    model = (await api.http.get(answer.json()["url"], headers=engineer.headers)).json()
    assert model["source"]["filename"] == "模型-détection.onnx"
