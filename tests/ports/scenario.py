"""How the port tests run a scenario on a store, one way for every port: in a fresh event
loop, on a new store (opened first, for the ports that have `open`), closed afterwards
whatever the scenario did."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def scenario_runner(
    new_store: Callable[[], Any], *, open_first: bool = True
) -> Callable[[Callable[[Any], Awaitable[T]]], T]:
    """`run(scenario)`: `scenario(store)` on a store from `new_store`; its result."""

    def run(scenario: Callable[[Any], Awaitable[T]]) -> T:
        async def main() -> T:
            store = new_store()
            if open_first:
                await store.open()
            try:
                return await scenario(store)
            finally:
                await store.aclose()

        return asyncio.run(main())

    return run
