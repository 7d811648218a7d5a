"""What a case is handed over as: the case report (HTML, PDF) and the evidence package (ZIP).

``report`` gathers and renders the report, ``package`` builds a package's parts and streams it,
``verification`` checks a package offline (``manage.py verify_package``). docs/evidence-package.md
describes the package format.
"""
