"""`python -m services.connector COMMAND`:

serve                          the callback with its workers (HTTP, port 8084)
subscribe GMxxxx [--kanaal K] [--filter K:name=value]
                               register or renew the abonnement with the Notificaties API
unsubscribe GMxxxx             remove it
seed-mapping GMxxxx            add the Catalogi API's zaaktypen to the mapping, for review
seed-case-types GMxxxx         declare the mapping's case types in the municipality's case-type
                               file (what metrics report on by name), for review
norms GMxxxx ZAAKTYPE [--case-type C] [--norm-file PATH]
                               write the norms of a zaaktype's doorlooptijd and servicenorm
                               into the municipality's norm file, for review
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from services.common.config import ConfigError, load_municipalities
from services.common.logging import configure_logging
from services.connector import catalogue
from services.connector.adapters.apis import ApiClient, FetchFailed
from services.connector.config import Source, load_sources
from services.connector.settings import ConnectorSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.connector",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the callback with its workers")
    sub = commands.add_parser("subscribe", help="register or renew the abonnement")
    sub.add_argument("municipality")
    sub.add_argument("--kanaal", action="append", choices=catalogue.KANALEN)
    sub.add_argument("--filter", action="append", default=[], metavar="KANAAL:NAME=VALUE")
    unsub = commands.add_parser("unsubscribe", help="remove the abonnement")
    unsub.add_argument("municipality")
    seed = commands.add_parser("seed-mapping", help="add zaaktypen from the Catalogi API")
    seed.add_argument("municipality")
    declare = commands.add_parser(
        "seed-case-types", help="declare the mapping's case types for the metrics"
    )
    declare.add_argument("municipality")
    norms = commands.add_parser("norms", help="norms from a zaaktype, into the norm file")
    norms.add_argument("municipality")
    norms.add_argument("zaaktype", help="identificatie of the zaaktype")
    norms.add_argument("--case-type", help="default: from the mapping")
    norms.add_argument("--norm-file", type=Path, help="default: the municipality's norm file")
    return parser


def _filters(given: list[str]) -> dict[str, dict[str, str]]:
    filters: dict[str, dict[str, str]] = {}
    for item in given:
        kanaal, _, pair = item.partition(":")
        name, _, value = pair.partition("=")
        if not (kanaal and name and value):
            raise ConfigError(f"--filter {item!r}: give KANAAL:NAME=VALUE")
        filters.setdefault(kanaal, {})[name] = value
    return filters


async def _with_api(
    settings: ConnectorSettings,
    code: str,
    job: Callable[[ApiClient, Source], Awaitable[Any]],
    transport: httpx.AsyncBaseTransport | None = None,
) -> Any:
    sources, _ = load_sources(settings.sources_path())
    source = next((s for s in sources.sources if s.municipality == code.upper()), None)
    if source is None:
        raise ConfigError(f"{settings.sources_path()}: no source for {code}")
    api = ApiClient(
        timeout=settings.fetch_timeout_seconds,
        tries=settings.fetch_tries,
        backoff=settings.fetch_backoff_seconds,
        transport=transport,
    )
    try:
        return await job(api, source)
    finally:
        await api.close()


def run(
    argv: list[str] | None = None,
    settings: ConnectorSettings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """Run one command; returns what to tell the operator. (`transport`: a test's fake APIs.)"""
    args = _parser().parse_args(argv)
    settings = settings or ConnectorSettings()

    def with_api(job: Callable[[ApiClient, Source], Awaitable[Any]]) -> Any:
        return asyncio.run(_with_api(settings, args.municipality, job, transport))

    if args.command == "serve":
        _serve(settings)
        return ""
    if args.command == "subscribe":
        done = with_api(
            lambda api, source: catalogue.subscribe(
                api,
                source,
                kanalen=tuple(args.kanaal or catalogue.KANALEN),
                filters=_filters(args.filter),
            )
        )
        return f"abonnement {done.action}: {done.url}"
    if args.command == "unsubscribe":
        removed = with_api(catalogue.unsubscribe)
        return f"removed {len(removed)} abonnement(en)" + "".join(f"\n  {u}" for u in removed)
    sources, mappings_by_code = load_sources(settings.sources_path())
    source = next((s for s in sources.sources if s.municipality == args.municipality.upper()), None)
    if source is None:
        raise ConfigError(f"{settings.sources_path()}: no source for {args.municipality}")
    mapping_path = settings.sources_path().parent / "mappings" / f"{source.mapping}.yaml"
    if args.command == "seed-mapping":
        found = with_api(catalogue.zaaktypen)
        added = catalogue.seed_mapping(mapping_path, found)
        return f"{mapping_path}: {len(added)} zaaktype(n) added for review" + "".join(
            f"\n  {a}" for a in added
        )
    if args.command == "seed-case-types":
        municipality = load_municipalities(settings.infra.config_dir).by_code()[source.municipality]
        path = settings.infra.config_dir / "case_types" / f"{municipality.case_types}.yaml"
        added = catalogue.seed_case_types(path, mappings_by_code[source.municipality])
        return f"{path}: {len(added)} case type(s) declared for review" + "".join(
            f"\n  {a}" for a in added
        )
    # norms
    found = with_api(lambda api, src: catalogue.zaaktypen(api, src, args.zaaktype))
    if not found:
        raise ConfigError(f"the Catalogi API has no zaaktype {args.zaaktype!r}")
    zaaktype = max(found, key=lambda z: z.url)  # (one per version; any has the terms)
    entry = mappings_by_code[source.municipality].zaaktypen.get(args.zaaktype)
    case_type = args.case_type or (entry.case_type if entry else None)
    if case_type is None:
        raise ConfigError(f"{args.zaaktype} is not in {mapping_path}: give --case-type")
    norm_file = args.norm_file
    if norm_file is None:
        municipality = load_municipalities(settings.infra.config_dir).by_code()[source.municipality]
        norm_file = settings.infra.config_dir / "norms" / f"{municipality.norms}.yaml"
    added = catalogue.write_norms(norm_file, zaaktype, case_type)
    if not added:
        return f"{norm_file}: already has the norms of {args.zaaktype}; nothing written"
    return f"{norm_file}: added {', '.join(added)} for review (then bump its version)"


def _serve(settings: ConnectorSettings) -> None:
    import uvicorn

    from services.connector.bootstrap import bootstrap, configure, shutdown
    from services.connector.entrypoints.callback import create_app

    configuration = configure(settings)  # a mistake in the files stops us before connecting
    app = create_app(lambda: bootstrap(settings, configuration), shutdown)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


def main() -> None:
    settings = ConnectorSettings()
    configure_logging("connector", settings.infra.log_level, settings.infra.log_format)
    try:
        message = run(sys.argv[1:], settings)
    except ConfigError as error:
        sys.exit(f"connector: configuration error: {error}")
    except FetchFailed as error:
        sys.exit(f"connector: {error}")
    if message:
        print(message)


if __name__ == "__main__":
    main()
