"""`servicepuls`: the operator's command line.

    servicepuls run {intake,norms,feedback,metrics,connector}   run one service (env settings)
    servicepuls deadletters list [--service S] [--reason R] [--topic T] [--json]
    servicepuls deadletters redrive ORIGIN ... | --all [--service S] [--reason R] [--topic T]
    servicepuls recompute ...     norms outcomes of a catalog version; --emit revises to it
    servicepuls rebuild ...       norms state rebuilt from the intake topic in bulk (COPY)
    servicepuls report ...        the period report for management and the council
    servicepuls simulate ...      the simulated municipality (realistic traffic through intake)
    servicepuls connector ...     the Notificaties API connector (serve, subscribe, norms, ...)

Each subcommand has `--help`. Connection settings come from the environment, as for the
services (`SERVICEPULS_KAFKA_BOOTSTRAP`, `SERVICEPULS_DATABASE_URL`, ...; `source .stack/env`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from services.common.deadletters import DEADLETTER_TOPIC, DeadLetter, Reason, read_all, redrive
from services.common.settings import InfraSettings

SERVICES = ("intake", "norms", "feedback", "metrics", "connector")
# Subcommands that are whole programs of their own: their arguments are passed on unchanged.
PASS_ON = {
    "recompute": (
        "services.norms.recompute",
        "norms outcomes of a catalog version, from the log; --emit revises to it",
    ),
    "rebuild": (
        "services.norms.rebuild",
        "norms state rebuilt from the intake topic in bulk, handed over to the live consumer",
    ),
    "report": ("services.metrics.report.__main__", "the period report (HTML and CSV)"),
    "simulate": ("simulator.cli", "a simulated municipality posting through intake"),
    "connector": (
        "services.connector.entrypoints.cli",
        "the Notificaties API connector: serve, subscribe, seed-mapping, norms",
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="servicepuls",
        description="Servicepuls operator commands.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run one service in the foreground")
    run.add_argument("service", choices=SERVICES)

    letters = commands.add_parser(
        "deadletters", help="list dead letters, or send them back to their topic"
    )
    actions = letters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every dead letter now on the topic")
    _filters(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    again = actions.add_parser(
        "redrive",
        help="send the originals back to their topic (after a fix; consumers dedupe by event)",
    )
    again.add_argument(
        "origins", nargs="*", metavar="ORIGIN", help="topic/partition/offset, as `list` shows"
    )
    again.add_argument("--all", action="store_true", help="every dead letter the filters match")
    _filters(again)

    for name, (_, summary) in PASS_ON.items():
        passed = commands.add_parser(name, help=summary, add_help=False)
        passed.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", choices=SERVICES, help="set aside by this service")
    parser.add_argument("--reason", choices=[str(r) for r in Reason], help="with this reason")
    parser.add_argument("--topic", help="from this original topic")
    parser.add_argument(
        "--deadletter-topic", default=DEADLETTER_TOPIC, help=argparse.SUPPRESS
    )  # tests


def _matching(letters: Sequence[DeadLetter], args: argparse.Namespace) -> list[DeadLetter]:
    return [
        d
        for d in letters
        if (args.service is None or d.service == args.service)
        and (args.reason is None or d.reason == args.reason)
        and (args.topic is None or d.origin_topic == args.topic)
    ]


def _show(letters: Sequence[DeadLetter], as_json: bool) -> None:
    if as_json:
        for d in letters:
            print(
                json.dumps(
                    {
                        "origin": d.origin,
                        "service": d.service,
                        "reason": d.reason,
                        "error": d.error,
                        "set_aside_at": d.set_aside_at,
                        "bytes": len(d.value or b""),
                    }
                )
            )
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("origin (topic/partition/offset)", "service", "reason", "set aside", "error"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(d.origin, d.service, d.reason, d.set_aside_at, d.error)
    Console().print(table)


async def _dead_letters(args: argparse.Namespace) -> int:
    bootstrap = InfraSettings().kafka_bootstrap
    letters = _matching(await read_all(bootstrap, args.deadletter_topic), args)
    if args.action == "list":
        _show(letters, args.json)
        return 0
    if args.origins:
        wanted = set(args.origins)
        chosen = [d for d in letters if d.origin in wanted]
        unknown = wanted - {d.origin for d in chosen}
        if unknown:
            print(f"no such dead letter: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    elif args.all:
        chosen = letters
    else:
        print("name the dead letters to re-drive (ORIGIN ...), or give --all", file=sys.stderr)
        return 2
    unfit = [d.origin for d in chosen if not d.redrivable]
    if unfit:
        print(
            f"not records of a Servicepuls topic, so not re-driven: {', '.join(unfit)} "
            "(a connector notification comes again from the Notificaties API, or is replayed "
            "from the case system)",
            file=sys.stderr,
        )
        chosen = [d for d in chosen if d.redrivable]
    sent = await redrive(bootstrap, chosen)
    print(f"{sent} record(s) sent back to their topic")
    return 0


def _run_service(name: str) -> int:
    if name == "connector":
        return main(["connector", "serve"])
    module = importlib.import_module(f"services.{name}.__main__")
    module.main()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASS_ON:
        module = importlib.import_module(PASS_ON[argv[0]][0])
        sys.argv = [f"servicepuls {argv[0]}", *argv[1:]]
        takes_argv = bool(inspect.signature(module.main).parameters)
        outcome = module.main(argv[1:]) if takes_argv else module.main()
        if asyncio.iscoroutine(outcome):
            outcome = asyncio.run(outcome)
        return int(outcome or 0)
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run_service(args.service)
    return asyncio.run(_dead_letters(args))


if __name__ == "__main__":
    sys.exit(main())
