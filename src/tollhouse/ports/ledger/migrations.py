"""The ledger's schema (`LEDGER`), grown by numbered steps for both backends (see
`ports/schema_migrations.py` for how steps are applied and recorded)."""

from __future__ import annotations

from tollhouse.ports.schema_migrations import Dialect, Schema

LEDGER = Schema(
    table="_ledger_migrations",
    # Any constant works; this one is "tollhous" in ASCII, unlikely to clash with another app's.
    lock_key=0x746F6C6C686F7573,
)


@LEDGER.step
def m001_calls(d: Dialect) -> list[str]:
    # `id` gives a stable order between calls of the same instant; `request_id` is the
    # natural key that makes replays idempotent.
    return [
        f"""
        CREATE TABLE calls (
            id {d.row_id},
            request_id TEXT NOT NULL UNIQUE,
            ts {d.timestamp} NOT NULL,
            client_format TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model_requested TEXT NOT NULL,
            status INTEGER NOT NULL,
            upstream_request_id TEXT,
            key_id TEXT,
            end_user TEXT,
            team TEXT,
            project TEXT,
            session_id TEXT,
            model_served TEXT,
            provider TEXT,
            route TEXT,
            variant TEXT,
            system_prompt_hash TEXT,
            stop_reason TEXT,
            input_tokens {d.integer} NOT NULL,
            output_tokens {d.integer} NOT NULL,
            cache_write_5m_tokens {d.integer} NOT NULL,
            cache_write_1h_tokens {d.integer} NOT NULL,
            cache_read_tokens {d.integer} NOT NULL,
            reasoning_tokens {d.integer} NOT NULL,
            usage_estimated {d.boolean} NOT NULL,
            latency_ms {d.real} NOT NULL,
            ttft_ms {d.real},
            attempts INTEGER NOT NULL,
            fallback_used {d.boolean} NOT NULL,
            cache_hit {d.boolean} NOT NULL,
            cost_usd {d.money},
            error_type TEXT,
            truncated {d.boolean} NOT NULL,
            stream {d.boolean} NOT NULL,
            prompt_text TEXT,
            answer_text TEXT,
            metadata {d.json} NOT NULL
        )
        """
    ]


@LEDGER.step
def m002_calls_indexes(d: Dialect) -> list[str]:
    # (column, ts) rather than (column): reports ask "this key, this week", and the same
    # index still serves a lookup by the column alone.
    by_time = ["model_served", "key_id", "end_user", "team", "project"]
    return ["CREATE INDEX calls_ts ON calls (ts)"] + [
        f"CREATE INDEX calls_{column}_ts ON calls ({column}, ts)" for column in by_time
    ]


@LEDGER.step
def m003_fewer_indexes(d: Dialect) -> list[str]:
    # Measured (bench/ledger.py): every index costs each insert, and the model, team and
    # project indexes served only reports that scan a time range anyway (calls_ts). Kept:
    # time, key and end user, the lookups of `tollhouse logs` and per-customer questions.
    return [
        f"DROP INDEX IF EXISTS calls_{column}_ts" for column in ("model_served", "team", "project")
    ]


@LEDGER.step
def m004_notices_sent(d: Dialect) -> list[str]:
    # Notices told once across restarts and gateways (stages/retirement_alerts.py): the
    # first gateway to insert a key sends the notice, the others see it taken.
    return [
        f"""
        CREATE TABLE notices_sent (
            notice TEXT PRIMARY KEY,
            sent_at {d.timestamp} NOT NULL
        )
        """
    ]


@LEDGER.step
def m005_calls_config_version(d: Dialect) -> list[str]:
    # The config version (ports/config) each call was served by, so reports can group by it.
    return [f"ALTER TABLE calls ADD COLUMN config_version {d.integer}"]


@LEDGER.step
def m006_pool_wait(d: Dialect) -> list[str]:
    # How long a call waited for a free upstream connection (a provider's max_connections
    # reached); NULL when it did not wait, as for every call recorded before this step.
    return [f"ALTER TABLE calls ADD COLUMN pool_wait_ms {d.real}"]


@LEDGER.step
def m007_billing_lines(d: Dialect) -> list[str]:
    # What a call is billed for beyond its tokens (issue 20): the dimensions the usage
    # report groups by, server-tool counts, and the cost by line for the cost report's line
    # items. Calls recorded before this step keep NULL line costs: the cost report shows
    # their cost unitemized rather than guessing a split.
    false = "0" if d.name == "sqlite" else "false"
    columns = [
        "service_tier TEXT",
        "inference_geo TEXT",
        "speed TEXT",
        "context_window TEXT",
        f"audio_input_tokens {d.integer} NOT NULL DEFAULT 0",
        f"audio_output_tokens {d.integer} NOT NULL DEFAULT 0",
        f"web_search_requests {d.integer} NOT NULL DEFAULT 0",
        f"web_fetch_requests {d.integer} NOT NULL DEFAULT 0",
        *(
            f"{line}_cost_usd {d.money}"
            for line in (
                "input",
                "output",
                "cache_write_5m",
                "cache_write_1h",
                "cache_read",
                "audio",
                "web_search",
                "web_fetch",
                "other_tool",
            )
        ),
        f"commitment_billed {d.boolean} NOT NULL DEFAULT {false}",
    ]
    return [f"ALTER TABLE calls ADD COLUMN {column}" for column in columns]


@LEDGER.step
def m008_calls_custom_id(d: Dialect) -> list[str]:
    # The `custom_id` of a Message Batch line (src/tollhouse/batches/): a batch's lines are
    # recorded one call each, found again by the id the client gave them.
    return ["ALTER TABLE calls ADD COLUMN custom_id TEXT"]


@LEDGER.step
def m009_structured_output(d: Dialect) -> list[str]:
    # How a call's structured output went (stages/check/structured_output.py): valid,
    # retried (invalid, then valid after its corrective retry) or invalid; NULL when the
    # call's answer was not required to be structured, as for every call before this step.
    return ["ALTER TABLE calls ADD COLUMN structured_output TEXT"]


@LEDGER.step
def m010_guardrails(d: Dialect) -> list[str]:
    # What each call's input guardrails found (stages/shape/guardrails/), as JSON text on
    # both backends (json_extract / ::jsonb read it); NULL for calls no guardrail checked.
    return ["ALTER TABLE calls ADD COLUMN guardrails TEXT"]


@LEDGER.step
def m011_cost_avoided(d: Dialect) -> list[str]:
    # What a call answered from the response cache did not spend: the cost of the call
    # whose answer it was served (issue 16). NULL for every other call, and for a hit whose
    # original call was unpriced.
    return [f"ALTER TABLE calls ADD COLUMN cost_avoided_usd {d.money}"]


@LEDGER.step
def m012_batches(d: Dialect) -> list[str]:
    # Message Batches kept beside the ledger (ports/batches/), so that every gateway process
    # on this database can serve a batch whoever created it, and its lines are recorded
    # once. Times are epoch seconds; `lines` is JSON text (each line's call as it will be
    # recorded), NULL once they are recorded or, for a file, once it made a batch.
    # `recorded_by` is the process that claimed the recording, `recorded_at` set once it
    # wrote every line: a claim never completed (that process died) is taken over later.
    return [
        f"""
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,
            provider_batch_id TEXT NOT NULL,
            client_format TEXT NOT NULL,
            key_id TEXT,
            provider TEXT NOT NULL,
            models TEXT NOT NULL,
            headers TEXT NOT NULL,
            lines TEXT,
            state TEXT NOT NULL,
            created_at {d.real} NOT NULL,
            recorded_by TEXT,
            claimed_at {d.real},
            recorded_at {d.real}
        )
        """,
        "CREATE INDEX batches_key_id ON batches (key_id, created_at)",
        "CREATE INDEX batches_open ON batches (recorded_at, created_at)",
        f"""
        CREATE TABLE batch_files (
            id TEXT PRIMARY KEY,
            key_id TEXT,
            provider TEXT NOT NULL,
            lines TEXT,
            created_at {d.real} NOT NULL
        )
        """,
    ]


@LEDGER.step
def m013_history_trimmed(d: Dialect) -> list[str]:
    # What a route's history bound dropped from each call's conversation (issue 16): the
    # savings report prices the tokens at the model's input rate.
    return [
        f"ALTER TABLE calls ADD COLUMN history_trimmed_messages {d.integer} NOT NULL DEFAULT 0",
        f"ALTER TABLE calls ADD COLUMN history_trimmed_tokens {d.integer} NOT NULL DEFAULT 0",
    ]


@LEDGER.step
def m014_candidates(d: Dialect) -> list[str]:
    # Routes of candidates listed cheapest first (issue 16): which rule chose where each call
    # started, whether it escalated, and what the answers it escalated from cost.
    false = "0" if d.name == "sqlite" else "false"
    return [
        "ALTER TABLE calls ADD COLUMN route_rule TEXT",
        f"ALTER TABLE calls ADD COLUMN escalated {d.boolean} NOT NULL DEFAULT {false}",
        f"ALTER TABLE calls ADD COLUMN escalated_cost_usd {d.money}",
    ]
