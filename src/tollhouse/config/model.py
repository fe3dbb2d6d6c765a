"""The shape of a configuration snapshot.

Frozen msgspec structs: validated once at load (msgspec's errors name the offending key as a
path like `$.providers.main.type`), immutable afterwards, so a snapshot can be shared by every
request and swapped atomically on reload.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from tollhouse.catalog.models import CatalogOverrides
from tollhouse.config.input_guardrails import InputGuardrailConfig, UntrustedContentConfig
from tollhouse.config.prompt_cache import PromptCachePolicy
from tollhouse.config.rollout import GuardrailsConfig, PromotionConfig, SplitConfig
from tollhouse.observability.alerts_config import AlertsConfig
from tollhouse.observability.tracing_config import TracingConfig

ProviderType = Literal["anthropic", "openai", "openai-compatible", "simulator"]


PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeSeconds = Annotated[float, msgspec.Meta(ge=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The HTTP edge (server/http_protocol.py), read at start. A request's head must arrive
    within `header_timeout` seconds of the connection opening (or of its first byte, on a
    kept-alive connection) and its body within `body_timeout` of the head, else 408; a head
    (request line and headers) over `max_header_bytes` gets 431. `max_connections` bounds
    open client connections per process (default: half the open-file limit): at it, the
    connection waiting longest for a request is closed to make room, or the new one is
    refused with 503, and a warning says so.

    On SIGTERM the calls in flight get `drain_seconds` to finish; then each one still running
    is ended with an error in its client's format (529/503, a stream's error event), recorded
    and settled, before exit (server/drain.py). Keep it below the orchestrator's kill timeout
    (Kubernetes: 30 s) by a few seconds."""

    host: str = "127.0.0.1"
    port: int = 8080
    drain_seconds: Annotated[float, msgspec.Meta(ge=0)] = 25.0
    header_timeout: PositiveSeconds = 10.0
    body_timeout: PositiveSeconds = 30.0
    max_header_bytes: PositiveInt = 64 * 1024
    max_connections: PositiveInt | None = None


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rate limits per minute (token buckets) and concurrent calls; None means no limit of
    that kind. `input_tpm` counts the gateway's estimate at admission, corrected to the
    provider's count after the call; `output_tpm` reserves `max_tokens` and settles to the
    tokens actually produced."""

    rpm: PositiveInt | None = None
    input_tpm: PositiveInt | None = None
    output_tpm: PositiveInt | None = None
    concurrency: PositiveInt | None = None


BudgetMode = Literal["clamp", "reserve"]


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Spend caps in US dollars, exact; None means no cap for that period. Days and months
    are UTC calendar periods.

    Each call holds its worst case (estimated input plus `max_tokens`, or the model's whole
    output limit when the request sets none) until it settles. `mode` decides what happens
    when that worst case exceeds what is left: `clamp` (the default) lowers the call's
    `max_tokens` to what the rest of the budget affords, and refuses only when not even a
    minimal answer fits; `reserve` refuses the call and says which `max_tokens` would fit."""

    daily_usd: Decimal | None = None
    monthly_usd: Decimal | None = None
    mode: BudgetMode = "clamp"

    def __post_init__(self) -> None:
        for field in ("daily_usd", "monthly_usd"):
            value = getattr(self, field)
            if value is not None and not (value.is_finite() and value >= 0):
                raise ValueError(f"{field} must be a finite amount >= 0")


class KeysConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Gateway keys (ports/keys). With `required`, every call must present an active key
    (`x-api-key` or `Authorization: Bearer`); without, the gateway is open and says so at
    start. The store defaults to the ledger's SQLite file; `postgres` is a secret reference
    to a connection string. A revocation reaches every process within `cache_ttl_seconds`."""

    required: bool = False
    backend: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: str = "tollhouse.db"
    postgres: str | None = None
    cache_ttl_seconds: NonNegativeSeconds = 5.0


class ConfigStoreConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where config versions are kept (ports/config) and how often a gateway looks for a
    newer one. Unset, the store is the keys store's database (`keys.backend`,
    `keys.sqlite_path` or `keys.postgres`); `postgres` is a secret reference to a
    connection string. Every gateway on one store serves its newest version within
    `poll_seconds` (plus the time to build it) of its being stored. Read at start."""

    backend: Literal["sqlite", "postgres"] | None = None
    sqlite_path: str | None = None
    postgres: str | None = None
    poll_seconds: PositiveSeconds = 2.0


class CountersConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where rate-limit buckets, concurrency leases and budget spend live: in this process,
    or in Redis so that every gateway process enforces one limit. `redis_url` may be a
    secret reference (`env:`/`file:`) when it carries a password. When Redis can't be
    reached, `on_unavailable` admits calls (`open`) or refuses them with 503 (`closed`);
    either way it is logged, counted on /metrics and shown by /readyz."""

    backend: Literal["in_process", "redis"] = "in_process"
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "tollhouse:counters:"
    timeout_seconds: PositiveSeconds = 0.5
    on_unavailable: Literal["open", "closed"] = "open"


class SpendControlConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Limits and budgets beyond each key's own (which live on the key).

    `end_user_limits`/`end_user_budget` apply to each end user of a key allowed to name
    them, unless the key sets its own. `unpriced` decides what happens to a call whose model
    has no price (its worst case can't be computed): `admit` reserves
    `unpriced_estimate_usd` against budgets, `refuse` refuses it wherever a budget applies.
    Models priced at zero are never blocked by a budget."""

    global_limits: Limits = Limits()
    end_user_limits: Limits = Limits()
    end_user_budget: Budget = Budget()
    teams: dict[str, Limits] = {}
    team_budgets: dict[str, Budget] = {}
    project_budgets: dict[str, Budget] = {}
    unpriced: Literal["admit", "refuse"] = "admit"
    unpriced_estimate_usd: Decimal = Decimal("0.05")

    def __post_init__(self) -> None:
        value = self.unpriced_estimate_usd
        if not (value.is_finite() and value >= 0):
            raise ValueError("unpriced_estimate_usd must be a finite amount >= 0")


class InputLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bounds on one request, checked before it reaches a provider
    (stages/shape/input_limits.py). Each may be set globally (`limits.input`), per route
    and per gateway key; the tightest applies. `max_tokens_cap` either lowers a larger
    `max_tokens` (`clamp`) or refuses the call (`refuse`)."""

    max_request_bytes: PositiveInt | None = None
    max_input_tokens: PositiveInt | None = None
    max_messages: PositiveInt | None = None
    max_tokens_cap: PositiveInt | None = None
    max_tokens_mode: Literal["clamp", "refuse"] = "clamp"


# The request parser refuses nesting deeper than this (and the encoder the gateway re-encodes
# bodies with, deeper than 254).
MAX_PARSED_DEPTH = 200


class LimitsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bounds on what a client may send; checked before anything reaches a provider.

    Bodies still being received (server/body_reader.py, read at start): at most
    `max_body_reads_per_key` at once per gateway key (per client address on an open
    gateway; past it 429), and `max_partial_body_bytes` held by them in all (past it
    529/503).

    `max_body_bytes`, `max_messages`, `max_json_containers` and `max_json_depth` hold for
    every request whatever its key or route (wire/body_bounds.py): they keep one request
    from holding the process. `input` is the per-call policy that routes and keys may
    narrow further."""

    max_body_bytes: PositiveInt = 32 * 1024 * 1024
    max_body_reads_per_key: PositiveInt = 64
    max_partial_body_bytes: PositiveInt = 256 * 1024 * 1024
    max_messages: PositiveInt = 10_000
    max_json_containers: PositiveInt = 50_000
    max_json_depth: Annotated[int, msgspec.Meta(ge=2, le=MAX_PARSED_DEPTH)] = 64
    input: InputLimits = InputLimits()


class TimeoutsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Seconds. `first_byte` bounds each attempt's wait for the upstream's answer to start
    (status line, and the first chunk of a stream); `read_idle` the silence between chunks,
    and (gateway-wide, read at start) how long a client may read nothing of an answer
    waiting to be written before it is dropped;
    `total` the whole call until its answer starts, retries and waits included. A client
    lowers `total` for its call with `x-tollhouse-timeout`; the official SDKs send their own
    timeout (`x-stainless-timeout`, `x-stainless-read-timeout`), honoured the same way, so the
    gateway answers before the client gives up."""

    connect: PositiveSeconds = 10.0
    first_byte: PositiveSeconds = 120.0
    read_idle: PositiveSeconds = 120.0
    total: PositiveSeconds = 600.0


class RetryPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Attempts per deployment, with exponential backoff and full jitter between them.
    An upstream `retry-after` longer than `max_retry_after` is not waited for: the call moves
    to the next deployment (or fails fast) instead."""

    max_attempts: PositiveInt = 3
    base_delay: NonNegativeSeconds = 0.25
    max_delay: NonNegativeSeconds = 8.0
    max_retry_after: NonNegativeSeconds = 20.0


class BreakerPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    consecutive_failures: PositiveInt = 5
    error_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    min_calls: PositiveInt = 20
    window_seconds: PositiveSeconds = 30.0
    open_seconds: PositiveSeconds = 15.0


# What makes an answer move on to the route's next (dearer) candidate instead of reaching the
# client (stages/dispatch/escalation.py): a refusal, a cut answer, a failed answer check.
EscalationName = Literal["refusal", "truncation", "check"]

FailureName = Literal[
    "rate_limit", "overloaded", "server_error", "timeout", "connection", "context_window"
]
ALL_FALLBACK_CLASSES: tuple[FailureName, ...] = (
    "rate_limit",
    "overloaded",
    "server_error",
    "timeout",
    "connection",
    "context_window",
)


class DegradePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a client gets when every deployment failed: `error`, a clean overload error
    (529 Anthropic / 503 OpenAI, 429 when every failure was a rate limit) with `Retry-After`;
    `static`, a normal answer with `static_text`; or `stale_cache`, the route's last cached
    answer to the same request even past its TTL (within `cache.stale_seconds`), else the
    error. Degraded answers are marked `x-tollhouse-degraded: true`."""

    mode: Literal["error", "static", "stale_cache"] = "error"
    static_text: str = ""
    retry_after_seconds: NonNegativeInt = 10


class TruncationPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A `max_tokens` / `length` stop is always flagged (header and record). On top of that:
    `retry_larger` retries once with `max_tokens` raised to `max_tokens_cap`; `refuse`
    answers 422 instead of passing a truncated answer off, for routes that need complete
    structured output. On a stream, `refuse` ends a cut stream with an error event; a stream
    cannot be retried once read, so `retry_larger` flags it (see stages/check/truncation.py).
    With `retry_larger`, `max_tokens_cap` may not be above the input limits' (refused at load)."""

    mode: Literal["flag", "retry_larger", "refuse"] = "flag"
    max_tokens_cap: PositiveInt = 16384


class StructuredOutputPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A route's structured output, validated (stages/check/structured_output.py). `schema`
    names a JSON Schema of the config's `schemas` that a text answer must be JSON matching
    (a request's `x-tollhouse-schema` header can name one too); without one, the schema the
    request itself asks for (OpenAI `response_format` json_schema or json_object, Anthropic
    `output_config.format`) when `request_schema` is on; `tool_inputs` requires each
    tool call's input to match the schema of the tool the request offered. An answer that
    does not parse or validate, or was cut at its length limit, is tried once more with the
    validation error fed back as a follow-up turn (`retry`); still invalid, it is refused
    (`on_invalid: refuse`, 422 with the error) or passed on and recorded (`flag`). A stream
    is validated at its end (`stream: validate_at_end`: a failure ends it with the format's
    error event in place of its normal end, or is recorded under `flag`), or taken whole
    from the upstream first and then replayed (`buffer`), so that the retry stays hidden."""

    schema: str | None = None
    request_schema: bool = True
    tool_inputs: bool = False
    on_invalid: Literal["refuse", "flag"] = "refuse"
    retry: bool = True
    stream: Literal["validate_at_end", "buffer"] = "validate_at_end"


class CachePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Exact-match response caching for a route: off unless `ttl_seconds` > 0. Answers stay
    usable for degradation `stale_seconds` past their TTL."""

    ttl_seconds: NonNegativeSeconds = 0.0
    stale_seconds: NonNegativeSeconds = 0.0


class ResponseCacheConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the answers of cached routes (`models.<route>.cache`) are kept (ports/cache):
    in this process (`in_process`, gone with it), in a SQLite file (`sqlite`, survives a
    restart) or in Redis (`redis`, one cache for every gateway process). The store holds at
    most `max_entries` answers and `max_bytes` bytes, dropping those nearest their end
    first; an answer larger than `max_entry_bytes` is never stored. `redis_url` may be a
    secret reference (`env:`/`file:`). A store that can't be reached within
    `timeout_seconds` turns a lookup into a miss, never a failed call."""

    backend: Literal["in_process", "sqlite", "redis"] = "in_process"
    max_entries: PositiveInt = 10_000
    max_bytes: PositiveInt = 256 * 1024 * 1024
    max_entry_bytes: PositiveInt = 4 * 1024 * 1024
    sqlite_path: str = "tollhouse-cache.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "tollhouse:cache:"
    timeout_seconds: PositiveSeconds = 0.25


class BatchesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Message Batches (Anthropic `/v1/messages/batches`, OpenAI `/v1/batches` with
    `/v1/files`), relayed by src/tollhouse/batches/. `max_requests`: requests one batch may
    hold (Anthropic takes up to 100,000, OpenAI 50,000; the gateway keeps each line until
    it is recorded, so this and `max_open` bound its memory). `max_open`: batches and
    batch input files this gateway process holds at once (created, not yet recorded);
    past it a new one is refused with 429. `poll_seconds`: how often the process that
    created a batch asks its provider whether it has ended, to record its lines."""

    enabled: bool = True
    max_requests: PositiveInt = 10_000
    max_open: PositiveInt = 100
    poll_seconds: PositiveSeconds = 30.0


class ReliabilityConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    max_in_flight: PositiveInt = 2048


class ProviderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An upstream. `api_key` is a reference (`env:NAME` or `file:PATH`), never the key.

    `ca_bundle`: a PEM file (or hashed directory) of CAs trusted for this upstream's TLS
    certificate instead of the default store. `proxy`: `off`, or an `http://host:port` proxy
    URL (a secret reference to it when it holds a password) reached with CONNECT; unset, the
    HTTPS_PROXY / HTTP_PROXY / NO_PROXY environment decides (providers/proxy_selection.py).
    `simulator_headers`: forward the client's `x-simulator-*` test headers (fault injection)
    to this upstream; only for a `tollhouse simulate` server reached over HTTP. Every other
    upstream never sees them.

    `max_connections`: a cap on open connections to this upstream, for one that limits them.
    Unset (the default), none: a stream holds its connection for its whole length, so a cap
    makes the calls after it queue behind long streams. What bounds the connections then is
    the calls in flight, themselves bounded by `server.max_connections` (by default half the
    open-file limit: the other half is for these). With a cap, a call that waits for a free
    connection is counted (`tollhouse_upstream_pool_waits`), logged, and its record says how
    long (`pool_wait_ms`).
    """

    type: ProviderType
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = {}
    max_connections: PositiveInt | None = None
    ca_bundle: str | None = None
    proxy: str | None = None
    simulator: dict[str, Any] = {}
    simulator_headers: bool = False


class CandidateRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When a call needs at least this deployment of a route listed cheapest first
    (stages/route/candidates.py): any condition set here that holds. `input_tokens_above`:
    the request's estimated input; `last_user_matches`: a regular expression searched in
    the text of the last user turn; `classifier`: a function `module.path:name` (or
    `module.path.name`) called with that text, true for a hard one; `tool_present`: the
    request offers any tool (`true`) or the tool of that name."""

    input_tokens_above: NonNegativeInt | None = None
    last_user_matches: str | None = None
    classifier: str | None = None
    tool_present: bool | str | None = None


class Deployment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One place a model is served: a provider and the model id it knows it by. `when`:
    on a route whose deployments are candidates listed cheapest first, the rule that
    makes a call start here rather than at a cheaper one."""

    provider: str
    model: str
    when: CandidateRule | None = None


# What a call to a retired model gets (stages/lifecycle.py): refused with 404 before any
# upstream, sent to the catalog's replacement instead, or relayed anyway.
RetiredModelAction = Literal["refuse", "remap", "allow"]
# What a call gets that sets a parameter its model refuses (the catalog's `parameter_rules`,
# stages/shape/parameter_rules.py): the parameter dropped, the call refused with 400, or
# the parameter relayed as sent.
ParameterRuleAction = Literal["drop", "refuse", "relay"]


class LifecyclePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Gateway-wide: what calls to retired models get (`retired`) and calls that set a
    parameter their model refuses (`parameters`)."""

    retired: RetiredModelAction = "refuse"
    parameters: ParameterRuleAction = "drop"


class RouteLifecyclePolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A route's own `LifecyclePolicy`; an unset field takes the gateway-wide one."""

    retired: RetiredModelAction | None = None
    parameters: ParameterRuleAction | None = None


class SystemPromptEdit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A variant's change to the request's system prompt: `replace` it with `text` (or set
    it when the request has none), `prepend` or `append` `text` (separated by a blank line)."""

    mode: Literal["replace", "prepend", "append"]
    text: str


# Where a variant puts prompt-cache breakpoints (`cache_control: {type: ephemeral}`) on an
# Anthropic-format request: the system prompt's last block, the last tool, the last message.
CachePlacement = Literal["system", "tools", "last_message"]


class Variant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One arm of a route's traffic split. `weight` is its share in percent (0 to 100, at
    most two decimals; a route's weights sum to 100). Unset, everything is the route's own.

    `model` serves the variant by another route of this config (its whole deployment
    chain) or, when no route has that name, by that catalog model on the route's own
    deployments' providers; `deployments` sets the chain outright. `system`, `tools`
    (Anthropic's shape: name, description, input_schema; translated for OpenAI-format
    requests), `parameters` (set on the request, e.g. temperature; `max_tokens` is the
    format's own field) and `cache_control` change the request before it is shaped.
    `retry`, `timeouts`, `truncation`, `hedge_after_ms` and `input_limits` replace the
    route's policies for the variant's calls."""

    weight: Annotated[float, msgspec.Meta(ge=0, le=100)]
    model: str | None = None
    deployments: tuple[Deployment, ...] | None = None
    system: SystemPromptEdit | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    parameters: dict[str, Any] = {}
    cache_control: tuple[CachePlacement, ...] = ()
    retry: RetryPolicy | None = None
    timeouts: TimeoutsConfig | None = None
    truncation: TruncationPolicy | None = None
    hedge_after_ms: NonNegativeSeconds | None = None
    input_limits: InputLimits | None = None


class HistorySummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A summary of the messages a history bound drops, written by the route `model` of
    this config (a cheap one) in at most `max_tokens` tokens and put where they were, as a
    user message. The last `cache_entries` summaries are kept (by what they summarise), so
    a conversation that grows one turn at a time is summarised once per dropped span."""

    model: str
    max_tokens: PositiveInt = 400
    cache_entries: PositiveInt = 1024


class HistoryBound(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A token budget for a route's conversations (stages/shape/history_bound.py): a
    request whose estimated input (system prompt, tools and messages, counted as the input
    limits count it) is above `max_input_tokens` is sent with its oldest turns dropped, not
    refused. The system prompt is always kept, the first user message when
    `keep_first_user`, then the most recent messages that fit; a tool call is never
    separated from its result. With `summary`, what was dropped is summarised."""

    max_input_tokens: PositiveInt
    keep_first_user: bool = True
    summary: HistorySummary | None = None


class ModelRoute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The model name (or alias) clients send, mapped to its ordered deployments: the first
    serves, the others are its fallback chain, tried in order on the failure classes listed in
    `fallback_on`. Unset policies take the gateway-wide defaults.

    Deployments listed cheapest first with `when` rules are candidates: a call starts at
    the dearest whose rule holds (the first when none does), and an answer that ends in a
    kind `escalate_on` lists goes on to the next one, as a failure falls back.

    With `variants`, calls are split between them by weight (`split`), the variant named
    `control` being the one the others are judged against (`guardrails`) and promoted
    beside (`promotion`); see `tollhouse/rollout/`.

    `input_guardrails` names, in order, the guardrails of the top-level `input_guardrails`
    that its calls pass through before admission; `untrusted` marks content of its calls
    as untrusted (config/input_guardrails.py)."""

    deployments: tuple[Deployment, ...]
    retry: RetryPolicy | None = None
    timeouts: TimeoutsConfig | None = None
    fallback_on: tuple[FailureName, ...] = ALL_FALLBACK_CLASSES
    escalate_on: tuple[EscalationName, ...] = ()
    degrade: DegradePolicy = DegradePolicy()
    truncation: TruncationPolicy = TruncationPolicy()
    structured_output: StructuredOutputPolicy | None = None
    hedge_after_ms: NonNegativeSeconds | None = None
    cache: CachePolicy = CachePolicy()
    prompt_cache: PromptCachePolicy = PromptCachePolicy()
    input_limits: InputLimits | None = None
    history: HistoryBound | None = None
    lifecycle: RouteLifecyclePolicy = RouteLifecyclePolicy()
    variants: dict[str, Variant] = {}
    control: str = "control"
    split: SplitConfig = SplitConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()
    promotion: PromotionConfig = PromotionConfig()
    input_guardrails: tuple[str, ...] = ()
    untrusted: UntrustedContentConfig | None = None


class LoggingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    # One JSON line per call (the ledger record, scrubbed): "off", "stdout", "stderr" or a
    # file path. Written in batches by a background task, never on the request path.
    call_log: str = "off"


class LedgerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the record of every call goes (see ports/ledger).

    `postgres` is a secret reference (`env:NAME` / `file:PATH`) to a libpq connection
    string, because one usually carries a password. `text` decides whether prompt and answer
    text are kept: never by default; `redacted` after PII scrubbing; `full` only when asked.
    """

    backend: Literal["sqlite", "postgres", "off"] = "sqlite"
    sqlite_path: str = "tollhouse.db"
    postgres: str | None = None
    spill_path: str | None = "tollhouse-ledger.spill"
    spill_max_bytes: PositiveInt = 1 << 30
    text: Literal["off", "redacted", "full"] = "off"
    max_text_chars: PositiveInt = 32_768
    max_queue: PositiveInt = 100_000
    batch_size: PositiveInt = 500
    flush_interval: PositiveSeconds = 0.2
    # A batch write the store hasn't finished in this many seconds counts as a store
    # failure: the records are spilled and /readyz reports the ledger degraded.
    write_timeout_seconds: PositiveSeconds = 5.0
    # `batched`: records are written in batches; a SIGKILL loses the last batch window.
    # `synced`: each record is fsync'd (in groups) to the spill file before the answer's
    # last byte leaves (ports/ledger/journal.py).
    durability: Literal["batched", "synced"] = "batched"


class ConversationsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Conversations the gateway holds for its clients (ports/conversations): Anthropic
    message threads (`thread: {type: continue}`) and the OpenAI Responses API's
    `previous_response_id`, expanded into the full history before routing. In the ledger's
    SQLite file by default, on PostgreSQL or Redis when several gateways share them, or
    `off` (threaded requests are refused with `thread_unsupported_request`). Each stored
    turn belongs to the gateway key that made it, lives `ttl_seconds`, and is kept only up to
    `max_bytes`; a key keeps at most `max_per_key` (its oldest are dropped first). A turn not
    kept is refused on its continuation (`thread_not_found`), and the SDKs then send the
    whole conversation again."""

    backend: Literal["sqlite", "postgres", "redis", "off"] = "sqlite"
    sqlite_path: str = "tollhouse.db"
    postgres: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "tollhouse:conversations:"
    ttl_seconds: PositiveSeconds = 7 * 86400.0
    max_bytes: PositiveInt = 8 << 20
    max_per_key: PositiveInt = 10_000
    timeout_seconds: PositiveSeconds = 2.0


class DashboardConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The operator's page at `/dashboard` (dashboard/). One signs in with the admin token
    (`TOLLHOUSE_ADMIN_TOKEN`: every view and action) or with `read_only_token`, a secret
    reference (`env:NAME` / `file:PATH`) to a token that shows every view but can act on
    nothing. A sign-in lasts `session_seconds`; at most `max_sessions` sign-outs are
    remembered per process (each until its session would have ended). Read at start."""

    enabled: bool = True
    read_only_token: str | None = None
    session_seconds: PositiveSeconds = 8 * 3600.0
    max_sessions: PositiveInt = 10_000


class GatewayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    server: ServerConfig = ServerConfig()
    limits: LimitsConfig = LimitsConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    reliability: ReliabilityConfig = ReliabilityConfig()
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelRoute] = {}
    catalog: CatalogOverrides = CatalogOverrides()
    lifecycle: LifecyclePolicy = LifecyclePolicy()
    response_cache: ResponseCacheConfig = ResponseCacheConfig()
    batches: BatchesConfig = BatchesConfig()
    logging: LoggingConfig = LoggingConfig()
    ledger: LedgerConfig = LedgerConfig()
    alerts: AlertsConfig = AlertsConfig()
    keys: KeysConfig = KeysConfig()
    counters: CountersConfig = CountersConfig()
    spend: SpendControlConfig = SpendControlConfig()
    config_store: ConfigStoreConfig = ConfigStoreConfig()
    conversations: ConversationsConfig = ConversationsConfig()
    dashboard: DashboardConfig = DashboardConfig()
    # Named JSON Schemas that routes (`structured_output.schema`) and requests (the
    # `x-tollhouse-schema` header) require answers to match; each compiled once at load.
    schemas: dict[str, dict[str, Any]] = {}
    # Input guardrails by name, for routes to list (config/input_guardrails.py).
    input_guardrails: dict[str, InputGuardrailConfig] = {}
    tracing: TracingConfig = TracingConfig()
    # Named values other settings refer to as `flag:NAME` (config/flags.py), resolved at
    # load; kept here so that stages can read a flag by name.
    flags: dict[str, bool | int | float | str] = {}
