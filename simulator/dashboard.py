"""The terminal view of a run: a progress bar and a live summary (rich), and the final
"where to look" panel."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.run import Progress as RunProgress
from simulator.watch import Outcomes


@dataclass(frozen=True, slots=True)
class Endpoints:
    intake: str = "http://127.0.0.1:8080"
    norms: str = "http://127.0.0.1:8081"
    feedback: str = "http://127.0.0.1:8082"
    metrics: str = "http://127.0.0.1:8083"
    prometheus: str = "http://127.0.0.1:9090"
    mail_web: str = "http://127.0.0.1:8025"
    maildir: Path | None = None


class Dashboard:
    def __init__(
        self,
        progress: RunProgress,
        outcomes: Outcomes | None,
        channel_mix: Counter[str],
        names: dict[str, str],
        surveys_answered: Counter[str] | None = None,
    ) -> None:
        self.progress = progress
        self.outcomes = outcomes
        self.channel_mix = channel_mix
        self.names = names
        self.surveys_answered = surveys_answered
        self.bar = Progress(
            TextColumn("[bold]simulated[/] {task.fields[sim_now]}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[posted]} events posted"),
            TimeElapsedColumn(),
        )
        self.task: TaskID = self.bar.add_task("run", total=1.0, sim_now="", posted=0)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        p = self.progress
        local = p.sim_now.astimezone(p.plan.zone)
        self.bar.update(
            self.task,
            completed=p.fraction,
            sim_now=local.strftime("%a %d %b %H:%M"),
            posted=p.posted,
        )
        yield self.bar
        yield self.summary(options.max_width)

    def summary(self, width: int = 120) -> RenderableType:
        if width < 110:  # a narrow terminal: one table under the other
            return Group(
                self.norm_table(), self.survey_table(), self.channel_table(), self.case_table()
            )
        grid = Table.grid(padding=(0, 2))
        grid.add_row(self.channel_table(), Group(self.survey_table(), self.case_table()))
        return Group(self.norm_table(), grid)

    def norm_table(self) -> Table:
        table = Table(
            title="Service norms (this run)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            caption="compliance = met / (met + missed), against the goal; open = still running",
            caption_justify="left",
        )
        columns = ("norm", "goal", "met", "missed", "compliance", "open", "breached", "warned")
        table.add_column("norm", overflow="fold")
        for column in columns[1:]:
            table.add_column(column, justify="right", no_wrap=True)
        norms = self.outcomes.norms if self.outcomes else {}
        if not norms:
            table.add_row("[dim]waiting for norm outcomes…[/]", *[""] * (len(columns) - 1))
        for norm_id in sorted(norms):
            tally = norms[norm_id]
            compliance = tally.compliance
            if compliance is None:
                shown = "[dim]–[/]"
            else:
                kept = compliance >= tally.goal
                colour, mark = ("green", "✓") if kept else ("red", "✗")
                shown = f"[{colour}]{compliance:.0%} {mark}[/]"
            table.add_row(
                norm_id,
                f"{tally.goal:.0%}",
                str(tally.met),
                str(tally.missed),
                shown,
                str(max(0, tally.started - tally.met - tally.missed - tally.cancelled)),
                str(tally.breached),
                str(tally.warnings),
            )
        return table

    def survey_table(self) -> Table:
        table = Table(title="Satisfaction (KTO)", title_justify="left", show_header=False)
        table.add_column("what")
        table.add_column("value", justify="right")
        outcomes = self.outcomes
        if outcomes is None:
            table.add_row("[dim]not watched[/]", "")
            return table
        sent = outcomes.surveys["sent"]
        responded = outcomes.surveys["responded"]
        table.add_row("surveys sent", str(sent))
        table.add_row("answered", f"{responded}" + (f" ({responded / sent:.0%})" if sent else ""))
        mean = outcomes.mean_score
        table.add_row("average score (1–10)", f"{mean:.1f}" if mean is not None else "–")
        for code, scores in sorted(outcomes.scores_by_municipality.items()):
            name = self.names.get(code, code)
            table.add_row(f"  {name}", f"{sum(scores) / len(scores):.1f} (n={len(scores)})")
        suppressed = sum(outcomes.suppressed.values())
        top = ", ".join(f"{r} {n}" for r, n in outcomes.suppressed.most_common(3))
        table.add_row("not asked", f"{suppressed}" + (f" ({top})" if top else ""))
        return table

    def case_table(self) -> Table:
        table = Table(title="Open cases", title_justify="left")
        table.add_column("municipality")
        table.add_column("open", justify="right")
        for code, cases in sorted(self.progress.open_cases.items()):
            table.add_row(self.names.get(code, code), str(len(cases)))
        table.add_row("[dim]closed during run[/]", f"[dim]{self.progress.closed_cases}[/]")
        return table

    def channel_table(self) -> Table:
        table = Table(title="Channel mix (contacts in)", title_justify="left")
        table.add_column("channel", no_wrap=True)
        table.add_column("contacts", justify="right")
        table.add_column("share", justify="right")
        total = sum(self.channel_mix.values())
        for channel, count in self.channel_mix.most_common():
            table.add_row(channel, str(count), f"{count / total:.0%}" if total else "")
        return table


def where_to_look(
    endpoints: Endpoints, *, ledger: Path, report: Path | None, survey_link: str | None
) -> Panel:
    lines = [
        f"[bold]Intake API[/]         {endpoints.intake}/docs  (OpenAPI: {endpoints.intake}/openapi.json)",
        f"[bold]Metrics[/]            {endpoints.metrics}/metrics  (norms {endpoints.norms}/metrics, "
        f"feedback {endpoints.feedback}/metrics, intake {endpoints.intake}/metrics)",
        f"[bold]Prometheus[/]         {endpoints.prometheus}/graph  (try: sum by (norm, outcome) (servicepuls_norm_clocks_stopped_total))",
        f"[bold]Survey e-mails[/]     {endpoints.mail_web}"
        + (f"  (Maildir {endpoints.maildir})" if endpoints.maildir else ""),
        f"[bold]Survey page[/]        {survey_link or '(the link in any survey e-mail)'}",
        f"[bold]Simulator ledger[/]   {ledger}",
    ]
    if report:
        lines.append(f"[bold]Period report[/]      {report}")
    return Panel("\n".join(lines), title="Where to look", title_align="left")
