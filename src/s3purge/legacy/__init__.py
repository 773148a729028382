"""The original scripts' `multicdn.config.yml` -> the s3purge config format. Pure.

The legacy format (Globaldots/s3-trigger-purge-cdn):

    cdnDomains:                          # vendor -> bucket -> items
      edgecast:
        mybucket:
          - action: load                 # sets the action of this list's hosts (same platform)
          - host: www.acme.co
        mybucket-02:
          - {host: www.acme.it, platform: large}
    cdnConfigurations:                   # vendor -> credentials, and the default platform
      edgecast: {token: ..., hex: ABCDEF, platform: small}

`platform` is the Cloudflare zone id, the Akamai network or the Edgecast platform, so each
platform in use becomes its own CDN account. Every route purges both schemes: the old
scripts only ever purged http://, and vendors whose cache key ignores the scheme collapse
the pair in the plan. Keys are decoded and re-encoded by the core, never used raw. Routes
take the new format's defaults, so index documents (`index.html`) purge their directory.

`convert` also returns, for every location in the new document, the legacy location it
came from, so a validation error can name the line the user actually wrote.

The parts: `vendors` (the table of what each vendor's settings mean), `read` (the legacy
tree checked and grouped), `convert` (the new document and its origins), `write` (the YAML).
"""

from s3purge.legacy.convert import Conversion, LegacyError, convert, relocate
from s3purge.legacy.read import CONFIGS, DOMAINS
from s3purge.legacy.vendors import VENDORS, Vendor
from s3purge.legacy.write import HEADER, dump

__all__ = [
    "CONFIGS",
    "DOMAINS",
    "HEADER",
    "VENDORS",
    "Conversion",
    "LegacyError",
    "Vendor",
    "convert",
    "dump",
    "relocate",
]
