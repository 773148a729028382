"""AWS Signature Version 4 as an httpx auth flow, signed by botocore (CloudFront's API).

botocore is imported on first use: it ships in the Lambda runtime, and vendors other than
CloudFront never load it.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import httpx

from s3purge.errors import Rejected


class SigV4(httpx.Auth):
    """Signs every attempt anew with botocore (imported lazily; it ships in Lambda)."""

    requires_request_body = True

    def __init__(self, service: str, region: str) -> None:
        self.service, self.region = service, region
        self._credentials: Any = None
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        # Sign only what no proxy rewrites: botocore adds Host from the URL, as httpx sends it.
        headers = {"Content-Type": request.headers.get("content-type", "")}
        signed = AWSRequest(request.method, str(request.url), headers, request.content)
        SigV4Auth(self._frozen(), self.service, self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request

    def _frozen(self) -> Any:
        with self._lock:  # one credential lookup per process; refreshable ones renew themselves
            if self._credentials is None:
                from botocore.session import get_session

                self._credentials = get_session().get_credentials()
        if self._credentials is None:
            raise Rejected("no AWS credentials", "give the function a role, or set AWS_* variables")
        return self._credentials.get_frozen_credentials()
