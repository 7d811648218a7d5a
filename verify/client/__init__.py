"""Command-line client for the media-verification REST API: submit footage, follow and read its analysis.

Run it as ``python -m verify.client``. It speaks only HTTP to a running service (standard library
``urllib``), so it works from any machine that can reach the API; it never imports Django.

Exit codes: 0 success, 1 the analysis failed, 2 usage or configuration error, 3 HTTP or API error,
4 timed out while waiting for the analysis.
"""
