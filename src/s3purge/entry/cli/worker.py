"""`s3purge worker`: consume S3 events from SQS until SIGTERM."""

from __future__ import annotations

from typing import Any

import click

from s3purge.entry import output
from s3purge.entry.cli.base import CONFIG, DEBUG, load_config, setup_logs
from s3purge.entry.cli.queues import queue_url as checked_queue_url


@click.command()
@click.option("--queue-url", required=True, help="SQS queue receiving the bucket's events.")
@click.option("--wait-seconds", default=20, show_default=True, type=click.IntRange(0, 20))
@CONFIG
@DEBUG
def worker(queue_url: str, wait_seconds: int, config_path: str, debug: bool) -> None:
    """Consume S3 events from SQS until SIGTERM (JSON log lines on stdout)."""
    from s3purge.entry.worker import Worker

    queue_url = checked_queue_url("--queue-url", queue_url)
    pipeline = _pipeline(config_path)
    setup_logs(service=True, debug=debug)
    stopwatch = output.Stopwatch()
    Worker(pipeline, queue_url, wait_seconds=wait_seconds).run()
    output.emit({"queue_url": queue_url, "seconds": stopwatch.seconds()})


def _pipeline(config_path: str) -> Any:
    from s3purge.pipeline import Pipeline

    return Pipeline(load_config(config_path))  # a CDN whose secret cannot be fetched fails alone
