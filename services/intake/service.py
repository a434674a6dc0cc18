"""What intake does with a request, in order: who posts (the channel system's token), whether it
may post now (its rate limit), whether the events are admitted (validated, screened, sealed,
framed), and whether Kafka acknowledged them. The answer is the events accepted or a `Refusal`
that the HTTP entrypoint renders as an RFC 9457 problem; nothing here knows HTTP beyond the
status a refusal carries."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from services.common.sealing import Keys, Sealer
from services.intake.adapters.kafka import KafkaWriter, PublishOutcome
from services.intake.domain.admission import (
    MAX_NESTING_DEPTH,
    Admitted,
    FieldProblem,
    NotAdmitted,
    admit,
    admit_json,
    nesting_problem,
)
from services.intake.domain.channel_systems import ChannelSystem, Gatekeeper
from services.intake.domain.rate_limits import RateLimiter, retry_after
from services.intake.metrics import IntakeMetrics
from services.intake.settings import IntakeSettings

log = structlog.get_logger("intake")


@dataclass(frozen=True)
class Refusal:
    """Why a request was not accepted (becomes an RFC 9457 problem)."""

    status: int
    kind: str
    title: str
    detail: str
    errors: list[FieldProblem] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


UNAUTHENTICATED = Refusal(
    401,
    "unauthenticated",
    "Authentication required",
    "send Authorization: Bearer <token of your channel system>",
    headers={"WWW-Authenticate": 'Bearer realm="servicepuls-intake"'},
)


def failure_answer(outcome: PublishOutcome) -> tuple[str, str]:
    """The title and detail of the 503 problem for a write that did not succeed."""
    if outcome is PublishOutcome.NOT_WRITTEN:
        return (
            "Events could not be stored now",
            "Kafka did not take the write; nothing of this request was accepted or will be "
            "written. Retry the same request after Retry-After seconds.",
        )
    return (
        "Outcome unknown: retry the same request",
        "Kafka did not acknowledge the write in time. The events may or may not be stored: "
        "some or all may still be written. Retrying the same request after Retry-After "
        "seconds is safe; an event with the same source and id has no second effect.",
    )


@dataclass
class Intake:
    settings: IntakeSettings
    gatekeeper: Gatekeeper
    keys: Keys
    sealer: Sealer
    metrics: IntakeMetrics
    limiter: RateLimiter
    writer: KafkaWriter

    # --- before the body is read ------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> ChannelSystem | Refusal:
        system = self.gatekeeper.authenticate(authorization)
        return UNAUTHENTICATED if system is None else system

    def out_of_tokens(self, system: ChannelSystem) -> Refusal | None:
        """Out of tokens already: refused before the body is read or checked (a flood costs
        intake next to nothing). Whether a request fits is decided once its events are known."""
        wait = self.limiter.bucket(system.name).wait_for(1)
        return self._rate_limited(system, None, wait) if wait else None

    def too_large(self, limit: int) -> Refusal:
        self.metrics.rejected.labels("too_large").inc()
        return Refusal(
            413, "too-large", "Request too large", f"the body may be at most {limit} bytes"
        )

    # --- one event, a batch -----------------------------------------------------------------

    async def post_event(self, system: ChannelSystem, body: bytes) -> list[Admitted] | Refusal:
        return self._debit_refused(system, await self._post_event(system, body))

    async def post_batch(self, system: ChannelSystem, body: bytes) -> list[Admitted] | Refusal:
        return self._debit_refused(system, await self._post_batch(system, body))

    async def _post_event(self, system: ChannelSystem, body: bytes) -> list[Admitted] | Refusal:
        fast = admit_json(body, system=system, keys=self.keys, many=False, sealer=self.sealer)
        if fast is not None:
            return await self._accept(system, fast)
        document = self._parse_json(body)
        if isinstance(document, Refusal):
            return document
        try:
            event = admit(document, system=system, keys=self.keys, sealer=self.sealer)
        except NotAdmitted as error:
            self.metrics.rejected.labels("forbidden" if error.status == 403 else "invalid").inc()
            return _not_admitted(error)
        return await self._accept(system, [event])

    async def _post_batch(self, system: ChannelSystem, body: bytes) -> list[Admitted] | Refusal:
        settings = self.settings
        fast = admit_json(body, system=system, keys=self.keys, many=True, sealer=self.sealer)
        if fast is not None and len(fast) <= settings.max_batch_events:
            return await self._accept(system, fast)
        # Something is wrong with the batch: find out what, document by document.
        documents = self._parse_json(body)
        if isinstance(documents, Refusal):
            return documents
        if not isinstance(documents, list) or not documents:
            return Refusal(
                422,
                "invalid-batch",
                "The batch is not valid",
                "the body must be a non-empty JSON array of CloudEvents",
                errors=[FieldProblem("", "must be a non-empty JSON array")],
            )
        if len(documents) > settings.max_batch_events:
            self.metrics.rejected.labels("too_large").inc()
            return Refusal(
                413,
                "too-large",
                "Too many events in one batch",
                f"a batch holds at most {settings.max_batch_events} events; got {len(documents)}",
            )
        events: list[Admitted] = []
        failed: list[dict[str, Any]] = []
        statuses: set[int] = set()
        for index, document in enumerate(documents):
            try:
                events.append(admit(document, system=system, keys=self.keys, sealer=self.sealer))
            except NotAdmitted as error:
                statuses.add(error.status)
                failed.append(
                    {
                        "index": index,
                        "status": error.status,
                        "errors": [
                            {"pointer": f"/{index}{p.pointer}", "detail": p.detail}
                            for p in error.problems
                        ],
                    }
                )
        if failed:
            status = 422 if 422 in statuses else 403
            self.metrics.rejected.labels("invalid" if status == 422 else "forbidden").inc(
                len(documents)
            )
            return Refusal(
                status,
                "invalid-batch" if status == 422 else "forbidden",
                "The batch was not accepted",
                f"{len(failed)} of {len(documents)} events failed; nothing was accepted. "
                "Each item names the event by index, the field and why.",
                items=failed,
            )
        return await self._accept(system, events)

    async def _accept(
        self, system: ChannelSystem, events: list[Admitted]
    ) -> list[Admitted] | Refusal:
        """Charge the system's rate limit, write to Kafka and wait for the acknowledgement."""
        refused = self._charge(system, len(events))
        if refused is not None:
            return refused
        outcome, failure = await self.writer.write(e.record for e in events)
        if outcome is not PublishOutcome.WRITTEN:
            return self._publish_failed(outcome, failure, len(events))
        for municipality, count in Tally(e.municipality for e in events).items():
            self.metrics.accepted.labels(municipality, system.name).inc(count)
        return events

    # --- refusals ---------------------------------------------------------------------------

    def _publish_failed(
        self, outcome: PublishOutcome, failure: BaseException | None, events: int
    ) -> Refusal:
        """The 503 for a write that did not succeed, saying truly whether anything may still be
        written (services/intake/adapters/kafka.py)."""
        self.metrics.publish_failures.inc()
        if outcome is PublishOutcome.UNKNOWN:
            self.metrics.publish_unknown_outcomes.inc()
        log.warning(
            "kafka did not acknowledge",
            error=type(failure).__name__,
            cause=type(failure.__cause__).__name__ if failure and failure.__cause__ else None,
            outcome=str(outcome),
            events=events,
        )
        title, detail = failure_answer(outcome)
        return Refusal(
            503,
            "kafka-unavailable",
            title,
            detail,
            extra={"outcome": str(outcome), "retry_safe": True},
            headers={"Retry-After": str(self.settings.retry_after_seconds)},
        )

    def _rate_limited(self, system: ChannelSystem, events: int | None, wait: float) -> Refusal:
        self.metrics.rate_limited_requests.labels(system.name).inc()
        if events is not None:
            self.metrics.rate_limited_events.labels(system.name).inc(events)
        limit = system.rate_limit
        seconds = retry_after(wait)
        return Refusal(
            429,
            "rate-limited",
            "Too many events from this channel system",
            f"channel system {system.name!r} may post {limit.events_per_second:g} events per "
            f"second, {limit.burst} at once; nothing of this request was accepted. Retry the "
            f"same request after {seconds} s (Retry-After).",
            headers={"Retry-After": str(seconds)},
        )

    def _charge(self, system: ChannelSystem, events: int) -> Refusal | None:
        """Take a token per event, all or none: None when taken, else the 413 or 429 refusal."""
        bucket = self.limiter.bucket(system.name)
        if events > bucket.burst:
            self.metrics.rejected.labels("too_large").inc(events)
            return Refusal(
                413,
                "too-large",
                "Too many events in one request for this channel system",
                f"channel system {system.name!r} may post at most {bucket.burst} events at "
                f"once (its burst); got {events}. Split the batch.",
            )
        wait = bucket.take(events)
        return self._rate_limited(system, events, wait) if wait else None

    def _debit_refused(
        self, system: ChannelSystem, answer: list[Admitted] | Refusal
    ) -> list[Admitted] | Refusal:
        """A refused request costs its system a token too, so that a flood of bad requests is
        limited like one of good ones (accepted and rate-limited ones were charged already)."""
        if isinstance(answer, Refusal) and answer.status in (400, 403, 413, 422):
            self.limiter.bucket(system.name).debit(1)
        return answer

    def _parse_json(self, body: bytes) -> Any | Refusal:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self.metrics.rejected.labels("invalid").inc()
            if "depth limit" in exc.msg:  # JSON, but nested beyond what the parser follows
                return Refusal(
                    422,
                    "invalid-event",
                    "The event is not valid",
                    f"nested deeper than {MAX_NESTING_DEPTH} levels",
                    errors=[nesting_problem(())],
                )
            return Refusal(
                400, "malformed-json", "The body is not JSON", f"{exc.msg} at position {exc.pos}"
            )


def _not_admitted(error: NotAdmitted) -> Refusal:
    if error.status == 403:
        return Refusal(
            403, "forbidden", "Not allowed for this channel system", error.problems[0].detail
        )
    return Refusal(
        422,
        "invalid-event",
        "The event is not valid",
        f"{len(error.problems)} problem(s); each names the field (JSON Pointer) and why",
        errors=error.problems,
    )
