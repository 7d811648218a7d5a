# ruff: noqa: E501  (the Telegram widget markup is kept one element per line, as Telegram sends it)
"""A local HTTP server for the fetch tests: pages, media and misbehaviour, on 127.0.0.1 only.

It binds the port ``tests.environment`` let through the egress guard (VERIFY_FETCH_SERVER_PORT),
or any free port for a server the guard must refuse. Each request path is counted.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class FetchServer:
    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        server = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                path = self.path.split("?", 1)[0]
                server.requests[path] += 1
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                route(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def body(content: bytes, content_type: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    """Answer with these bytes."""

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(content)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(content)

    return handle


def redirect(location: str) -> Handler:
    """Answer 302 to another address."""
    return body(b"", "text/plain", status=302, headers={"Location": location})


def announced(size_bytes: int) -> Handler:
    """Announce a huge video and send nothing: a client that reads the body would wait for ever."""

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "video/mp4")
        request.send_header("Content-Length", str(size_bytes))
        request.end_headers()
        request.wfile.flush()
        time.sleep(5)

    return handle


def drip(content: bytes, *, pause_s: float) -> Handler:
    """Send the headers and a few bytes, then nothing for pause_s."""

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "video/mp4")
        request.send_header("Content-Length", str(len(content)))
        request.end_headers()
        request.wfile.write(content[:16])
        request.wfile.flush()
        time.sleep(pause_s)

    return handle


def trickle(content: bytes, *, chunks: int, pause_s: float) -> Handler:
    """Send the bytes in chunks with a pause before each, so a fetch takes a while."""

    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "video/mp4")
        request.send_header("Content-Length", str(len(content)))
        request.end_headers()
        size = -(-len(content) // chunks)
        for start in range(0, len(content), size):
            time.sleep(pause_s)
            request.wfile.write(content[start : start + size])
            request.wfile.flush()

    return handle


def og_video_page(video_url: str, *, title: str, published: str = "") -> bytes:
    """An article page whose Open Graph tags point at a video."""
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    return f"""<!doctype html><html><head><title>{title}</title>
<meta property="og:title" content="{title}">
<meta property="og:description" content="Residents filmed the convoy from a balcony.">
<meta property="og:type" content="video.other">
<meta property="og:video" content="{video_url}">
<meta property="og:video:type" content="video/mp4">
{meta}
</head><body><h1>{title}</h1></body></html>""".encode()


# The widget's markup, one element per line as Telegram sends it.
def telegram_embed_page(*, channel: str, post_id: int, video_url: str, posted: str, views: str) -> bytes:
    """A page in the markup of Telegram's public embed widget (t.me/<channel>/<id>?embed=1), written for the tests."""
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Telegram Widget</title></head>
<body class="widget_frame_base tgme_widget body_widget_post emoji_image nodark">
<div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{channel}/{post_id}">
<div class="tgme_widget_message_bubble">
<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" href="https://t.me/{channel}"><span dir="auto">Border Watch</span></a></div>
<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from <a class="tgme_widget_message_forwarded_from_name" href="https://t.me/origin_channel/7">Origin Channel</a></div>
<a class="tgme_widget_message_video_player js-message_video_player" href="https://t.me/{channel}/{post_id}">
<div class="tgme_widget_message_video_wrap"><video src="{video_url}" class="tgme_widget_message_video js-message_video" width="100%" height="100%"></video></div>
<time class="message_video_duration js-message_video_duration">0:08</time>
</a>
<div class="tgme_widget_message_text js-message_text" dir="auto">Soldiers in the village this morning</div>
<div class="tgme_widget_message_footer compact js-message_footer">
<div class="tgme_widget_message_info short js-message_info">
<span class="tgme_widget_message_views">{views}</span><span class="copyonly"> views</span>
<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="https://t.me/{channel}/{post_id}"><time datetime="{posted}" class="time">08:15</time></a></span>
</div></div></div></div></body></html>""".encode()


def dash_manifest(*, video_url: str, audio_url: str, width: int, height: int, duration_s: int) -> bytes:
    """A DASH manifest that serves a clip's video and its audio as separate files, as large platforms do."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT{duration_s}S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
<Period>
<AdaptationSet mimeType="video/mp4" contentType="video"><Representation id="v{height}" bandwidth="300000" width="{width}" height="{height}" codecs="avc1.64000d"><BaseURL>{video_url}</BaseURL></Representation></AdaptationSet>
<AdaptationSet mimeType="audio/mp4" contentType="audio" lang="en"><Representation id="a128" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="44100"><BaseURL>{audio_url}</BaseURL></Representation></AdaptationSet>
</Period>
</MPD>""".encode()
