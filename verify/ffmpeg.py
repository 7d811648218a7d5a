"""Build, run and parse ffmpeg and ffprobe commands.

This is the only module that starts a process. It holds three kinds of code:

1. builders that return argv for one job from explicit arguments (no settings, no database,
   no user strings: the server-side file path is the only variable that reaches argv);
2. parsers that turn ffprobe JSON and ffmpeg's filter output into frozen dataclasses;
3. one runner with a wall-clock timeout that kills the whole process group and raises a typed
   error carrying the exit code and the tail of stderr.

Every input is opened as ``file:<absolute path>`` with a protocol allow-list of ``file``, a
demuxer allow-list of the containers the service accepts and a decoder allow-list, so neither a
file name nor a playlist inside a file (nested demuxers inherit the lists) can make ffmpeg read
another file or open a network connection. Stream count, probe size and frame size are bounded
per input, and the runner applies kernel limits and a wall-clock deadline to every process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import os
import re
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:  # not glibc: the parent-death signal is a Linux nicety, not a requirement
    _LIBC = None
_PR_SET_PDEATHSIG = 1

# Demuxers for the containers the service accepts. Playlist and indirection demuxers (hls,
# concat, image2 patterns, subfile, data) are deliberately absent.
ACCEPTED_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "mpegts",
    "flv",
    "wav",
    "mp3",
    "ogg",
    "aac",
    "png_pipe",
    "jpeg_pipe",
    "webp_pipe",
    "gif",
)
DEMUXER_ALLOW_LIST = ",".join(ACCEPTED_DEMUXERS)

# Decoders for the codecs those containers carry in practice. Anything else (exotic or
# rarely fuzzed decoders, text renderers such as bintext/xbin) is refused before it sees a byte.
ACCEPTED_DECODERS = (
    # video
    "h264", "hevc", "mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4", "mpeg1video", "mpeg2video", "h263", "h263p",
    "flv", "vp6", "vp6a", "vp6f", "vp8", "libvpx", "vp9", "libvpx-vp9", "av1", "libdav1d", "libaom-av1",
    "theora", "prores", "mjpeg", "png", "gif", "webp",
    # audio
    "aac", "aac_fixed", "aac_latm", "mp3float", "mp3", "mp2float", "mp2", "ac3", "ac3_fixed", "eac3", "opus",
    "libopus", "vorbis", "libvorbis", "flac", "alac", "amrnb", "amrwb", "adpcm_ima_wav", "adpcm_ms", "adpcm_swf",
    "nellymoser", "speex", "pcm_alaw", "pcm_mulaw", "pcm_u8", "pcm_s8", "pcm_s16le", "pcm_s16be", "pcm_s24le",
    "pcm_s24be", "pcm_s32le", "pcm_s32be", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be",
    # subtitles: ffprobe opens a decoder for every stream it describes
    "mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "dvdsub", "dvbsub", "pgssub",
)  # fmt: skip
DECODER_ALLOW_LIST = ",".join(ACCEPTED_DECODERS)
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True)
class InputLimits:
    """Bounds ffmpeg itself enforces on one input while demuxing and decoding it."""

    max_streams: int = 64
    probe_size_bytes: int = 5_000_000
    analyze_duration_s: float = 5.0
    max_pixels: int = 50_000_000


# --- runner ---------------------------------------------------------------------------------


class FFmpegError(Exception):
    """ffmpeg or ffprobe exited non-zero or overran its time limit."""

    def __init__(
        self,
        argv0: str,
        exit_code: int | None,
        stderr_tail: str,
        *,
        timed_out: bool,
        stdout: str = "",
        output_exceeded: str = "",
    ):
        self.argv0 = argv0
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        self.stdout = stdout
        self.output_exceeded = output_exceeded  # "stdout" or "stderr" when a cap stopped the run
        if timed_out:
            reason = "timed out"
        elif output_exceeded:
            reason = f"wrote more to {output_exceeded} than allowed"
        else:
            reason = f"exited with code {exit_code}"
        super().__init__(f"{Path(argv0).name} {reason}")

    @property
    def killed_by_signal(self) -> int | None:
        """Return the signal that ended the process (e.g. SIGXCPU, SIGXFSZ, SIGKILL), if one did."""
        return -self.exit_code if self.exit_code is not None and self.exit_code < 0 else None


@dataclass(frozen=True)
class ResourceLimits:
    """Kernel limits applied to the child process; None leaves a limit unset."""

    cpu_time_s: int | None = None
    address_space_bytes: int | None = None
    output_file_bytes: int | None = None

    def apply(self) -> None:
        """Set the limits on the calling process (runs in the child before exec)."""
        for limit, value in (
            (resource.RLIMIT_CPU, self.cpu_time_s),
            (resource.RLIMIT_AS, self.address_space_bytes),
            (resource.RLIMIT_FSIZE, self.output_file_bytes),
        ):
            if value is not None:
                resource.setrlimit(limit, (value, value))


@dataclass(frozen=True)
class RunResult:
    stdout: str
    stderr: str


def _child_setup(limits: ResourceLimits | None) -> Callable[[], None]:
    def setup() -> None:
        if _LIBC is not None:
            # If the worker process dies (OOM killer, SIGKILL), its decoder dies with it.
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if limits is not None:
            limits.apply()

    return setup


def run(
    argv: Sequence[str],
    *,
    timeout_s: float,
    limits: ResourceLimits | None = None,
    on_stdout_line: Callable[[str], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    max_stdout_bytes: int | None = None,
    max_stderr_bytes: int | None = None,
) -> RunResult:
    """Run argv to completion within timeout_s; raise FFmpegError on failure or overrun.

    stdout and stderr are drained together so a chatty child can never block on a full pipe,
    and each is capped (``max_stdout_bytes``, ``max_stderr_bytes``) so a hostile file cannot
    fill the worker's memory. On timeout or overflow the whole process group is killed, so no
    decoder thread outlives the job. ``on_tick`` is called about once a second while the child
    runs (the caller's heartbeat).
    """
    proc = subprocess.Popen(  # noqa: S603 - argv comes from the builders in this module
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_child_setup(limits),  # only prctl and setrlimit run between fork and exec
    )
    if proc.stdout is None or proc.stderr is None:
        raise RuntimeError("subprocess pipes were not created")
    caps = {proc.stdout.fileno(): ("stdout", max_stdout_bytes), proc.stderr.fileno(): ("stderr", max_stderr_bytes)}
    chunks: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
    sizes = dict.fromkeys(chunks, 0)
    pending_line = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for pipe in (proc.stdout, proc.stderr):
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(proc)
                raise FFmpegError(argv[0], None, _tail(chunks[proc.stderr.fileno()]), timed_out=True)
            if on_tick is not None:
                on_tick()
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                chunks[key.fd].append(data)
                sizes[key.fd] += len(data)
                name, cap = caps[key.fd]
                if cap is not None and sizes[key.fd] > cap:
                    _kill_group(proc)
                    raise FFmpegError(
                        argv[0], None, _tail(chunks[proc.stderr.fileno()]), timed_out=False, output_exceeded=name
                    )
                if on_stdout_line is not None and key.fd == proc.stdout.fileno():
                    *lines, pending_line = (pending_line + data).split(b"\n")
                    for line in lines:
                        on_stdout_line(line.decode("utf-8", "replace"))
    try:
        exit_code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise FFmpegError(argv[0], None, _tail(chunks[proc.stderr.fileno()]), timed_out=True) from None
    stdout = b"".join(chunks[proc.stdout.fileno()]).decode("utf-8", "replace")
    stderr = b"".join(chunks[proc.stderr.fileno()]).decode("utf-8", "replace")
    if exit_code != 0:
        raise FFmpegError(argv[0], exit_code, stderr[-STDERR_TAIL_CHARS:], timed_out=False, stdout=stdout)
    return RunResult(stdout=stdout, stderr=stderr)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(chunks: list[bytes]) -> str:
    return b"".join(chunks)[-STDERR_TAIL_CHARS:].decode("utf-8", "replace")


# --- builders -------------------------------------------------------------------------------


def _input_url(path: Path) -> str:
    # The "file:" prefix stops a name such as "-i" or "concat:a|b" being read as an option
    # or a protocol; only server-generated absolute paths are ever passed here.
    if not path.is_absolute():
        raise ValueError(f"input path must be absolute: {path}")
    return f"file:{path}"


def _hardened_input_options(limits: InputLimits) -> dict[str, str]:
    # Nested demuxers (an HLS playlist inside an AVI GAB2 subtitle chunk, say) inherit the
    # protocol, format and codec lists from the input that opens them.
    return {
        "protocol_whitelist": "file",
        "format_whitelist": DEMUXER_ALLOW_LIST,
        "codec_whitelist": DECODER_ALLOW_LIST,
        "max_streams": str(limits.max_streams),
        "probesize": str(limits.probe_size_bytes),
        "analyzeduration": str(round(limits.analyze_duration_s * 1_000_000)),
        "max_pixels": str(limits.max_pixels),
    }


def probe_argv(path: Path, *, ffprobe: str, limits: InputLimits = InputLimits()) -> list[str]:  # noqa: B008
    """Return ffprobe argv that prints format, streams and errors of path as JSON.

    ffmpeg-python's ``probe()`` runs this same command but without a timeout, so the argv is
    built here and handed to ``run``.
    """
    options = [arg for name, value in _hardened_input_options(limits).items() for arg in (f"-{name}", value)]
    return [
        ffprobe,
        "-hide_banner",
        "-v",
        "error",
        *options,
        "-show_format",
        "-show_streams",
        "-show_error",
        "-of",
        "json",
        _input_url(path),
    ]


def version_argv(*, ffmpeg: str) -> list[str]:
    """Return argv that prints ffmpeg's version banner."""
    return [ffmpeg, "-hide_banner", "-version"]


# Size of the grey copy the scene score is computed on: fine texture and sensor noise
# average out, so a busy shot does not hide the cut that ends it.
SCENE_SCORE_SIZE = (160, 90)


def keyframes_argv(
    path: Path,
    *,
    ffmpeg: str,
    out_dir: Path,
    candidates_file: Path,
    scores_file: Path,
    scene_candidate_threshold: float | None,
    interval_s: float,
    max_frames: int,
    decoder_threads: int = 0,
    limits: InputLimits = InputLimits(),  # noqa: B008 - frozen dataclass
) -> list[str]:
    """Return ffmpeg argv that writes keyframe candidates of path as upright JPEGs, in one pass.

    The decoded video is split in two. The full-resolution branch keeps a frame when it is an
    I-frame, when ``interval_s`` has passed since the last kept frame, or when its full-size
    scene score passes the low ``scene_candidate_threshold``; those frames are written as JPEGs
    and ``showinfo`` prints their PTS and picture type on stderr. The second branch scales
    every frame to a small grey copy and writes its scene score to ``scores_file``, which is
    what decides whether a candidate really follows a cut.

    ``scene_candidate_threshold=None`` is the fast mode: only key frames are decoded
    (``-skip_frame nokey``) and there is no scene branch. ffmpeg's default autorotation makes
    the frames upright.

    ``decoder_threads`` sets the decoder's thread count (0: ffmpeg's own choice, cores + 1 for
    H.264). The filter graph runs on ffmpeg's main thread, which takes decoded frames in
    order; a frame or two more in flight keeps the decoder busy while that thread filters.
    """
    input_options = _hardened_input_options(limits)
    if decoder_threads:
        input_options["threads"] = str(decoder_threads)
    terms = ["eq(pict_type,I)", "isnan(prev_selected_t)", f"gte(t-prev_selected_t,{interval_s:g})"]
    if scene_candidate_threshold is None:
        input_options["skip_frame"] = "nokey"
    else:
        terms.insert(1, f"gt(scene,{scene_candidate_threshold:g})")
    decoded = ffmpeg_python.input(_input_url(path), **input_options).video
    if scene_candidate_threshold is not None:
        branches = decoded.split()
        full, small = branches[0], branches[1]
    else:
        full, small = decoded, None
    frames = (
        full.filter("select", "+".join(terms))
        .filter("metadata", mode="print", file=str(candidates_file))
        .filter("showinfo")
        # Encoder threads: in full mode the decoder keeps every core busy and a few dozen of
        # the thousands of decoded frames are written, so one thread; each more costs ~20 MB at
        # 1080p. In fast mode writing JPEGs is most of the work, and a second thread takes
        # 1.27x ffmpeg's own I-frame extraction down to 1.09x at 1080p. The standard Huffman
        # tables instead of per-image optimal ones (lossless either way, a few % larger files)
        # spare a second pass over each frame and a buffer of its coefficients (~6 MB at 1080p).
        .output(
            str(out_dir / "frame_%06d.jpg"),
            f="image2",
            fps_mode="vfr",
            huffman="default",
            **{"frames:v": max_frames, "q:v": 2, "threads:v": 1 if small is not None else 2},
        )
    )
    outputs = [frames]
    if small is not None:
        width, height = SCENE_SCORE_SIZE
        scores = (
            small.filter("scale", width, height, flags="fast_bilinear")
            .filter("format", "gray")
            .filter("select", "gte(scene,0)")
            .filter("metadata", mode="print", file=str(scores_file))
            .output("-", f="null")
        )
        outputs.append(scores)
    # One filter thread: the filters' work per frame is small, and slice threads hand every
    # frame to a second thread and wait for it, which cost 8 % of the pass at 720p.
    merged = ffmpeg_python.merge_outputs(*outputs).global_args(
        "-nostdin", "-hide_banner", "-nostats", "-progress", "pipe:1", "-filter_complex_threads", "1"
    )
    return list(merged.compile(cmd=ffmpeg))


# Visually distinct lavfi sources: each boundary between two neighbours is a hard cut.
REFERENCE_SOURCES = (
    "testsrc2", "mandelbrot", "smptehdbars", "cellauto", "rgbtestsrc", "life", "gradients", "testsrc",
)  # fmt: skip


def reference_clip_argv(
    path: Path,
    *,
    ffmpeg: str,
    shots: int = 8,
    shot_s: float = 15.0,
    size: str = "1280x720",
    fps: int = 30,
    video_bitrate: str = "2500k",
) -> list[str]:
    """Return ffmpeg argv that writes a reproducible multi-shot H.264 + AAC clip to path.

    Shot i comes from ``REFERENCE_SOURCES[i]`` (cycled), so the hard cuts fall at multiples
    of ``shot_s``; light temporal noise keeps the encoder and the scene detector honest.
    """
    sources = [REFERENCE_SOURCES[i % len(REFERENCE_SOURCES)] for i in range(shots)]
    clips = [
        ffmpeg_python.input(f"{source}=s={size}:r={fps}", f="lavfi", t=shot_s).video.filter("setsar", "1")
        for source in sources
    ]
    video = ffmpeg_python.concat(*clips, v=1, a=0).filter("noise", alls=5, allf="t").filter("format", "yuv420p")
    audio = ffmpeg_python.input(f"anoisesrc=d={shots * shot_s:g}:c=pink:a=0.05", f="lavfi").audio
    output = ffmpeg_python.output(
        video,
        audio,
        str(path),
        vcodec="libx264",
        preset="veryfast",
        **{"b:v": video_bitrate, "maxrate": video_bitrate, "bufsize": "5000k"},
        acodec="aac",
        **{"b:a": "128k"},
        movflags="+faststart",
    ).global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    return list(output.overwrite_output().compile(cmd=ffmpeg))


# --- parsers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    altitude_m: float | None


@dataclass(frozen=True)
class ProbeResult:
    """Normalised facts about a media file; None wherever the file does not say."""

    container: str
    container_long_name: str
    duration_s: float | None
    bit_rate_bps: int | None
    has_video: bool
    has_audio: bool
    video_codec: str
    coded_width: int | None
    coded_height: int | None
    display_width: int | None
    display_height: int | None
    rotation_deg: int
    frame_rate_fps: float | None
    frame_count: int | None
    audio_codec: str
    audio_channels: int | None
    audio_sample_rate_hz: int | None
    creation_time: datetime | None
    creation_time_source: str
    location: Location | None
    location_source: str
    device_make: str
    device_model: str
    device_software: str
    encoder: str
    stream_count: int = 0

    @property
    def latitude(self) -> float | None:
        return self.location.latitude if self.location else None

    @property
    def longitude(self) -> float | None:
        return self.location.longitude if self.location else None

    @property
    def altitude_m(self) -> float | None:
        return self.location.altitude_m if self.location else None


class ProbeParseError(ValueError):
    """ffprobe's answer does not describe a readable media file."""


def parse_probe_json(text: str) -> dict[str, Any]:
    """Return ffprobe's JSON answer as a dict; raise ProbeParseError if it holds an error."""
    try:
        data = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ProbeParseError("ffprobe did not answer with JSON") from exc
    if not isinstance(data, dict):
        raise ProbeParseError("ffprobe did not answer with a JSON object")
    if "error" in data:
        raise ProbeParseError(str(data["error"].get("string", "unreadable file")))
    return data


# Where each normalised field may hide, most specific first.
CREATION_TIME_TAGS = ("com.apple.quicktime.creationdate", "creation_time", "date")
LOCATION_TAGS = ("com.apple.quicktime.location.ISO6709", "location", "location-eng")
MAKE_TAGS = ("com.apple.quicktime.make", "make", "com.android.manufacturer")
MODEL_TAGS = ("com.apple.quicktime.model", "model", "com.android.model")
SOFTWARE_TAGS = ("com.apple.quicktime.software", "software", "com.android.version")
# Muxers write these when a clock was never set; they are not dates anyone recorded.
PLACEHOLDER_DATES = (datetime(1904, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC))


def parse_probe(data: dict[str, Any]) -> ProbeResult:
    """Return the normalised facts in an ffprobe ``-show_format -show_streams`` answer."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    tag_sources = _tag_sources(fmt, streams)

    rotation = _rotation_deg(video) if video else 0
    coded_width = _int(video.get("width")) if video else None
    coded_height = _int(video.get("height")) if video else None
    display_width, display_height = coded_width, coded_height
    if rotation in (90, 270):
        display_width, display_height = coded_height, coded_width

    creation_time, creation_source = _first_datetime(tag_sources)
    location, location_source = _first_location(tag_sources)
    encoder_value, _ = _first_tag(tag_sources, ("encoder",))
    make, _ = _first_tag(tag_sources, MAKE_TAGS)
    model, _ = _first_tag(tag_sources, MODEL_TAGS)
    software, _ = _first_tag(tag_sources, SOFTWARE_TAGS)

    return ProbeResult(
        container=str(fmt.get("format_name", "")),
        container_long_name=str(fmt.get("format_long_name", "")),
        duration_s=_float(fmt.get("duration")) or (_float(video.get("duration")) if video else None),
        bit_rate_bps=_int(fmt.get("bit_rate")),
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=str(video.get("codec_name", "")) if video else "",
        coded_width=coded_width,
        coded_height=coded_height,
        display_width=display_width,
        display_height=display_height,
        rotation_deg=rotation,
        frame_rate_fps=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")) if video else None,
        frame_count=_int(video.get("nb_frames")) if video else None,
        audio_codec=str(audio.get("codec_name", "")) if audio else "",
        audio_channels=_int(audio.get("channels")) if audio else None,
        audio_sample_rate_hz=_int(audio.get("sample_rate")) if audio else None,
        creation_time=creation_time,
        creation_time_source=creation_source,
        location=location,
        location_source=location_source,
        device_make=make,
        device_model=model,
        device_software=software,
        encoder=encoder_value,
        stream_count=len(streams),
    )


def _tag_sources(fmt: dict[str, Any], streams: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    sources = [("format", fmt.get("tags") or {})]
    sources += [(f"stream:{s.get('index', i)}", s.get("tags") or {}) for i, s in enumerate(streams)]
    return sources


def _first_tag(sources: list[tuple[str, dict[str, str]]], names: Sequence[str]) -> tuple[str, str]:
    for name in names:
        for where, tags in sources:
            for key, value in tags.items():
                if key.lower() == name.lower() and str(value).strip():
                    return str(value).strip(), f"{where}:{key}"
    return "", ""


def _first_datetime(sources: list[tuple[str, dict[str, str]]]) -> tuple[datetime | None, str]:
    for name in CREATION_TIME_TAGS:
        for where, tags in sources:
            for key, value in tags.items():
                if key.lower() != name.lower():
                    continue
                parsed = parse_tag_datetime(str(value))
                if parsed is not None and parsed not in PLACEHOLDER_DATES:
                    return parsed, f"{where}:{key}"
    return None, ""


def _first_location(sources: list[tuple[str, dict[str, str]]]) -> tuple[Location | None, str]:
    for name in LOCATION_TAGS:
        for where, tags in sources:
            for key, value in tags.items():
                if key.lower() == name.lower():
                    parsed = parse_iso6709(str(value))
                    if parsed is not None:
                        return parsed, f"{where}:{key}"
    return None, ""


def parse_tag_datetime(value: str) -> datetime | None:
    """Return the instant in an ISO 8601 metadata tag, or None if it is not one.

    A value without a UTC offset is taken as UTC, which is what MP4 ``creation_time`` means.
    """
    text = value.strip()
    if not text:
        return None
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)  # +0200 -> +02:00 (QuickTime style)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


_ISO6709 = re.compile(
    r"^(?P<lat>[+-]\d+(?:\.\d+)?)(?P<lon>[+-]\d+(?:\.\d+)?)(?P<alt>[+-]\d+(?:\.\d+)?)?(?:CRS[^/]*)?/?$"
)


def parse_iso6709(value: str) -> Location | None:
    """Return the point in an ISO 6709 string such as ``+50.4253+036.8949/``, or None."""
    match = _ISO6709.match(value.strip())
    if not match:
        return None
    latitude = _iso6709_angle(match["lat"], degree_digits=2)
    longitude = _iso6709_angle(match["lon"], degree_digits=3)
    if latitude is None or longitude is None or abs(latitude) > 90 or abs(longitude) > 180:
        return None
    altitude = float(match["alt"]) if match["alt"] else None
    return Location(latitude=latitude, longitude=longitude, altitude_m=altitude)


def _iso6709_angle(text: str, *, degree_digits: int) -> float | None:
    # ISO 6709 allows degrees (DD.D), degrees+minutes (DDMM.M) and degrees+minutes+seconds.
    sign = -1.0 if text[0] == "-" else 1.0
    whole, _, fraction = text[1:].partition(".")
    fraction_value = float(f"0.{fraction}") if fraction else 0.0
    extra = len(whole) - degree_digits
    if extra == 0:
        return sign * (int(whole) + fraction_value)
    if extra == 2:
        degrees, minutes = int(whole[:degree_digits]), int(whole[degree_digits:]) + fraction_value
        return sign * (degrees + minutes / 60)
    if extra == 4:
        degrees = int(whole[:degree_digits])
        minutes = int(whole[degree_digits : degree_digits + 2])
        seconds = int(whole[degree_digits + 2 :]) + fraction_value
        return sign * (degrees + minutes / 60 + seconds / 3600)
    return None


def _rotation_deg(video: dict[str, Any]) -> int:
    """Return the clockwise rotation a player applies, in degrees: 0, 90, 180 or 270."""
    for side_data in video.get("side_data_list") or []:
        if "rotation" in side_data:
            # The display matrix angle is counter-clockwise; players rotate the other way.
            return int(round(-float(side_data["rotation"]))) % 360
    rotate_tag = (video.get("tags") or {}).get("rotate")
    if rotate_tag is not None:
        try:
            return int(round(float(rotate_tag))) % 360
        except ValueError:
            return 0
    return 0


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _rate(value: Any) -> float | None:
    if not value or "/" not in str(value):
        return _float(value)
    numerator, denominator = str(value).split("/", 1)
    num, den = _float(numerator), _float(denominator)
    if not num or not den:
        return None
    return round(num / den, 3)


@dataclass(frozen=True)
class SelectedFrame:
    """A frame the keyframe pass wrote: its file, PTS-based time and picture type."""

    path: Path
    timestamp_s: float
    pict_type: str


_SHOWINFO = re.compile(r"\bn:\s*(?P<n>\d+)\s+pts:\s*(?P<pts>-?\d+)\s+pts_time:(?P<t>\S+).*?\btype:(?P<type>\w)")


def parse_selected_frames(*, stderr: str, out_dir: Path) -> list[SelectedFrame]:
    """Return the frames a ``keyframes_argv`` run wrote, in output order.

    Times come from each frame's PTS as printed by showinfo, so they stay right on variable
    frame rate video.
    """
    infos = [m for line in stderr.splitlines() if "showinfo" in line and (m := _SHOWINFO.search(line))]
    files = sorted(out_dir.glob("frame_*.jpg"))
    frames = []
    for info, path in zip(infos, files, strict=False):
        timestamp = _float(info["t"])
        if timestamp is not None:
            frames.append(SelectedFrame(path=path, timestamp_s=timestamp, pict_type=info["type"]))
    return frames


def parse_scene_scores(text: str) -> list[tuple[float, float]]:
    """Return (time in seconds, scene score) for every frame in a ``metadata=mode=print`` file."""
    scores: list[tuple[float, float]] = []
    timestamp: float | None = None
    for line in text.splitlines():
        if line.startswith("frame:"):
            match = re.search(r"pts_time:(\S+)", line)
            timestamp = _float(match.group(1)) if match else None
        elif line.startswith("lavfi.scene_score=") and timestamp is not None:
            score = _float(line.split("=", 1)[1])
            if score is not None:
                scores.append((timestamp, score))
            timestamp = None
    return scores


def parse_progress_out_time_s(line: str) -> float | None:
    """Return the position in seconds from one ``-progress`` line, or None for other keys."""
    key, _, value = line.partition("=")
    if key.strip() != "out_time_us":
        return None
    micros = _int(value.strip())
    return micros / 1_000_000 if micros is not None and micros >= 0 else None


_STREAM_LIMIT = re.compile(r"Number of streams exceeds max_streams parameter \((?P<limit>\d+)\)")
_REFUSED_CODEC = re.compile(r"Codec \((?P<codec>[\w-]+)\) not on whitelist")
_REFUSED_FORMAT = re.compile(r"\[(?P<format>[\w,]+) @ [^]]+\] Format not on whitelist")
_REFUSED_PICTURE = re.compile(r"Picture size (?P<w>\d+)x(?P<h>\d+) (?:is invalid|exceeds specified max pixel count)")


@dataclass(frozen=True)
class Refusal:
    """A safety limit ffmpeg reported on stderr while it read a file."""

    kind: str  # "streams", "codec", "format" or "picture_size"
    detail: str


def parse_refusals(stderr: str) -> list[Refusal]:
    """Return the allow-list and size refusals in ffmpeg's stderr, in the order they appear."""
    refusals = []
    for line in stderr.splitlines():
        if match := _STREAM_LIMIT.search(line):
            refusals.append(Refusal("streams", match["limit"]))
        elif match := _REFUSED_CODEC.search(line):
            refusals.append(Refusal("codec", match["codec"]))
        elif match := _REFUSED_FORMAT.search(line):
            refusals.append(Refusal("format", match["format"]))
        elif match := _REFUSED_PICTURE.search(line):
            refusals.append(Refusal("picture_size", f"{match['w']}x{match['h']}"))
    return refusals


def parse_version(banner: str) -> str:
    """Return the version string from ffmpeg's ``-version`` banner, e.g. ``5.1.9-0+deb12u1``."""
    match = re.search(r"version (\S+)", banner)
    return match.group(1) if match else ""
