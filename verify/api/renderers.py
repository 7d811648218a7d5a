"""JSON that is safe to serve even when it carries markup an uploaded file chose."""

from typing import Any

from rest_framework.renderers import JSONRenderer

# These bytes can appear in JSON only inside strings, where \u escapes mean the same thing.
_HTML_SIGNIFICANT = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))


class HTMLSafeJSONRenderer(JSONRenderer):
    """Render JSON with <, > and & written as \\u escapes.

    Metadata tags come from the files under investigation; a ``<script>`` in a tag stays a
    string to every JSON parser but can never be read as markup by a browser or a page that
    embeds the answer.
    """

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        rendered = super().render(data, accepted_media_type, renderer_context)
        for raw, escaped in _HTML_SIGNIFICANT:
            rendered = rendered.replace(raw, escaped)
        return rendered
