"""`python -m services.metrics.report`: the period report for management and the council.

    python -m services.metrics.report --municipality GM0383 --from 2026-01-01 --to 2026-03-31 \\
        [--baseline-from 2025-10-01 --baseline-to 2025-12-31] --out out/report

Writes report.html (inline SVG charts) and CSV files, computed from PostgreSQL (metrics.daily_fact),
not from Prometheus. Without a baseline the equally long period just before is used.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, timedelta
from pathlib import Path

import asyncpg

from services.common.config import load_case_types, load_municipalities
from services.common.settings import InfraSettings
from services.metrics.report.figures import Facts, Period, bound_case_types, compute
from services.metrics.report.render import render_html, write_csv


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.metrics.report", description=__doc__)
    parser.add_argument("--municipality", required=True, help="CBS code, e.g. GM0383")
    parser.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    parser.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    parser.add_argument("--baseline-from", type=date.fromisoformat)
    parser.add_argument("--baseline-to", type=date.fromisoformat)
    parser.add_argument("--out", type=Path, default=Path("out/report"))
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to lies before --from")
    if (args.baseline_from is None) != (args.baseline_to is None):
        parser.error("give both --baseline-from and --baseline-to, or neither")
    return args


def baseline_for(period: Period, start: date | None, end: date | None) -> Period:
    if start is not None and end is not None:
        return Period(start, end)
    length = (period.end - period.start).days + 1
    return Period(period.start - timedelta(days=length), period.start - timedelta(days=1))


async def load_facts(conn: asyncpg.Connection, municipality: str, period: Period) -> Facts:
    rows = await conn.fetch(
        "SELECT fact, dims, sum(value) AS value FROM metrics.daily_fact"
        " WHERE municipality = $1 AND day BETWEEN $2 AND $3 GROUP BY fact, dims",
        municipality,
        period.start,
        period.end,
    )
    return {(r["fact"], tuple(r["dims"])): r["value"] for r in rows}


async def run(args: argparse.Namespace) -> list[Path]:
    infra = InfraSettings()
    listing = load_municipalities(infra.config_dir)
    municipalities = listing.by_code()
    if args.municipality not in municipalities:
        raise SystemExit(
            f"unknown municipality {args.municipality!r}; known: {', '.join(sorted(municipalities))}"
        )
    period = Period(args.start, args.end)
    baseline = baseline_for(period, args.baseline_from, args.baseline_to)
    conn = await asyncpg.connect(infra.database_url)
    try:
        current = await load_facts(conn, args.municipality, period)
        before = await load_facts(conn, args.municipality, baseline)
    finally:
        await conn.close()
    declared = load_case_types(infra.config_dir, listing)[args.municipality]
    current, before = bound_case_types(current, declared), bound_case_types(before, declared)
    figures = compute(
        args.municipality,
        municipalities[args.municipality].name,
        period,
        baseline,
        current,
        before,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    html_path = args.out / "report.html"
    html_path.write_text(render_html(figures), encoding="utf-8")
    return [html_path, *write_csv(figures, args.out)]


def main(argv: list[str] | None = None) -> None:
    written = asyncio.run(run(parse_args(sys.argv[1:] if argv is None else argv)))
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
