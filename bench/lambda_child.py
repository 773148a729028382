"""A stand-in for the Lambda runtime, for the memory benchmark: nothing imported but the handler.

`python -m bench.lambda_child EVENT RESULT`: read the invocation JSON from EVENT, parse it
as the runtime does, call the handler once, write its peak RSS and the outcome to RESULT.
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
from pathlib import Path


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def peak_rss_kb() -> int:
    """This process's peak RSS. Linux's getrusage() ru_maxrss carries over the parent's peak
    across fork+exec (so a child of a big process reports at least its size); VmHWM does not."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(event_path: str, result_path: str) -> None:
    from s3purge.entry import aws_lambda

    started = time.monotonic()
    invocation = json.loads(Path(event_path).read_bytes())
    answer = aws_lambda.handler(invocation, Context())
    result = {
        "maxrss_kb": peak_rss_kb(),
        "elapsed": time.monotonic() - started,
        "failures": len(answer.get("batchItemFailures", [])),
    }
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
