"""Tags from object metadata: HeadObject on a moto server, purged by a Cloudflare emulator."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tenacity import wait_fixed

from s3purge.config import Config, parse
from s3purge.demo.bed import free_port
from s3purge.deploy import Options
from s3purge.deploy.iam import statements
from s3purge.entry.cli import main
from s3purge.errors import ConfigError
from s3purge.execute import Executor
from s3purge.metadata import MetadataReader
from s3purge.model import Change, Report
from s3purge.pipeline import Pipeline
from tests.conftest import serving
from tests.emulators.cloudflare import API_TOKEN, ZONE_ID, CloudflareEmulator
from tests.fixtures import s3_event


def config(api_base: str, route: str = "hosts: [www.example.com], tags_from_metadata: cache-tag") -> Config:
    account = f'vendor: cloudflare, api_base: "{api_base}", zone_id: "{ZONE_ID}", api_token: {API_TOKEN}'
    return parse(f"cdns:\n  cf: {{{account}}}\nbuckets:\n  site:\n    - {{cdn: cf, {route}}}\n")


def purge(cfg: Config, reader: MetadataReader, *changes: Change) -> Report:
    pipeline = Pipeline(cfg, Executor(backoff=wait_fixed(0)), metadata=reader)
    try:
        return pipeline.run(list(changes), time.monotonic() + 20)
    finally:
        pipeline.executor.close()


def sent(cf: CloudflareEmulator, field: str) -> list[str]:
    return sorted(v for r in cf.requests for v in r.json().get(field, []))


def test_created_objects_are_purged_by_the_tags_they_carry(boto: Any) -> None:
    boto.s3.create_bucket(Bucket="site")
    boto.s3.put_object(Bucket="site", Key="p/123.html", Body=b"x", Metadata={"cache-tag": "product-123, shop"})
    boto.s3.put_object(Bucket="site", Key="p/124.html", Body=b"x", Metadata={"cache-tag": "product-124,shop"})
    boto.s3.put_object(Bucket="site", Key="plain.html", Body=b"x")
    reader = MetadataReader(s3=boto.s3)
    with serving(CloudflareEmulator()) as cf:
        keys = ["p/123.html", "p/124.html", "plain.html"]
        report = purge(
            config(cf.api_base), reader, *(Change("site", k, "created", f"m{i}") for i, k in enumerate(keys))
        )
    assert report.ok, [o.detail for o in report.failures()]
    assert sent(cf, "tags") == ["product-123", "product-124", "shop"]  # tags no key template derives
    assert sent(cf, "files") == [f"https://www.example.com/{k}" for k in sorted(keys)]
    assert reader.heads == 3  # one HeadObject per created object


def test_removed_objects_purge_their_urls_only(boto: Any) -> None:
    boto.s3.create_bucket(Bucket="site")
    reader = MetadataReader(s3=boto.s3)
    with serving(CloudflareEmulator()) as cf:
        report = purge(config(cf.api_base), reader, Change("site", "gone.html", "removed", "m1"))
    assert report.ok
    assert (sent(cf, "tags"), sent(cf, "files")) == ([], ["https://www.example.com/gone.html"])
    assert reader.heads == 0  # the metadata went with the object: nothing to ask


def test_unreadable_metadata_fails_that_change_retryably_and_loses_nothing() -> None:
    import boto3
    from botocore.config import Config as BotoConfig

    nothing = f"http://127.0.0.1:{free_port()}"  # S3 unreachable: not "the key is gone"
    s3 = boto3.client("s3", endpoint_url=nothing, config=BotoConfig(retries={"max_attempts": 1}))
    with serving(CloudflareEmulator()) as cf:
        report = purge(config(cf.api_base), MetadataReader(s3=s3), Change("site", "a.html", "created", "m1"))
    (failure,) = report.failures()
    assert failure.retryable and "could not read the object's metadata (EndpointConnectionError)" in failure.detail
    assert failure.batch.cdn == "cf" and failure.batch.sources == {"m1"}  # the message comes back for cf
    assert sent(cf, "files") == ["https://www.example.com/a.html"]  # its URL is purged now all the same


def test_options_are_checked_and_iam_grants_get_object_only_where_used() -> None:
    with pytest.raises(ConfigError, match="tags_from_metadata"):
        config("https://api.example", "hosts: [a.example], tags_from_metadata: X-Amz-Meta-Tag")
    both = parse(
        f'cdns:\n  cf: {{vendor: cloudflare, zone_id: "{ZONE_ID}", api_token: t}}\n'
        "buckets:\n  site: [{cdn: cf, hosts: [a.example], tags_from_metadata: cache-tag}]\n"
        "  other: [{cdn: cf, hosts: [b.example]}]\n"
    )
    grants = [s for s in statements(both, Options()) if "s3:GetObject" in str(s["Action"])]
    assert [g["Resource"] for g in grants] == [[{"Fn::Sub": "arn:${AWS::Partition}:s3:::site/*"}]]


def test_fastly_surrogate_keys_stored_space_separated_are_separate_tags(boto: Any) -> None:
    from tests.emulators.fastly import TOKEN, FastlyEmulator

    boto.s3.create_bucket(Bucket="site")
    # Surrogate-Key is space-separated: stored as served, "product-123 home" is two keys, not "product-123%20home"
    boto.s3.put_object(Bucket="site", Key="p.html", Body=b"x", Metadata={"surrogate-key": "product-123  home\tsale,x"})
    with serving(FastlyEmulator()) as fastly:
        account = f'vendor: fastly, api_base: "{fastly.url}", api_token: {TOKEN}, service_id: SU1Z0isxPaozGVKXdv0eY'
        route = "tags_from_metadata: surrogate-key"
        cfg = parse(f"cdns:\n  fy: {{{account}}}\nbuckets:\n  site:\n    - {{cdn: fy, {route}}}\n")
        report = purge(cfg, MetadataReader(s3=boto.s3), Change("site", "p.html", "created", "m1"))
    assert report.ok, [o.detail for o in report.failures()]
    assert sorted(fastly.purged_keys) == ["home", "product-123", "sale", "x"]


def test_comma_separated_vendors_keep_spaces_inside_their_tags() -> None:
    from s3purge.mapping import split_tags

    assert split_tags(" a b , c,,d ", ",") == ["a b", "c", "d"]  # Cloudflare, CloudFront, Akamai: a comma only
    assert split_tags(" a b , c,,d\n", ", ") == ["a", "b", "c", "d"]


def test_tags_over_cloudfronts_50_per_object_keep_the_first_and_name_the_object(
    boto: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from s3purge.plan import plan
    from s3purge.providers.cloudfront import CloudFront

    boto.s3.create_bucket(Bucket="site")
    tags = [f"t{n}" for n in range(60)]
    boto.s3.put_object(Bucket="site", Key="many.html", Body=b"x", Metadata={"cache-tag": ",".join(tags)})
    cfg = parse(
        "cdns:\n  cf: {vendor: cloudfront, distribution_ids: [E1]}\n"
        "buckets:\n  site: [{cdn: cf, hosts: [a.example], tags_from_metadata: cache-tag}]\n"
    )
    changes, failed = MetadataReader(s3=boto.s3).read(
        [Change("site", "many.html", "created", "m1")], cfg, time.monotonic() + 10
    )
    assert failed == []
    provider = cfg.cdns["cf"].provider
    assert isinstance(provider, CloudFront)
    paths = [p for b in plan(changes, cfg).batches for p in provider.paths(b)]
    assert sorted(paths) == sorted(["/many.html", *(f"#{t}" for t in tags[:50])])  # CloudFront reads the first 50
    (warning,) = [r for r in caplog.records if r.getMessage() == "metadata tags over the vendor's cap"]
    assert (warning.__dict__["key"], warning.__dict__["cdn"], warning.__dict__["ignored"]) == ("many.html", "cf", 10)


def test_replay_runs_the_pipeline_so_it_purges_the_tags_objects_carry(boto: Any, tmp_path: Path) -> None:
    # `s3purge replay` goes through the pipeline the Lambda runs: tags stored on the object are
    # read and purged too (a copy of plan + execute in the CLI left them out).
    boto.s3.create_bucket(Bucket="site")
    boto.s3.put_object(Bucket="site", Key="p/123.html", Body=b"x", Metadata={"cache-tag": "product-123"})
    events = tmp_path / "events.json"
    events.write_text(json.dumps(s3_event("p/123.html", bucket="site")))
    with serving(CloudflareEmulator()) as cf:
        cfg = tmp_path / "c.yml"
        account = f'vendor: cloudflare, api_base: "{cf.api_base}", zone_id: "{ZONE_ID}", api_token: {API_TOKEN}'
        cfg.write_text(
            f"cdns:\n  cf: {{{account}}}\nbuckets:\n  site:\n"
            "    - {cdn: cf, hosts: [www.example.com], tags_from_metadata: cache-tag}\n"
        )
        result = CliRunner().invoke(main, ["replay", "--config", str(cfg), "--yes", str(events)])
    assert result.exit_code == 0, result.output
    assert sent(cf, "tags") == ["product-123"]
    assert sent(cf, "files") == ["https://www.example.com/p/123.html"]
