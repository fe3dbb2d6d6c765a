"""Rate-limit headers from real admission decisions: where several scopes limit the same
thing, the headers describe the one with the least headroom left."""

from __future__ import annotations

from tollhouse.ports.counters import Admission, Amounts, BucketLimit, Decision, Takes
from tollhouse.ports.counters.in_process import InProcessCounterStore
from tollhouse.stages.rate_limit_headers import HeaderPlan
from tollhouse.types import WireFormat
from tollhouse.wire.rate_limit_times import rfc3339

NOW = 1_780_000_000.0  # wall clock of the rendering, whole seconds

BUCKETS = (
    BucketLimit("rpm:key:k1", 100, Takes.REQUESTS),
    BucketLimit("rpm:user:k1/alice", 10, Takes.REQUESTS),
    BucketLimit("itpm:key:k1", 10_000, Takes.INPUT),
    BucketLimit("otpm:key:k1", 2_000, Takes.OUTPUT),
)


def decide(amounts: Amounts) -> Decision:
    return InProcessCounterStore(clock=lambda: 0.0).admit_now(Admission(buckets=BUCKETS), amounts)


def rendered(fmt: WireFormat, decision: Decision) -> dict[str, str]:
    plan = HeaderPlan.of(fmt, [(b.key, b.capacity) for b in BUCKETS])
    headers = plan.render(decision, NOW)
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), names  # each header once
    return {name.decode(): value.decode() for name, value in headers}


def test_anthropic_headers_name_the_tightest_scope_of_each_kind() -> None:
    sent = rendered("anthropic", decide(Amounts(input_tokens=500, output_tokens=1_500)))
    # Requests: the end user (10, 9 left) is tighter than the key (100, 99 left).
    assert sent["anthropic-ratelimit-requests-limit"] == "10"
    assert sent["anthropic-ratelimit-requests-remaining"] == "9"
    # 60 s / 10 requests: one request refills in 6 s.
    assert sent["anthropic-ratelimit-requests-reset"] == rfc3339(NOW + 6)
    assert sent["anthropic-ratelimit-input-tokens-limit"] == "10000"
    assert sent["anthropic-ratelimit-input-tokens-remaining"] == "9500"
    assert sent["anthropic-ratelimit-output-tokens-limit"] == "2000"
    assert sent["anthropic-ratelimit-output-tokens-remaining"] == "500"
    # tokens-*: whichever of input and output has less left (output, 500).
    assert sent["anthropic-ratelimit-tokens-limit"] == "2000"
    assert sent["anthropic-ratelimit-tokens-remaining"] == "500"
    assert sent["anthropic-ratelimit-tokens-reset"] == rfc3339(NOW + 45)
    assert len(sent) == 12


def test_the_tightest_follows_the_headroom_not_the_capacity() -> None:
    sent = rendered("anthropic", decide(Amounts(input_tokens=9_900, output_tokens=10)))
    assert sent["anthropic-ratelimit-tokens-limit"] == "10000"  # input: 100 left
    assert sent["anthropic-ratelimit-tokens-remaining"] == "100"


def test_openai_headers_count_input_tokens_and_the_tightest_requests() -> None:
    sent = rendered("openai", decide(Amounts(input_tokens=500, output_tokens=1_500)))
    assert sent == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "6s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9500",
        "x-ratelimit-reset-tokens": "3s",
    }


def test_a_refusal_reports_the_headroom_as_it_stands() -> None:
    store = InProcessCounterStore(clock=lambda: 0.0)
    admission = Admission(buckets=BUCKETS)
    for _ in range(10):
        assert store.admit_now(admission, Amounts()).admitted
    refused = store.admit_now(admission, Amounts())
    assert (refused.admitted, refused.refused_by) == (False, "rpm:user:k1/alice")
    plan = HeaderPlan.of("anthropic", [(b.key, b.capacity) for b in BUCKETS])
    sent = {k.decode(): v.decode() for k, v in plan.render(refused, NOW)}
    assert sent["anthropic-ratelimit-requests-remaining"] == "0"
    assert sent["anthropic-ratelimit-requests-reset"] == rfc3339(NOW + 60)
