"""Usage and cost reports over the call ledger, shaped as Anthropic's Admin API answers
them (`usage_report` for `/v1/organizations/usage_report/messages`, `cost_report` for
`/v1/organizations/cost_report`). Pure functions of a `LedgerStore` and the parsed query
string: the server maps them to HTTP, and a `BadRequest` to a 400."""

from tollhouse.reports.cost import cost_report
from tollhouse.reports.usage import usage_report

__all__ = ["cost_report", "usage_report"]
