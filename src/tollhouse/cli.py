"""`tollhouse`: a thin command line over the library."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from tollhouse.commands import audit as audit_command
from tollhouse.commands import catalog as catalog_command
from tollhouse.commands import config as config_command
from tollhouse.commands import eval as eval_command
from tollhouse.commands import flags as flags_command
from tollhouse.commands import keys as keys_command
from tollhouse.commands import logs as logs_command
from tollhouse.commands import rollout as rollout_command
from tollhouse.commands import usage as usage_command
from tollhouse.config import (
    ConfigError,
    GatewayConfig,
    default_config,
    load_config,
    load_document,
    parse_config,
)

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
    serve.add_argument(
        "--workers",
        "-w",
        type=_positive_int,
        default=1,
        help="gateway processes sharing the port (default 1); with counters.backend "
        "in_process each enforces its limits on its own",
    )

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

    commands_in_order = (
        keys_command,
        usage_command,
        logs_command,
        eval_command,
        audit_command,
        catalog_command,
        rollout_command,
        config_command,
        flags_command,
    )
    for command in commands_in_order:
        command.register(commands)

    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    try:
        if run is not None:
            return _run_command(run, args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "simulate":
            return _simulate(args)
        return _check_config(args.config)
    except ConfigError as exc:
        print(f"tollhouse: config error: {exc}", file=sys.stderr)
        return 2


def _run_command(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return int(run(args))
    except BrokenPipeError:
        # The reader went away (`tollhouse logs --json | head`): stop quietly, with stdout
        # pointed at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _check_config(path: str) -> int:
    """Every check `serve` makes of a config before it takes a call: the same loader and the
    same builders (gateway_parts.py), nothing opened or written."""
    from tollhouse.gateway_parts import build_parts

    build_parts(load_config(path))
    print(f"{path}: valid")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from tollhouse.gateway import Gateway
    from tollhouse.server.app import create_app
    from tollhouse.server.runner import listen, serve_forever
    from tollhouse.server.workers import serve_workers

    # With a config file, the gateway keeps to config versions (config_versions/): the
    # file is recorded as one at start unless the newest version has its content.
    document = load_document(args.config) if args.config else None
    config: GatewayConfig = (
        parse_config(document, source=args.config) if document is not None else default_config()
    )
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

    def build() -> Gateway:
        try:
            return Gateway(config, document=document, note=f"tollhouse serve -c {args.config}")
        except ConfigError as exc:
            print(f"tollhouse: config error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def serve(gateway: Gateway) -> int:
        serve_forever(
            create_app(gateway),
            host,
            port,
            log_level=config.logging.level,
            access_log=config.logging.access_log,
            sock=sock,
        )
        return 0

    if args.workers == 1:
        gateway = build()
        _serve_banner(config, host, port, args.workers)
        return serve(gateway)
    code = serve_workers(
        build,
        lambda: serve(build()),
        args.workers,
        started=lambda: _serve_banner(config, host, port, args.workers),
    )
    sock.close()
    return code


def _serve_banner(config: GatewayConfig, host: str, port: int, workers: int) -> None:
    simulated = [name for name, p in config.providers.items() if p.type == "simulator"]
    if simulated:
        _banner(
            "SIMULATOR MODE: answers come from the built-in simulator, not a real model.",
            f"Simulated providers: {', '.join(simulated)}.",
            "Set ANTHROPIC_API_KEY / OPENAI_API_KEY (or pass --config) to relay to real providers.",
        )
    if workers > 1 and config.counters.backend == "in_process":
        _banner(
            f"PER-PROCESS LIMITS: counters.backend is in_process, so each of the {workers}",
            "workers enforces every rate limit, concurrency limit and budget on its own",
            f"(up to {workers}x each configured limit in all). Set counters.backend: redis",
            "to share them.",
        )
    served = f"{len(config.models)} models"
    if workers > 1:
        served += f" with {workers} worker processes"
    print(f"tollhouse: serving {served} on http://{host}:{port}", file=sys.stderr)
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


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _banner(*lines: str) -> None:
    rule = "!" * BANNER_WIDTH
    print(rule, file=sys.stderr)
    for line in lines:
        print(f"!! {line}", file=sys.stderr)
    print(rule, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
