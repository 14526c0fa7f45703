"""``GET /locations/best`` on a real uvicorn, locations over real 2023 grids: read-only (no
token even when one is set), the CLI's JSON shape, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from greenai.core.settings import load_settings
from greenai.oneshot.where import LocationForecasts
from tests.api.conftest import TOKEN, Serve
from tests.cli.test_where import locations


@pytest.fixture
def api(serve: Serve, tmp_path: Path) -> httpx.Client:
    settings = load_settings(env={"GREENAI_LOCATIONS": locations()}, home=tmp_path / "home")
    client, _ = serve(token=SecretStr(TOKEN), locations=LocationForecasts(settings))
    return client  # sends no token: the route is read-only


def test_ranks_with_data_gravity_without_a_token(api: httpx.Client) -> None:
    query = {"duration": "24h", "gpus": 8, "data_gb": 40_000, "data_location": "PJM"}
    response = api.get("/locations/best", params=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["asked"]["now"] == "2023-05-04T12:00:00Z"  # the app's clock, not the wall's
    assert body["ranked"][0]["location"] == body["winner"]
    moved = [o for o in body["ranked"] if o["location"] != "PJM"]
    assert moved and all(o["transfer_s"] == 3200 and o["egress_usd"] == 3200 for o in moved)
    assert all(o["start"] >= "2023-05-04T12:53:20Z" for o in moved)
    assert body["excluded"] == [{"location": "GB", "why": "capacity: 1 GPUs, the job needs 8"}]
    assert body["why"].split(":")[0] in ("move to ON", "stay at PJM")


def test_candidates_narrow_the_ranking(api: httpx.Client) -> None:
    body = api.get("/locations/best", params={"duration": "2h", "locations": "GB,ON"}).json()
    assert {o["location"] for o in body["ranked"]} == {"GB", "ON"} and body["home"] == "GB"
    assert json.dumps(body)  # plain JSON all the way down


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"duration": "2h", "locations": "GB,MARS"}, "locations: unknown location 'MARS'"),
        ({"duration": "2h", "data_gb": 5}, "data_location: say where"),
        ({"duration": "2h", "data_gb": 5, "data_location": "MARS"}, "data location: unknown"),
        ({"duration": "later"}, "duration: not a duration"),
        ({"duration": "99999999999d"}, "duration: "),
        ({"duration": "2h", "deadline": "2023-05-04T13:00:00"}, "deadline: give a UTC offset"),
    ],
)
def test_bad_questions_name_the_field(
    api: httpx.Client, params: dict[str, object], field: str
) -> None:
    response = api.get("/locations/best", params=params)
    assert response.status_code == 422
    assert field in response.json()["detail"]


def test_without_locations_it_is_not_found(serve: Serve) -> None:
    client, _ = serve()
    response = client.get("/locations/best", params={"duration": "2h"})
    assert response.status_code == 404 and "no locations configured" in response.json()["detail"]
