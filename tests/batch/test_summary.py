"""What a batch tells its user: the report, the asset extra, the failure summary."""

from __future__ import annotations

from airflow_provider_gptimage.batch.records import ItemStatus as S
from airflow_provider_gptimage.batch.records import ResultRow
from airflow_provider_gptimage.batch.summary import report
from airflow_provider_gptimage.protocol.batch import build_batch


def test_report_lists_every_key_with_totals():
    items, _ = build_batch([{"key": k, "prompt": k} for k in "abcd"])
    rows = [
        ResultRow(0, "j0", "fail", (), "boom"),
        ResultRow(0, "j0b", "success", ("file:///o/a.png",)),  # a later row (next try) wins
        ResultRow(1, "j1", "fail", (), "failMsg"),
        ResultRow(2, None, "existing", ("file:///o/c.png",)),
    ]
    result = report(items, [S.SUCCEEDED, S.FAILED, S.EXISTING, S.PENDING], rows, uris_are_outputs=True)
    assert {k: result[k] for k in ("total", "succeeded", "failed", "existing", "not_started")} == {
        "total": 4,
        "succeeded": 1,
        "failed": 1,
        "existing": 1,
        "not_started": 1,
    }
    by_key = {entry["key"]: entry for entry in result["items"]}
    assert by_key["a"] == {
        "key": "a",
        "job_id": "j0b",
        "state": "success",
        "output_uris": ["file:///o/a.png"],
        "result_urls": [],
        "error": None,
    }
    assert by_key["b"]["error"] == "failMsg"
    assert by_key["d"]["state"] == "not_started"
    urls = report(items, [S.SUCCEEDED] + [S.PENDING] * 3, rows[:2], uris_are_outputs=False)
    assert urls["items"][0]["result_urls"] == ["file:///o/a.png"]
