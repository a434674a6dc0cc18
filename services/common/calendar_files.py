"""The calendar files (deploy/config/calendars/<name>.yaml) and the one loader every service
uses to build each municipality's `BusinessCalendar` from them (the calendar itself, in
services/common/calendar.py, reads no files)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.calendar import (
    WEEKDAYS,
    BusinessCalendar,
    LiberationDay,
    parse_opening_hours,
)
from services.common.config import Municipalities, load_yaml_model


class CalendarFile(BaseModel):
    """deploy/config/calendars/<name>.yaml"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    opening_hours: dict[str, list[str]]
    working_days: list[str] = Field(
        default_factory=lambda: ["monday", "tuesday", "wednesday", "thursday", "friday"],
        min_length=1,
    )
    liberation_day: LiberationDay = LiberationDay.LUSTRUM
    closed_on_good_friday: bool = False
    closing_days: list[date] = Field(default_factory=list)
    atw_equated_days: list[date] = Field(default_factory=list)

    @field_validator("opening_hours")
    @classmethod
    def _known_days_and_hours(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, ranges in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday (monday … sunday)")
            try:
                parse_opening_hours(ranges)
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from exc
        return value

    @field_validator("working_days")
    @classmethod
    def _known_days(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in WEEKDAYS]
        if unknown:
            raise ValueError(f"not weekdays: {', '.join(unknown)}")
        return value

    def build(self, zone: ZoneInfo) -> BusinessCalendar:
        return BusinessCalendar(
            zone=zone,
            opening_hours=tuple(
                parse_opening_hours(self.opening_hours.get(day, [])) for day in WEEKDAYS
            ),
            working_weekdays=frozenset(WEEKDAYS.index(d) for d in self.working_days),
            liberation_day=self.liberation_day,
            closed_on_good_friday=self.closed_on_good_friday,
            closing_days=frozenset(self.closing_days),
            atw_equated_days=frozenset(self.atw_equated_days),
        )


def load_calendars(config_dir: Path, municipalities: Municipalities) -> dict[str, BusinessCalendar]:
    """Municipality code → its business calendar, each file read once. Raises `ConfigError`
    naming the file and field of the first mistake."""
    files: dict[str, CalendarFile] = {}
    calendars: dict[str, BusinessCalendar] = {}
    for municipality in municipalities.municipalities:
        name = municipality.calendar
        if name not in files:
            files[name] = load_yaml_model(config_dir / "calendars" / f"{name}.yaml", CalendarFile)
        calendars[municipality.code] = files[name].build(municipality.zone)
    return calendars
