"""Batches relayed over real HTTP: the simulator as its own server (the SDKs talk to it as
to a provider), and a gateway whose providers reach it over loopback, a multipart file
upload included."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
from tests.support import GATEWAY_KEY

HI = [{"role": "user", "content": "hello"}]


def wait_for(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def test_the_simulator_serves_message_batches_to_the_anthropic_sdk(simulator_url: str) -> None:
    client = anthropic.Anthropic(base_url=simulator_url, api_key="sim", max_retries=0)
    created = client.messages.batches.create(
        requests=[
            {"custom_id": "ok", "params": {"model": "claude-haiku-4-5", "max_tokens": 9, "messages": HI}},
            {"custom_id": "bad", "params": {"model": "claude-haiku-4-5", "messages": HI}},
        ]
    )  # fmt: skip
    wait_for(lambda: client.messages.batches.retrieve(created.id).processing_status == "ended")
    results = {r.custom_id: r.result for r in client.messages.batches.results(created.id)}
    ok, bad = results["ok"], results["bad"]
    assert ok.type == "succeeded"
    assert ok.message.usage.output_tokens == 9
    assert bad.type == "errored"
    assert bad.error.error.type == "invalid_request_error"
    assert created.id in [b.id for b in client.messages.batches.list(limit=100).data]


def test_the_simulator_fails_an_openai_batch_with_a_bad_line_naming_it(simulator_url: str) -> None:
    client = openai.OpenAI(base_url=simulator_url + "/v1", api_key="sim", max_retries=0)
    good = json.dumps(
        {
            "custom_id": "a",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": HI},
        }
    )
    uploaded = client.files.create(
        file=("in.jsonl", f"{good}\nnot json\n".encode()), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    failed = wait_for(lambda: (b := client.batches.retrieve(batch.id)).status == "failed" and b)
    assert failed.errors is not None
    assert failed.errors.data is not None
    assert [(e.code, e.line) for e in failed.errors.data] == [("invalid_json_line", 2)]


def test_batches_relayed_over_http_reach_their_end_in_both_formats(http_gateway_url: str) -> None:
    claude = anthropic.Anthropic(base_url=http_gateway_url, api_key=GATEWAY_KEY, max_retries=0)
    created = claude.messages.batches.create(
        requests=[
            {"custom_id": "c1", "params": {"model": "claude-haiku-4-5", "max_tokens": 7, "messages": HI}}
        ]
    )  # fmt: skip
    wait_for(lambda: claude.messages.batches.retrieve(created.id).processing_status == "ended")
    (line,) = list(claude.messages.batches.results(created.id))
    assert line.custom_id == "c1"
    assert line.result.type == "succeeded"

    gpt = openai.OpenAI(base_url=http_gateway_url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
    request = {
        "custom_id": "g1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "max_tokens": 7, "messages": HI},
    }
    uploaded = gpt.files.create(file=("in.jsonl", json.dumps(request).encode()), purpose="batch")
    # The provider got the file as the gateway made it: the deployment's model id.
    stored = [json.loads(row) for row in gpt.files.content(uploaded.id).text.splitlines()]
    assert [row["custom_id"] for row in stored] == ["g1"]
    batch = gpt.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait_for(lambda: (b := gpt.batches.retrieve(batch.id)).status == "completed" and b)
    output = gpt.files.content(done.output_file_id).text.splitlines()
    assert [json.loads(row)["response"]["status_code"] for row in output] == [200]
