"""`tollhouse`: a thin command line over the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from tollhouse.commands import keys as keys_command
from tollhouse.commands import logs as logs_command
from tollhouse.commands import usage as usage_command
from tollhouse.config import ConfigError, GatewayConfig, default_config, load_config

BANNER_WIDTH = 78


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tollhouse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", "-c", help="YAML or TOML config file (default: embedded defaults)"
    )
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", "-p", type=int, help="listen port (overrides server.port)")

    simulate = commands.add_parser(
        "simulate", help="run the built-in upstream simulator as a server"
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", "-p", type=int, default=8090)
    simulate.add_argument("--config", "-c", help="YAML file with simulator options")
    simulate.add_argument("--ttft-ms", type=float, help="time to first token, milliseconds")
    simulate.add_argument("--tokens-per-second", type=float, help="streaming pace (0: unpaced)")
    simulate.add_argument("--seed", type=int, help="seed of the generated text")

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config")

    for command in (keys_command, usage_command, logs_command):
        command.register(commands)

    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    try:
        if run is not None:
            return int(run(args))
        if args.command == "serve":
            return _serve(args)
        if args.command == "simulate":
            return _simulate(args)
        load_config(args.config)
        print(f"{args.config}: valid")
        return 0
    except ConfigError as exc:
        print(f"tollhouse: config error: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from tollhouse.gateway import Gateway
    from tollhouse.server.app import create_app
    from tollhouse.server.runner import listen, serve_forever

    config: GatewayConfig = load_config(args.config) if args.config else default_config()
    logging.basicConfig(
        level=config.logging.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host = args.host or config.server.host
    port = args.port or config.server.port
    try:
        sock = listen(host, port)
    except OSError as error:
        print(
            f"tollhouse: cannot listen on {host}:{port}: {error.strerror or error}; "
            "set server.port (--port) or server.host (--host) to a free address",
            file=sys.stderr,
        )
        return 2
    gateway = Gateway(config)
    simulated = gateway.simulated_providers
    if simulated:
        _banner(
            "SIMULATOR MODE: answers come from the built-in simulator, not a real model.",
            f"Simulated providers: {', '.join(simulated)}.",
            "Set ANTHROPIC_API_KEY / OPENAI_API_KEY (or pass --config) to relay to real providers.",
        )
    print(
        f"tollhouse: serving {len(gateway.router.models)} models on http://{host}:{port}",
        file=sys.stderr,
    )
    print(f"  Anthropic SDK: base_url=http://{host}:{port}", file=sys.stderr)
    print(f"  OpenAI SDK:    base_url=http://{host}:{port}/v1", file=sys.stderr)
    if not config.keys.required:
        print(
            "  OPEN GATEWAY: no gateway key is required (keys.required: false); "
            "anyone who reaches this port can spend on your providers",
            file=sys.stderr,
        )
    if not os.environ.get("TOLLHOUSE_ADMIN_TOKEN"):
        print("  admin API disabled: set TOLLHOUSE_ADMIN_TOKEN to enable it", file=sys.stderr)
    serve_forever(
        create_app(gateway),
        host,
        port,
        log_level=config.logging.level,
        access_log=config.logging.access_log,
        sock=sock,
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import yaml

    from tollhouse.simulator.asgi import serve
    from tollhouse.simulator.config import SimulatorConfig

    options: dict[str, object] = {}
    if args.config:
        with open(args.config) as handle:
            options = dict(yaml.safe_load(handle) or {})
    for key in ("ttft_ms", "tokens_per_second", "seed"):
        value = getattr(args, key)
        if value is not None:
            options[key] = value
    try:
        config = SimulatorConfig.from_mapping(options)
    except ValueError as exc:
        raise ConfigError(f"simulator: {exc}") from None
    serve(config, args.host, args.port)
    return 0


def _banner(*lines: str) -> None:
    rule = "!" * BANNER_WIDTH
    print(rule, file=sys.stderr)
    for line in lines:
        print(f"!! {line}", file=sys.stderr)
    print(rule, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
