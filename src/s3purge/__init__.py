"""s3purge: purge every CDN in front of an S3 bucket when its objects change.

The flow, one module per stage:
    events -> Change -> mapping -> Target -> plan -> Batch -> execute -> Report
"""

__version__ = "0.1.0"
