"""`s3purge demo`: the local test bed (a moto server and a real cache) purged by the worker."""

from __future__ import annotations

import sys

import click

from s3purge.entry import output


@click.command()
def demo() -> None:
    """Run the local demo: moto S3 + SQS, a real Varnish, and the worker purging it."""
    from s3purge.demo.run import run

    with output.wrapped_text():
        code = run()
    output.emit({"messages": output.settings().messages}, code)
    sys.exit(code)
