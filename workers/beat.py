"""The beat schedule: the nightly retrain (cron from MUSICINDEX_RETRAIN_CRON) and, with
MUSICINDEX_RESCAN_INTERVAL, a rescan of the music folders (where file events do not arrive)."""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab

from musicindex.config import Settings
from musicindex.dispatch import TASK_RESCAN, TASK_RETRAIN_SCHEDULED


def beat_schedule(settings: Settings) -> dict:
    minute, hour, day_of_month, month_of_year, day_of_week = settings.retrain_cron.split()
    schedule = {
        "nightly-retrain": {
            "task": TASK_RETRAIN_SCHEDULED,
            "schedule": crontab(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
            ),
        }
    }
    if settings.rescan_interval > 0:
        # a rescan that could not start before the next one is due is dropped, not stacked up
        schedule["rescan"] = {
            "task": TASK_RESCAN,
            "schedule": timedelta(seconds=settings.rescan_interval),
            "options": {"expires": settings.rescan_interval},
        }
    return schedule
