"""Builders: the argv of each ffmpeg or ffprobe job, from explicit arguments only.

Every input is opened as ``file:<absolute path>`` with protocol, demuxer and decoder allow-lists
(nested demuxers inherit them) and per-input bounds on streams, probe size and frame size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_python

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


@dataclass(frozen=True)
class InputLimits:
    """Bounds ffmpeg itself enforces on one input while demuxing and decoding it."""

    max_streams: int = 64
    probe_size_bytes: int = 5_000_000
    analyze_duration_s: float = 5.0
    max_pixels: int = 50_000_000


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


@dataclass(frozen=True)
class DenseOutput:
    """Where and how the keyframe pass writes its fixed-rate raw RGB copy of the video."""

    path: Path
    width: int
    height: int
    rate_hz: float


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
    dense: DenseOutput | None = None,
) -> list[str]:
    """Return ffmpeg argv that writes keyframe candidates of path as upright JPEGs, in one pass.

    With ``dense`` (full mode only), a third branch writes every frame at ``dense.rate_hz`` as
    raw RGB of ``dense.width`` x ``dense.height`` into ``dense.path``: frame n shows the moment
    n / rate_hz (the fps filter), hashed afterwards for recycled footage.

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
    dense_branch = None
    if scene_candidate_threshold is not None:
        branches = decoded.split()
        full, small = branches[0], branches[1]
        if dense is not None:
            dense_branch = branches[2]
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
    if dense is not None and dense_branch is not None:
        pictures = (
            dense_branch.filter("fps", dense.rate_hz)
            .filter("scale", dense.width, dense.height, flags="area")
            .filter("format", "rgb24")
            .output(str(dense.path), f="rawvideo")
        )
        outputs.append(pictures)
    # One filter thread: the filters' work per frame is small, and slice threads hand every
    # frame to a second thread and wait for it, which cost 8 % of the pass at 720p.
    # Every log line carries its level and repeats are not folded, so the decode errors can be
    # counted (``output.parse_decode_errors``); showinfo still prints at level info.
    merged = ffmpeg_python.merge_outputs(*outputs).global_args(
        "-nostdin", "-hide_banner", "-nostats", "-loglevel", "repeat+level+info", "-progress", "pipe:1",
        "-filter_complex_threads", "1",
    )  # fmt: skip
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


def audio_fingerprint_argv(
    path: Path,
    *,
    ffmpeg: str,
    output: Path,
    limits: InputLimits = InputLimits(),  # noqa: B008 - frozen dataclass
) -> list[str]:
    """Return ffmpeg argv that writes the Chromaprint fingerprint of the first audio track to output.

    Only the audio is decoded. The fingerprint is ffmpeg's ``chromaprint`` muxer in its raw form
    (little-endian 32-bit sub-fingerprints, algorithm 1 as AcoustID uses); ``volumedetect`` on
    the way reports the loudest sample on stderr, so silence is told from sound in the same pass.
    """
    source = ffmpeg_python.input(_input_url(path), **_hardened_input_options(limits))
    written = ffmpeg_python.output(
        source["a:0"].filter("volumedetect"), _output_url(output), f="chromaprint", fp_format="raw", algorithm=1
    ).global_args("-nostdin", "-hide_banner", "-nostats")
    return list(written.overwrite_output().compile(cmd=ffmpeg))


# Containers that take both streams as they are; anything else is joined into Matroska.
_JOIN_CONTAINERS = (
    ({"mp4", "m4v", "mov"}, {"m4a", "mp4", "aac", "mp3"}, "mp4"),
    ({"webm"}, {"webm", "weba", "opus", "ogg"}, "webm"),
)
_MUXERS = {"mp4": "mp4", "webm": "webm", "mkv": "matroska"}


def streams_join_container(*, video_ext: str, audio_ext: str) -> str:
    """Return the file extension a video stream and an audio stream are joined into without re-encoding."""
    for videos, audios, container in _JOIN_CONTAINERS:
        if video_ext.lower() in videos and audio_ext.lower() in audios:
            return container
    return "mkv"


def streams_join_argv(
    *,
    video: Path,
    audio: Path,
    output: Path,
    ffmpeg: str,
    limits: InputLimits = InputLimits(),  # noqa: B008 - frozen dataclass
) -> list[str]:
    """Return ffmpeg argv that joins the video of one file and the audio of another by stream copy.

    Nothing is decoded or re-encoded: the packets of both inputs are copied into the container
    ``streams_join_container`` names for the output's extension.
    """
    muxer = _MUXERS[output.suffix.lstrip(".")]
    options = _hardened_input_options(limits)
    joined = ffmpeg_python.output(
        ffmpeg_python.input(_input_url(video), **options).video,
        ffmpeg_python.input(_input_url(audio), **options).audio,
        _output_url(output),
        c="copy",
        f=muxer,
    ).global_args("-nostdin", "-hide_banner", "-nostats", "-loglevel", "error")
    return list(joined.overwrite_output().compile(cmd=ffmpeg))


def _output_url(path: Path) -> str:
    if not path.is_absolute():
        raise ValueError(f"output path must be absolute: {path}")
    return f"file:{path}"
