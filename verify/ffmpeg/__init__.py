"""Build, run and parse ffmpeg and ffprobe commands.

This package is the only code that starts a process. It holds three kinds of code:

1. builders (``argv``) that return argv for one job from explicit arguments (no settings, no
   database, no user strings: the server-side file path is the only variable that reaches argv);
2. parsers (``probe``, ``output``) that turn ffprobe JSON and ffmpeg's filter output into frozen
   dataclasses;
3. one runner (``runner``) with a wall-clock timeout that kills the whole process group and raises
   a typed error carrying the exit code and the tail of stderr.

Callers use the names re-exported here: ``from verify import ffmpeg; ffmpeg.run(...)``.
"""

from verify.ffmpeg.argv import (
    ACCEPTED_DECODERS,
    ACCEPTED_DEMUXERS,
    REFERENCE_SOURCES,
    SCENE_SCORE_SIZE,
    DenseOutput,
    InputLimits,
    audio_fingerprint_argv,
    keyframes_argv,
    probe_argv,
    reference_clip_argv,
    streams_join_argv,
    streams_join_container,
    version_argv,
)
from verify.ffmpeg.output import (
    DecodeError,
    Refusal,
    SelectedFrame,
    parse_decode_errors,
    parse_max_volume_db,
    parse_progress_end_s,
    parse_progress_out_time_s,
    parse_refusals,
    parse_scene_scores,
    parse_selected_frames,
    parse_version,
)
from verify.ffmpeg.probe import (
    Location,
    ProbeParseError,
    ProbeResult,
    parse_iso6709,
    parse_probe,
    parse_probe_json,
    parse_tag_datetime,
)
from verify.ffmpeg.runner import FFmpegError, ResourceLimits, RunResult, run

__all__ = [
    "ACCEPTED_DECODERS",
    "ACCEPTED_DEMUXERS",
    "REFERENCE_SOURCES",
    "SCENE_SCORE_SIZE",
    "DecodeError",
    "DenseOutput",
    "FFmpegError",
    "InputLimits",
    "Location",
    "ProbeParseError",
    "ProbeResult",
    "Refusal",
    "ResourceLimits",
    "RunResult",
    "SelectedFrame",
    "audio_fingerprint_argv",
    "keyframes_argv",
    "parse_decode_errors",
    "parse_iso6709",
    "parse_max_volume_db",
    "parse_probe",
    "parse_probe_json",
    "parse_progress_end_s",
    "parse_progress_out_time_s",
    "parse_refusals",
    "parse_scene_scores",
    "parse_selected_frames",
    "parse_tag_datetime",
    "parse_version",
    "probe_argv",
    "reference_clip_argv",
    "run",
    "streams_join_argv",
    "streams_join_container",
    "version_argv",
]
