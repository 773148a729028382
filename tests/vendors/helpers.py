"""Config and run helpers for the vendor tests: one CDN account, one bucket, real pipeline."""

from __future__ import annotations

import time

from s3purge.config import Config, parse
from s3purge.execute import Executor
from s3purge.model import Change, Report
from s3purge.pipeline import Pipeline


def one_cdn(name: str, account: str, route: str) -> Config:
    """A config with one CDN account (`account`: flow-mapping items) routed from bucket `site`."""
    return parse(f"cdns:\n  {name}: {{{account}}}\nbuckets:\n  site:\n    - {{cdn: {name}, {route}}}\n")


def run(cfg: Config, executor: Executor, *keys: str) -> Report:
    """Purge `keys` of bucket `site` as created objects, one message each."""
    changes = [Change("site", key, "created", f"m{i}") for i, key in enumerate(keys)]
    return Pipeline(cfg, executor).run(changes, time.monotonic() + 15)
