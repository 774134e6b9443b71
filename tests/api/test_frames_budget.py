"""The megapixel budget of ``POST /api/frames/process`` (issue 13, item 16).

Images are admitted by the pixels they will occupy once decoded (read from the header), not only
by count: four concurrent 40-megapixel PNGs with ``annotate=true`` are decoded one after another
under the default 64-megapixel budget, an image larger than the whole budget is 413 naming the
setting, and one that waits too long is 503 ``OVERLOADED`` with ``Retry-After``. The assertions
read the budget's counters; the test holds the budget itself (on the app's event loop) to make
the requests queue, instead of relying on timing.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aisp.api.pixel_budget import SETTING, PixelBudget
from aisp.errors import OverloadedError, PayloadTooLargeError
from tests.api.conftest import Harness, assert_error, encode, start_app

URL = "/api/frames/process"
BIG = (8000, 5000)  # 40 megapixels, the default max_pixels


def _wait_until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def big_png() -> bytes:
    import numpy as np

    w, h = BIG
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :, 1] = (np.arange(w, dtype=np.uint32) * 255 // w).astype(np.uint8)  # a gradient
    return encode(img, ".png")


@pytest.fixture(scope="module")
def budget_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    # four pool threads, so the pool is not what serialises the big images: the budget is
    yield from start_app(
        tmp_path_factory.mktemp("budget"), inference_threads=4, frames_budget_wait_seconds=600.0
    )


def _budget(api: Harness) -> PixelBudget:
    budget = api.ctx.pixel_budget
    assert budget is not None
    return budget


def test_four_40_megapixel_pngs_do_not_decode_at_once(budget_api: Harness, big_png: bytes) -> None:
    api, budget = budget_api, _budget(budget_api)
    assert budget.capacity == 64_000_000  # the default: one 40-megapixel image at a time
    portal = api.client.portal
    assert portal is not None
    # hold the whole budget, so that the four requests are all waiting before any decodes
    portal.call(budget.acquire, budget.capacity)
    admitted0, waited0 = budget.admitted, budget.waited
    results: list[Any] = [None] * 4

    def post(i: int) -> None:
        results[i] = api.client.post(
            URL, params={"models": "fake", "annotate": "true"}, content=big_png,
            headers={"Content-Type": "image/png"},
        )

    threads = [threading.Thread(target=post, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        _wait_until(lambda: budget.stats().waiting == 4)
    finally:

        def release_and_reset() -> None:
            budget.peak = 0
            budget.release(budget.capacity)

        portal.call(release_and_reset)
    for t in threads:
        t.join(300)
    for r in results:
        assert r is not None and r.status_code == 200, r and r.text
        assert r.headers["content-type"] == "image/jpeg"
    stats = budget.stats()
    w, h = BIG
    assert stats.peak == w * h  # never two of them decoded at once
    assert stats.waited - waited0 == 4 and stats.admitted - admitted0 == 4
    assert stats.in_use == 0 and stats.waiting == 0


def test_an_image_larger_than_the_budget_is_413_naming_the_setting(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import numpy as np

    data = encode(np.zeros((1000, 2000, 3), np.uint8), ".png")  # 2 megapixels
    app = contextmanager(start_app)
    with app(tmp_path_factory.mktemp("small-budget"), frames_max_megapixels_in_flight=1.5) as api:
        for kwargs in ({"content": data}, {"files": {"file": ("a.png", data, "image/png")}}):
            r = api.client.post(URL, params={"models": "fake"}, **kwargs)
            err = assert_error(r, 413, "PAYLOAD_TOO_LARGE")
            assert SETTING in err["message"] and err["details"]["setting"] == SETTING
            assert err["details"]["limit"] == 1_500_000 and err["details"]["actual"] == 2_000_000
        small = encode(np.zeros((1000, 1000, 3), np.uint8), ".png")
        assert api.client.post(URL, params={"models": "fake"}, content=small).status_code == 200
        assert _budget(api).refused == 2 and _budget(api).in_use == 0


def test_waiting_too_long_is_503_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    import numpy as np

    data = encode(np.zeros((100, 100, 3), np.uint8), ".png")
    app = contextmanager(start_app)
    with app(tmp_path_factory.mktemp("short-wait"), frames_budget_wait_seconds=0.2) as api:
        budget = _budget(api)
        portal = api.client.portal
        assert portal is not None
        portal.call(budget.acquire, budget.capacity)
        try:
            r = api.client.post(URL, params={"models": "fake"}, content=data)
        finally:
            portal.call(budget.release, budget.capacity)
        err = assert_error(r, 503, "OVERLOADED")
        assert SETTING in err["message"] and r.headers["retry-after"] == "1"
        assert budget.timeouts == 1 and budget.stats().waiting == 0 and budget.in_use == 0
        assert api.client.post(URL, params={"models": "fake"}, content=data).status_code == 200
        metrics = api.client.get("/metrics").text
        assert "aisp_frames_budget_timeouts_total 1.0" in metrics
        assert "aisp_frames_pixels_budget 6.4e+07" in metrics
        assert "aisp_frames_pixels_in_flight 0.0" in metrics


# --- the budget on its own ------------------------------------------------------------------


def test_fifo_order_a_large_image_is_not_starved() -> None:
    async def scenario() -> list[str]:
        budget = PixelBudget(10, wait_seconds=5)
        order: list[str] = []
        await budget.acquire(6)

        async def req(name: str, pixels: int) -> None:
            await budget.acquire(pixels)
            order.append(name)

        big = asyncio.create_task(req("big", 8))
        await asyncio.sleep(0)
        small = asyncio.create_task(req("small", 2))  # would fit now, but waits behind "big"
        await asyncio.sleep(0)
        assert budget.stats().waiting == 2 and order == []
        budget.release(6)
        await asyncio.gather(big, small)
        assert budget.in_use == 10 and budget.peak == 10
        return order

    assert asyncio.run(scenario()) == ["big", "small"]


def test_a_cancelled_or_timed_out_waiter_lets_the_next_one_in() -> None:
    async def scenario() -> None:
        budget = PixelBudget(10, wait_seconds=0.05)
        await budget.acquire(5)
        with pytest.raises(OverloadedError):
            await budget.acquire(8)  # times out
        budget.wait_seconds = 5
        first = asyncio.create_task(budget.acquire(8))
        await asyncio.sleep(0)
        second = asyncio.create_task(budget.acquire(5))  # behind the first
        await asyncio.sleep(0)
        first.cancel()  # the client went away
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.wait_for(second, 1)  # fits beside the 5 held: admitted at once
        assert budget.in_use == 10 and budget.timeouts == 1 and budget.stats().waiting == 0
        with pytest.raises(PayloadTooLargeError):
            await budget.acquire(11)

    asyncio.run(scenario())


def test_a_lease_abandoned_before_its_job_starts_frees_the_pixels_once() -> None:
    async def scenario() -> None:
        budget = PixelBudget(10, wait_seconds=1)
        lease = await budget.lease(7)
        lease.abandon()  # the request failed before the pool ran the job
        assert budget.in_use == 0
        assert lease.start() is False  # the job, if it runs later, does nothing
        lease.release()  # idempotent
        assert budget.in_use == 0
        lease2 = await budget.lease(7)
        assert lease2.start() is True
        lease2.abandon()  # the job is running: its pixels stay held until it ends
        assert budget.in_use == 7
        await asyncio.to_thread(lease2.release)  # from the pool thread
        await asyncio.sleep(0)
        assert budget.in_use == 0

    asyncio.run(scenario())
