"""``aisp bench api``'s aisp.client section: Client.process beside the raw socket client."""

from __future__ import annotations

import pytest


def test_bench_api_measures_the_client_beside_the_raw_socket_client() -> None:
    pytest.importorskip("mediapipe")
    from aisp.bench import api

    result = api.run(quick=True, duration=2.0, compare_reduced_decode=False, compare_bare=False,
                     compare_big_images=False)
    section = result["frames_process_client"]
    for side in ("raw_socket", "aisp_client"):
        assert section[side]["requests_ok"] > 0 and section[side]["requests_bad"] == 0, section
        assert section[side]["client_cpu_ms_per_request"] > 0
        assert len(section[side]["client_cpu_ms_per_request_by_round"]) == section["rounds"] == 2
    cpu = {side: section[side]["client_cpu_ms_per_request"] for side in ("raw_socket", "aisp_client")}
    overhead = cpu["aisp_client"] - cpu["raw_socket"]
    assert section["client_overhead_cpu_ms_per_request"] == pytest.approx(overhead, abs=0.002)
    assert section["goal_met"] == (section["client_overhead_cpu_ms_per_request"] <= 0.3)
    assert section["concurrency"] == 8
