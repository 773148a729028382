"""What metrics and progress bars cost at start-up: s3purge's own EMF lines against Powertools' Metrics
(Lambda cold start), and tqdm against rich (CLI start, bulk commands only).

Each case is a fresh interpreter (`python -X importtime -c CODE`) beside its baseline: the
figure is the import time of the modules the case loads beyond the baseline's, the least
of RUNS (this machine is shared: the least is the run with the least interference). The
baseline is what the Lambda handler loads anyway (config, mapping, model, logs) for the
metrics cases, a bare `import logging, json` for the progress bars. A case whose package is not
installed is skipped (`pip install aws-lambda-powertools rich` to compare).

    python -m bench.metrics_cost
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

RUNS = 15
BASE = "import logging, json"
HANDLER_BASE = "import logging, json, s3purge.config, s3purge.mapping, s3purge.model, s3purge.logs"
OWN_EMF = (
    HANDLER_BASE
    + """
import s3purge.metrics as m
from s3purge.model import Report
logging.getLogger("s3purge").addHandler(logging.NullHandler())
m.watch(); m.publish(Report(), type("C", (), {"routes": lambda s, b: [], "buckets": {}, "cdns": {}})())
"""
)
POWERTOOLS = (
    HANDLER_BASE
    + """
import os; os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "s3purge"
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
metrics = Metrics(); metrics.add_dimension(name="CDN", value="edge")
metrics.add_metric(name="Calls", unit=MetricUnit.Count, value=1); metrics.serialize_metric_set()
"""
)
CASES = {
    "own EMF lines (s3purge.metrics)": (OWN_EMF, "s3purge", HANDLER_BASE),
    "Powertools Metrics": (POWERTOOLS, "aws_lambda_powertools", HANDLER_BASE),
    "tqdm (CLI progress)": ("from tqdm import tqdm; tqdm(total=1, disable=True).close()", "tqdm", BASE),
    "rich.progress (CLI progress)": ("from rich.progress import Progress; Progress(disable=True)", "rich", BASE),
}


def imported(code: str) -> dict[str, int]:
    """Module -> its own import time in microseconds (`python -X importtime`), one fresh process."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True, capture_output=True, text=True)
    found = {}
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            found[name.strip()] = int(own)
    return found


def main() -> None:
    cases = {name: case for name, case in CASES.items() if importlib.util.find_spec(case[1])}
    for name, (code, _, base) in cases.items():
        extra = []
        for _ in range(RUNS):  # interleaved: the case and its baseline see the same noise
            before, after = imported(base), imported(code)
            extra.append(sum(us for module, us in after.items() if module not in before))
        added = len(set(imported(code)) - set(imported(base)))
        print(f"{name:32} +{min(extra) / 1000:6.1f} ms (min of {RUNS}; {added} more modules)")
    skipped = sorted(set(CASES) - set(cases))
    if skipped:
        print("skipped (not installed):", ", ".join(skipped))


if __name__ == "__main__":
    main()
