"""`python -m s3purge` runs the CLI."""

from s3purge.entry.cli import main

main()
