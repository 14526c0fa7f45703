"""Fault suite: every provider, every way an answer can go wrong.

For each (provider, fault, question) the chain ``<provider>,egrid:RFCE`` still answers and
says who answered (``fallback`` set when the stand-in did), and the provider asked alone
raises nothing but ``ProviderError``. Nothing here reaches the network: respx replays all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from greenai.core.errors import ProviderError
from greenai.core.settings import Settings, load_settings
from greenai.core.time import floor_time
from greenai.providers import FallbackChain, build_chain
from greenai.providers.http import build_http_client
from tests.fakes import FrozenClock
from tests.providers.conftest import UK_NOW, WT_NOW, WT_TOKEN, uk_periods

LEAK = "LEAK-ME-root:x:0:0"  # payload text that must never reach an error or a warning
STAND_IN = "egrid:RFCE"
UK_HOST = "api.carbonintensity.org.uk"
WT_HOST = "api.watttime.org"
HOUR = timedelta(hours=1)

Body = dict[str, Any]
Outcome = httpx.Response | Exception


# ---------------------------------------------------------------- good bodies per provider


def uk_body(now: datetime, regional: bool) -> Body:
    first = floor_time(now, timedelta(minutes=30)) - timedelta(hours=12)
    periods = uk_periods(first, first + timedelta(hours=60), actual_offset=None if regional else 1)
    if regional:
        return {"data": {"regionid": 13, "shortname": "London", "data": periods}}
    return {"data": periods}


def uk_list(body: Body) -> list[Any]:
    data = body["data"]
    return data["data"] if isinstance(data, dict) else data  # type: ignore[no-any-return]


def wt_body(now: datetime) -> Body:
    first = floor_time(now, timedelta(minutes=5)) - timedelta(hours=12)
    points = [
        {"point_time": (first + timedelta(minutes=5 * i)).isoformat(), "value": 800.0 + i}
        for i in range(12 * 15)
    ]
    meta = {
        "data_point_period_seconds": 300,
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh",
        "warnings": [],
    }
    return {"data": points, "meta": meta}


def wt_list(body: Body) -> list[Any]:
    return body["data"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Fault:
    """``make(good body, now, kind)`` -> what the endpoint answers. ``target`` is the endpoint
    it hits (``data``, ``login``, ``region``); ``kinds`` the providers it applies to;
    ``must_fail`` whether the primary must give up (else it may answer with warnings)."""

    name: str
    make: Callable[[Body, datetime, str], Outcome]
    kinds: tuple[str, ...] = ("uk", "wt")
    target: str = "data"
    must_fail: bool = True


def _json(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=_CT)


_CT = {"Content-Type": "application/json"}


def _raw(content: bytes, status: int = 200) -> Callable[[Body, datetime, str], Outcome]:
    return lambda body, now, kind: httpx.Response(status, content=content, headers=_CT)


def _raise(exc: Exception) -> Callable[[Body, datetime, str], Outcome]:
    return lambda body, now, kind: exc


def _const(payload: Any, status: int = 200) -> Callable[[Body, datetime, str], Outcome]:
    return lambda body, now, kind: _json(payload, status)


def _edit_points(
    edit: Callable[[list[Any], str], None],
) -> Callable[[Body, datetime, str], Outcome]:
    """Apply ``edit`` to the list of periods/points of a good body."""

    def make(body: Body, now: datetime, kind: str) -> Outcome:
        points = uk_list(body) if kind == "uk" else wt_list(body)
        edit(points, kind)
        return _json(body)

    return make


def _edit_each(
    edit: Callable[[dict[str, Any], str], None],
) -> Callable[[Body, datetime, str], Outcome]:
    def each(points: list[Any], kind: str) -> None:
        for point in points:
            edit(point, kind)

    return _edit_points(each)


def _set_value(value: Any) -> Callable[[dict[str, Any], str], None]:
    def edit(point: dict[str, Any], kind: str) -> None:
        if kind == "uk":
            point["intensity"]["forecast"] = value
            point["intensity"].pop("actual", None)
        else:
            point["value"] = value

    return edit


def _set_time(value: Any) -> Callable[[dict[str, Any], str], None]:
    def edit(point: dict[str, Any], kind: str) -> None:
        point["from" if kind == "uk" else "point_time"] = value

    return edit


def _drop(uk_key: str, wt_key: str) -> Callable[[dict[str, Any], str], None]:
    def edit(point: dict[str, Any], kind: str) -> None:
        point.pop(uk_key if kind == "uk" else wt_key, None)

    return edit


def _set_period(
    uk_delta: timedelta | None, wt_seconds: Any
) -> Callable[[Body, datetime, str], Outcome]:
    """A period of the wrong length: UK ``to`` moved, WattTime ``data_point_period_seconds``."""

    def make(body: Body, now: datetime, kind: str) -> Outcome:
        if kind == "wt":
            body["meta"]["data_point_period_seconds"] = wt_seconds
            return _json(body)
        assert uk_delta is not None
        for period in uk_list(body):
            start = datetime.fromisoformat(period["from"].replace("Z", "+00:00"))
            try:
                period["to"] = (start + uk_delta).strftime("%Y-%m-%dT%H:%MZ")
            except OverflowError:
                period["to"] = "9999-12-31T23:59Z"
        return _json(body)

    return make


def _gap(offset: timedelta) -> Callable[[Body, datetime, str], Outcome]:
    """Remove the period holding ``now + offset``."""

    def make(body: Body, now: datetime, kind: str) -> Outcome:
        step = timedelta(minutes=30 if kind == "uk" else 5)
        missing = floor_time(now + offset, step)
        points = uk_list(body) if kind == "uk" else wt_list(body)
        key = "from" if kind == "uk" else "point_time"
        points[:] = [
            p for p in points if datetime.fromisoformat(p[key].replace("Z", "+00:00")) != missing
        ]
        return _json(body)

    return make


def _meta(key: str, value: Any) -> Callable[[Body, datetime, str], Outcome]:
    def make(body: Body, now: datetime, kind: str) -> Outcome:
        if value is _DELETE:
            body["meta"].pop(key, None)
        else:
            body["meta"][key] = value
        return _json(body)

    return make


def _top(key: str, value: Any) -> Callable[[Body, datetime, str], Outcome]:
    def make(body: Body, now: datetime, kind: str) -> Outcome:
        if value is _DELETE:
            body.pop(key, None)
        else:
            body[key] = value
        return _json(body)

    return make


_DELETE = object()


def _nan_body(token: bytes) -> Callable[[Body, datetime, str], Outcome]:
    """A non-standard JSON number (``NaN``, ``Infinity``, ``1e400``) in every value."""

    def make(body: Body, now: datetime, kind: str) -> Outcome:
        _set_value_all(body, kind, 123456.25)
        content = json.dumps(body).encode().replace(b"123456.25", token)
        return httpx.Response(200, content=content, headers=_CT)

    return make


def _set_value_all(body: Body, kind: str, value: float) -> None:
    for point in uk_list(body) if kind == "uk" else wt_list(body):
        _set_value(value)(point, kind)


def _off_grid(body: Body, now: datetime, kind: str) -> Outcome:
    points = uk_list(body) if kind == "uk" else wt_list(body)
    key = "from" if kind == "uk" else "point_time"
    for point in points:
        start = datetime.fromisoformat(point[key].replace("Z", "+00:00"))
        point[key] = (start + timedelta(minutes=3)).isoformat()
    return _json(body)


WT_ONLY = ("wt",)
UK_ONLY = ("uk",)

FAULTS: list[Fault] = [
    # transport
    Fault("timeout", _raise(httpx.ReadTimeout("slow"))),
    Fault("connect-timeout", _raise(httpx.ConnectTimeout("slow"))),
    Fault("connection-refused", _raise(httpx.ConnectError("refused"))),
    Fault("connection-dropped", _raise(httpx.RemoteProtocolError("peer closed"))),
    Fault("read-error", _raise(httpx.ReadError("reset"))),
    # status codes
    Fault("500-html", _raw(b"<html>" + LEAK.encode() + b"</html>", 500)),
    Fault(
        "503-json", _const({"error": {"code": "503", "message": "down"}, "message": "down"}, 503)
    ),
    Fault("502-empty", _raw(b"", 502)),
    Fault("404", _const({"error": {"code": "404", "message": "nope"}}, 404)),
    Fault("429-retry-after", lambda b, n, k: httpx.Response(429, headers={"Retry-After": "1"})),
    Fault("429-long-retry", lambda b, n, k: httpx.Response(429, headers={"Retry-After": "3600"})),
    Fault("429-bad-retry", lambda b, n, k: httpx.Response(429, headers={"Retry-After": "nan"})),
    Fault(
        "429-date-retry",
        lambda b, n, k: httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00"}),
    ),
    Fault("401", _const({"message": "expired"}, 401)),
    Fault("403", _const({"message": "not in your plan"}, 403)),
    Fault("204-empty", _raw(b"", 204)),
    # bodies
    Fault("malformed-json", _raw(b'{"data": [' + LEAK.encode())),
    Fault("empty-body", _raw(b"")),
    Fault("whitespace-body", _raw(b"  \n ")),
    Fault("not-utf8", _raw(b"\xff\xfe\x00\x81")),
    Fault("deep-json", _raw(b"[" * 100_000 + b"]" * 100_000)),
    Fault("huge-int", _raw(b'{"data": ' + b"9" * 5000 + b"}")),
    Fault("json-null", _const(None)),
    Fault("json-list", _const([])),
    Fault("json-number", _const(5)),
    Fault("json-string", _const(LEAK)),
    Fault("error-body-200", _const({"error": {"code": "400", "message": "bad postcode"}})),
    Fault("error-not-object", _const({"error": [LEAK]})),
    # data
    Fault("no-data", _top("data", _DELETE)),
    Fault("data-null", _top("data", None)),
    Fault("data-number", _top("data", 5)),
    Fault("data-string", _top("data", LEAK)),
    Fault("data-empty", _top("data", [])),
    Fault("data-empty-object", _top("data", {"regionid": 13, "data": []}), UK_ONLY),
    Fault("data-object-no-list", _top("data", {"regionid": 13, "data": LEAK}), UK_ONLY),
    Fault("point-not-object", _edit_points(lambda pts, k: pts.__setitem__(0, LEAK))),
    Fault("point-number", _edit_points(lambda pts, k: pts.__setitem__(slice(None), [5, 6]))),
    # wrong types and values
    Fault("value-string", _edit_each(_set_value(LEAK))),
    Fault("value-numeric-string", _edit_each(_set_value("266"))),
    Fault("value-bool", _edit_each(_set_value(True))),
    Fault("value-list", _edit_each(_set_value([1]))),
    Fault("value-null", _edit_each(_set_value(None))),
    Fault("value-negative", _edit_each(_set_value(-5))),
    Fault("value-huge", _edit_each(_set_value(1e12))),
    Fault("value-nan", _nan_body(b"NaN")),
    Fault("value-infinity", _nan_body(b"Infinity")),
    Fault("value-overflow", _nan_body(b"1e400")),
    Fault("value-missing", _edit_each(_drop("intensity", "value"))),
    Fault(
        "intensity-not-object", _edit_each(lambda p, k: p.__setitem__("intensity", LEAK)), UK_ONLY
    ),
    Fault("time-missing", _edit_each(_drop("from", "point_time"))),
    Fault("time-garbage", _edit_each(_set_time(LEAK))),
    Fault("time-number", _edit_each(_set_time(1_689_000_000))),
    Fault("time-far-future", _edit_each(_set_time("9999-12-31T23:30:00+00:00"))),
    Fault("time-far-past", _edit_each(_set_time("0001-01-01T00:00:00+05:00"))),
    Fault("time-off-grid", _off_grid),
    Fault("to-garbage", _edit_each(lambda p, k: p.__setitem__("to", LEAK)), UK_ONLY),
    # periods and gaps
    Fault("period-zero", _set_period(timedelta(0), 0)),
    Fault("period-huge", _set_period(timedelta(days=365 * 100), 1e30)),
    Fault("period-overflow", _set_period(timedelta(days=999_999_999), 10**400), WT_ONLY),
    Fault("period-negative", _set_period(timedelta(minutes=-30), -300)),
    Fault("period-too-short", _set_period(timedelta(seconds=1), 1)),
    Fault("period-string", _set_period(None, "300"), WT_ONLY),
    Fault("gap-at-now", _gap(timedelta(0)), must_fail=False),
    Fault("gap-ahead", _gap(timedelta(minutes=40)), must_fail=False),
    # WattTime meta
    Fault("meta-missing", _top("meta", _DELETE), WT_ONLY),
    Fault("meta-number", _top("meta", 5), WT_ONLY),
    Fault("units-percentile", _meta("units", "percentile"), WT_ONLY),
    Fault("units-garbage", _meta("units", LEAK), WT_ONLY),
    Fault("units-missing", _meta("units", _DELETE), WT_ONLY),
    Fault("warnings-number", _meta("warnings", 5), WT_ONLY),
    Fault("warnings-string", _meta("warnings", LEAK), WT_ONLY),
    Fault("warnings-items-numbers", _meta("warnings", [5]), WT_ONLY),
    Fault("warnings-items-bad-fields", _meta("warnings", [{"type": 1, "message": []}]), WT_ONLY),
    # WattTime login
    Fault("login-timeout", _raise(httpx.ReadTimeout("slow")), WT_ONLY, "login"),
    Fault("login-401", _const({"message": "bad credentials"}, 401), WT_ONLY, "login"),
    Fault("login-500", _raw(b"<html>oops</html>", 500), WT_ONLY, "login"),
    Fault("login-429", lambda b, n, k: httpx.Response(429), WT_ONLY, "login"),
    Fault("login-malformed", _raw(b'{"token": '), WT_ONLY, "login"),
    Fault("login-empty", _raw(b""), WT_ONLY, "login"),
    Fault("login-no-token", _const({"user": "alice"}), WT_ONLY, "login"),
    Fault("login-token-number", _const({"token": 12345}), WT_ONLY, "login"),
    Fault("login-token-newline", _const({"token": "abc\r\nX-Evil: 1"}), WT_ONLY, "login"),
    Fault("login-token-empty", _const({"token": ""}), WT_ONLY, "login"),
    Fault("login-list", _const([WT_TOKEN]), WT_ONLY, "login"),
    # WattTime region-from-loc (only where the region is a location)
    Fault("region-timeout", _raise(httpx.ReadTimeout("slow")), WT_ONLY, "region"),
    Fault("region-500", _raw(b"", 500), WT_ONLY, "region"),
    Fault("region-missing", _const({"signal_type": "co2_moer"}), WT_ONLY, "region"),
    Fault("region-number", _const({"region": 7}), WT_ONLY, "region"),
    Fault("region-garbage", _const({"region": LEAK}), WT_ONLY, "region"),
    Fault("region-malformed", _raw(b"{"), WT_ONLY, "region"),
]


@dataclass(frozen=True)
class Target:
    spec: str
    kind: str
    now: datetime
    regional: bool = False
    located: bool = False


TARGETS = [
    Target("uk", "uk", UK_NOW),
    Target("uk:13", "uk", UK_NOW, regional=True),
    Target("uk:BS16", "uk", UK_NOW, regional=True),
    Target("watttime:CAISO_NORTH", "wt", WT_NOW),
    Target("watttime:37.8,-122.3", "wt", WT_NOW, located=True),
]

QUESTIONS = ("forecast", "current", "history")


def _cases() -> Iterator[Any]:
    for target in TARGETS:
        for fault in FAULTS:
            if target.kind not in fault.kinds:
                continue
            if fault.target == "region" and not target.located:
                continue
            for question in QUESTIONS:
                yield pytest.param(
                    target, fault, question, id=f"{target.spec}-{fault.name}-{question}"
                )


def _good(target: Target) -> Body:
    return uk_body(target.now, target.regional) if target.kind == "uk" else wt_body(target.now)


@pytest.fixture(scope="module")
def retrying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The real client (timeouts, retries on 5xx and transport errors), sleeping never; one
    for the module (building its TLS context is the slowest part of a case)."""
    home = tmp_path_factory.mktemp("client-home")
    settings = load_settings(env={}, config_file=None, home=home, request_retries=2)
    with build_http_client(settings, sleep=lambda seconds: None) as client:
        yield client


def _route(router: respx.MockRouter, target: Target, fault: Fault) -> dict[str, respx.Route]:
    def answer(make: Callable[[], Outcome]) -> Callable[[httpx.Request], httpx.Response]:
        def side_effect(request: httpx.Request) -> httpx.Response:
            outcome = make()
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return side_effect

    def faulty() -> Outcome:
        return fault.make(_good(target), target.now, target.kind)

    def good_data() -> Outcome:
        return _json(_good(target))

    if target.kind == "uk":
        return {"data": router.route(host=UK_HOST).mock(side_effect=answer(faulty))}
    login = faulty if fault.target == "login" else lambda: _json({"token": WT_TOKEN})
    region = faulty if fault.target == "region" else lambda: _json({"region": "CAISO_NORTH"})
    data = faulty if fault.target == "data" else good_data
    return {
        "login": router.route(host=WT_HOST, path="/login").mock(side_effect=answer(login)),
        "region": router.route(host=WT_HOST, path="/v3/region-from-loc").mock(
            side_effect=answer(region)
        ),
        "data": router.route(host=WT_HOST).mock(side_effect=answer(data)),
    }


def _ask(source: Any, question: str, now: datetime, region: str | None = None) -> Any:
    args: tuple[Any, ...]
    if question == "forecast":
        args = (now, HOUR)
    elif question == "current":
        args = (now,)
    else:
        args = (now - timedelta(hours=6), now)
    if region is not None:
        args = (region, *args)
    return getattr(source, question)(*args)


@pytest.mark.parametrize(("target", "fault", "question"), list(_cases()))
def test_fault(
    target: Target,
    fault: Fault,
    question: str,
    settings: Settings,
    retrying: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FrozenClock(target.now)
    chain: FallbackChain = build_chain(
        f"{target.spec},{STAND_IN}", settings, client=retrying, clock=clock, sleep=lambda s: None
    )
    entry = chain.entries[0]
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        routes = _route(router, target, fault)
        # the provider alone: nothing but ProviderError escapes
        try:
            alone = _ask(entry.provider, question, target.now, entry.region)
        except ProviderError as exc:
            assert LEAK not in str(exc)
            assert WT_TOKEN not in str(exc)
        else:
            assert not fault.must_fail, f"{fault.name}: the provider answered {alone!r}"
        # the chain: always answers, and says who did
        answer = _ask(chain, question, target.now)
    if fault.must_fail:
        assert (answer.source, answer.fallback) == (STAND_IN, STAND_IN)
        assert any(f"stood in for {entry.label}" in w for w in answer.warnings)
    elif answer.source == STAND_IN:
        assert answer.fallback == STAND_IN
    else:  # the primary answered (a location answers as its WattTime region)
        assert answer.source.startswith(f"{entry.provider.name}:")
        assert answer.fallback is None
    values = answer.values if question != "current" else (answer.value,)
    assert values and all(math.isfinite(v) and v >= 0 for v in values)
    everything = " ".join([caplog.text, *answer.warnings])
    assert LEAK not in everything
    assert WT_TOKEN not in everything
    if fault.name in ("401", "403") and target.kind == "wt":
        # the token was refused: log in again exactly once per question, then give up
        assert routes["login"].call_count >= 2
        assert routes["data"].call_count >= 2


def test_watttime_relogs_in_once_on_401_and_then_answers(
    settings: Settings, retrying: httpx.Client
) -> None:
    chain = build_chain(
        f"watttime:CAISO_NORTH,{STAND_IN}", settings, client=retrying, clock=FrozenClock(WT_NOW)
    )
    with respx.mock(base_url="https://" + WT_HOST) as api:
        login = api.get("/login").respond(json={"token": WT_TOKEN})
        api.get("/v3/forecast").mock(
            side_effect=[httpx.Response(401), httpx.Response(200, json=wt_body(WT_NOW))]
        )
        answer = chain.forecast(WT_NOW, HOUR)
    assert (answer.source, answer.fallback) == ("watttime:CAISO_NORTH", None)
    assert login.call_count == 2


def test_watttime_honours_retry_after_then_answers(
    settings: Settings, retrying: httpx.Client
) -> None:
    waits: list[float] = []
    chain = build_chain(
        f"watttime:CAISO_NORTH,{STAND_IN}",
        settings,
        client=retrying,
        clock=FrozenClock(WT_NOW),
        sleep=waits.append,
    )
    with respx.mock(base_url="https://" + WT_HOST) as api:
        api.get("/login").respond(json={"token": WT_TOKEN})
        api.get("/v3/forecast").mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "7"}),
                httpx.Response(200, json=wt_body(WT_NOW)),
            ]
        )
        answer = chain.forecast(WT_NOW, HOUR)
    assert answer.fallback is None
    assert waits == [7.0]


def test_gap_ahead_is_reported_not_filled(settings: Settings, retrying: httpx.Client) -> None:
    chain = build_chain(f"uk:13,{STAND_IN}", settings, client=retrying, clock=FrozenClock(UK_NOW))
    body = uk_body(UK_NOW, regional=True)
    missing = (UK_NOW + timedelta(hours=1)).replace(minute=30).strftime("%Y-%m-%dT%H:%MZ")
    uk_list(body)[:] = [p for p in uk_list(body) if p["from"] != missing]
    with respx.mock(assert_all_mocked=True) as router:
        router.route(host=UK_HOST).respond(json=body)
        answer = chain.forecast(UK_NOW, timedelta(hours=3))
    assert (answer.source, answer.fallback) == ("uk:13", None)
    assert answer.end <= datetime.fromisoformat(missing.replace("Z", "+00:00"))
    assert any("gap: 1 missing" in w for w in answer.warnings)


def test_cases_cover_every_provider_and_question() -> None:
    seen = {(c.values[0].spec, c.values[2]) for c in _cases()}
    assert seen == {(t.spec, q) for t in TARGETS for q in QUESTIONS}
