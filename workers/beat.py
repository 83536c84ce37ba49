"""The beat schedule: the nightly retrain (cron from MUSICINDEX_RETRAIN_CRON)."""

from __future__ import annotations

from celery.schedules import crontab

from musicindex.config import Settings
from musicindex.dispatch import TASK_RETRAIN_SCHEDULED


def beat_schedule(settings: Settings) -> dict:
    minute, hour, day_of_month, month_of_year, day_of_week = settings.retrain_cron.split()
    return {
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
