"""Same audio: Chromaprint fingerprints of generated soundtracks, the threshold, and the pipeline.

Speech or music recordings do not ship in any installed package, so the soundtracks are built
with ffmpeg: a melody of chords (three partials, a decaying envelope per note, a bass tone) over
pink noise, different per seed, re-encoded as platforms do (low-bitrate AAC, mono, MP3, Opus,
an excerpt, quieter and resampled). Unrelated soundtracks are other melodies and pink noise.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import analysed, make_user, token_client
from tests.footage import Pan, photo_shot
from tests.workflows_tests.test_admin import open_case
from tests.workflows_tests.test_admin_seen_before import match_rows, media_rows
from verify import ffmpeg
from verify.models import AudioFingerprint, MediaMatch
from verify.safeguards import AnalysisFailure
from verify.similarity import audio

NOTE_S = 0.4
# The pictures only carry the soundtracks here: small frames keep the clips quick to make and analyse.
PICTURES = (480, 270)
# (a, b, c) of each melody: note n plays semitone (a n^2 + b n + c) mod 24 above 220 Hz.
MELODIES = {1: (7, 5, 3), 2: (11, 13, 1), 3: (5, 17, 8), 4: (13, 3, 19), 5: (3, 23, 5), 6: (17, 7, 11)}
# How a soundtrack comes back from platforms: encoder options, and where the copy starts (s).
COPIES: dict[str, tuple[list[str], float]] = {
    "aac_128k": (["-c:a", "aac", "-b:a", "128k"], 0.0),
    "aac_32k_mono": (["-c:a", "aac", "-b:a", "32k", "-ac", "1"], 0.0),
    "mp3_48k": (["-c:a", "libmp3lame", "-b:a", "48k"], 0.0),
    "opus_16k": (["-c:a", "libopus", "-b:a", "16k"], 0.0),
    "excerpt_6s": (["-ss", "3.3", "-t", "6", "-c:a", "aac", "-b:a", "48k"], 3.3),
    "quiet_22khz": (["-af", "volume=0.3", "-ar", "22050", "-c:a", "aac", "-b:a", "48k"], 0.0),
}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _melody(seed: int) -> str:
    a, b, c = MELODIES[seed]
    n = f"floor(t/{NOTE_S})"
    freq = f"(220*pow(2,mod({a}*{n}*{n}+{b}*{n}+{c},24)/12))"
    envelope = f"exp(-5*(t-{n}*{NOTE_S}))"
    chord = f"0.35*sin(2*PI*{freq}*t)+0.2*sin(2*PI*{freq}*1.26*t)+0.1*sin(4*PI*{freq}*t)"
    bass = f"0.15*sin(2*PI*{55 * 2 ** (c % 12 / 12):.2f}*t)"
    return f"{envelope}*({chord})+{bass}"


def soundtrack(path: Path, *, seed: int, duration_s: float = 12.0, stereo: bool = True) -> Path:
    """Write a music-like soundtrack: melody ``seed`` over pink noise, as 16-bit WAV."""
    layout = ",pan=stereo|c0=c0|c1=0.8*c0" if stereo else ""
    _ffmpeg("-f", "lavfi", "-i", f"aevalsrc='{_melody(seed)}':s=22050:d={duration_s}",
            "-f", "lavfi", "-i", f"anoisesrc=d={duration_s}:c=pink:a=0.03:r=22050:s={seed}",
            "-filter_complex", f"[0][1]amix=inputs=2:normalize=0{layout}", str(path))  # fmt: skip
    return path


def copy(source: Path, path: Path, name: str) -> Path:
    """Write the copy ``name`` (a key of COPIES) of a soundtrack."""
    _ffmpeg("-i", str(source), *COPIES[name][0], str(path))
    return path


def fingerprint(path: Path, tmp_path: Path) -> audio.AudioPrint | None:
    workdir = tmp_path / f"fp-{path.stem}"
    workdir.mkdir()
    return audio.audio_print_compute(path, workdir=workdir)


@pytest.fixture(scope="module")
def soundtracks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("soundtracks")
    tracks = {f"melody{seed}": soundtrack(folder / f"melody{seed}.wav", seed=seed) for seed in MELODIES}
    for seed in (1, 2):
        noise = folder / f"noise{seed}.m4a"
        _ffmpeg("-f", "lavfi", "-i", f"anoisesrc=d=12:c=pink:a=0.05:s={seed}", "-c:a", "aac", str(noise))
        tracks[f"noise{seed}"] = noise
    return tracks


# --- the ffmpeg job ---------------------------------------------------------------------------


def test_audio_fingerprint_argv_decodes_the_first_audio_track_only_into_a_raw_chromaprint():
    argv = ffmpeg.audio_fingerprint_argv(Path("/srv/in.mp4"), ffmpeg="ffmpeg", output=Path("/tmp/w/audio.fp"))

    assert argv[argv.index("-i") + 1] == "file:/srv/in.mp4"
    assert argv[argv.index("-protocol_whitelist") + 1] == "file"
    assert argv[argv.index("-filter_complex") + 1] == "[0:a:0]volumedetect[s0]"
    assert argv[argv.index("-f") + 1] == "chromaprint" and argv[argv.index("-fp_format") + 1] == "raw"
    assert argv[argv.index("-algorithm") + 1] == "1" and "file:/tmp/w/audio.fp" in argv
    with pytest.raises(ValueError, match="absolute"):
        ffmpeg.audio_fingerprint_argv(Path("in.mp4"), ffmpeg="ffmpeg", output=Path("/tmp/w/audio.fp"))


def test_parse_max_volume_db_reads_volumedetect():
    stderr = (
        "[Parsed_volumedetect_0 @ 0x5587b55aff40] mean_volume: -25.9 dB\n"
        "[Parsed_volumedetect_0 @ 0x5587b55aff40] max_volume: -15.7 dB\n"
    )

    assert ffmpeg.parse_max_volume_db(stderr) == -15.7
    assert ffmpeg.parse_max_volume_db("[Parsed_volumedetect_0 @ 0x1] max_volume: -inf dB") == float("-inf")
    assert ffmpeg.parse_max_volume_db("no audio here") is None


# --- fingerprints and the threshold ----------------------------------------------------------


def test_audio_threshold_separates_copies_from_unrelated_soundtracks(soundtracks, tmp_path):
    # given: every melody and its platform copies, and every pair of unrelated soundtracks
    def copy_print(name: str, kind: str) -> audio.AudioPrint | None:
        return fingerprint(copy(soundtracks[name], tmp_path / f"{name}-{kind}.mkv", kind), tmp_path)

    melodies = [n for n in soundtracks if n.startswith("melody")]
    with ThreadPoolExecutor(max_workers=3) as ffmpegs:  # short ffmpeg runs: start-up is much of each
        originals = {name: ffmpegs.submit(fingerprint, path, tmp_path) for name, path in soundtracks.items()}
        copied = {(name, kind): ffmpegs.submit(copy_print, name, kind) for name in melodies for kind in COPIES}
        prints = {name: found.result() for name, found in originals.items()}
        copy_prints = {key: found.result() for key, found in copied.items()}
    assert all(found is not None for found in prints.values()), prints
    rows: list[tuple[str, str, str, audio.Alignment | None, float | None]] = []
    for (name, kind), copy_found in copy_prints.items():
        assert copy_found is not None
        found = audio.prints_align(prints[name].values, copy_found.values)  # type: ignore[union-attr]
        rows.append(("copy", f"{name} {kind}", name, found, COPIES[kind][1]))
    names = sorted(soundtracks)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            found = audio.prints_align(prints[first].values, prints[second].values)  # type: ignore[union-attr]
            rows.append(("unrelated", f"{first}/{second}", first, found, None))

    # when: the table the threshold was chosen from (pytest -s shows it)
    print(f"\n{'pair':10} {'what':22} {'BER':>6} {'overlap':>8} {'offset s':>9}")
    for kind, what, _, found, _ in rows:
        ber = "-" if found is None else f"{found.bit_error_rate:.3f}"
        overlap = "-" if found is None else str(found.overlap)
        offset = "-" if found is None else f"{found.offset_s:.2f}"
        print(f"{kind:10} {what:22} {ber:>6} {overlap:>8} {offset:>9}")
    copies = [r[3] for r in rows if r[0] == "copy"]
    unrelated = [r[3] for r in rows if r[0] == "unrelated"]
    worst_copy = max(f.bit_error_rate for f in copies if f is not None)
    closest_unrelated = min(f.bit_error_rate for f in unrelated if f is not None)
    print(f"worst copy BER {worst_copy:.3f}, closest unrelated BER {closest_unrelated:.3f}, "
          f"threshold {audio.MAX_BIT_ERROR_RATE}")  # fmt: skip

    # then: every copy is found at the time it was cut from, and no unrelated pair is the same audio
    for kind, what, name, aligned, cut_at_s in rows:
        if kind == "copy":
            assert aligned is not None and aligned.same_audio and cut_at_s is not None, (what, name, aligned)
            assert abs(aligned.offset_s - cut_at_s) < 0.3, (what, name, aligned.offset_s)
        else:
            assert aligned is None or not aligned.same_audio, (what, aligned)
    assert worst_copy < audio.MAX_BIT_ERROR_RATE < closest_unrelated


def test_audio_stereo_and_mono_copies_of_one_soundtrack_are_the_same_audio(tmp_path):
    stereo = fingerprint(soundtrack(tmp_path / "stereo.wav", seed=3), tmp_path)
    mono = fingerprint(soundtrack(tmp_path / "mono.wav", seed=3, stereo=False), tmp_path)

    assert stereo is not None and mono is not None
    found = audio.prints_align(stereo.values, mono.values)
    assert found is not None and found.same_audio and found.offset == 0


def test_audio_silence_and_a_steady_tone_give_no_fingerprint(tmp_path):
    silent, tone = tmp_path / "silent.m4a", tmp_path / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "10", "-c:a", "aac", str(silent))
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=10", "-c:a", "aac", str(tone))

    assert fingerprint(silent, tmp_path) is None
    assert fingerprint(tone, tmp_path) is None


def test_audio_a_track_shorter_than_about_five_seconds_gives_no_fingerprint(tmp_path):
    # chromaprint's filters take about 2.6 s to fill: 4.5 s give 15 sub-fingerprints, 6.5 s give 31
    track = soundtrack(tmp_path / "track.wav", seed=1, duration_s=8.0)
    short, longer = tmp_path / "short.mp3", tmp_path / "longer.mp3"
    _ffmpeg("-i", str(track), "-t", "4.5", "-c:a", "libmp3lame", "-b:a", "64k", str(short))
    _ffmpeg("-i", str(track), "-t", "6.5", "-c:a", "libmp3lame", "-b:a", "64k", str(longer))

    assert fingerprint(short, tmp_path) is None
    found = fingerprint(longer, tmp_path)
    assert found is not None and len(found.values) >= audio.MIN_OVERLAP


def test_audio_pass_out_of_time_fails_the_analysis_with_a_clear_code(tmp_path, settings):
    track = soundtrack(tmp_path / "track.wav", seed=1, duration_s=8.0)
    settings.VERIFY_FFMPEG_TIMEOUT_S = 0.001

    with pytest.raises(AnalysisFailure) as failure:
        fingerprint(track, tmp_path)

    assert failure.value.code == "analysis_timeout" and "audio" in failure.value.message


def test_audio_a_file_without_audio_gives_no_fingerprint(tmp_path):
    picture_only = photo_shot(tmp_path / "pictures.mp4", photo="coffee.png", duration_s=2.0, size=PICTURES)

    assert fingerprint(picture_only, tmp_path) is None


# --- through the real pipeline ---------------------------------------------------------------


def with_soundtrack(pictures: Path, sound: Path | None, path: Path, *audio_options: str) -> Path:
    """Write pictures (copied) with sound (re-encoded by audio_options), or with a silent track."""
    if sound is None:
        _ffmpeg("-i", str(pictures), "-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-shortest",
                "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path))  # fmt: skip
        return path
    _ffmpeg("-i", str(pictures), "-i", str(sound), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-shortest",
            *(audio_options or ("-c:a", "aac", "-b:a", "96k")), str(path))  # fmt: skip
    return path


@pytest.mark.worker
def test_same_audio_under_different_pictures_is_reported_and_unrelated_audio_is_not(worker, footage_dir, tmp_path):
    # given: footage of one place with a soundtrack; other pictures carrying the same soundtrack
    # (mono, low bitrate); other pictures with another soundtrack; and those pictures silent
    track = soundtrack(tmp_path / "track.wav", seed=4, duration_s=6.0)
    other_track = soundtrack(tmp_path / "other.wav", seed=5, duration_s=6.0)
    astronaut = photo_shot(tmp_path / "astronaut.mp4", photo="astronaut.png", duration_s=6.0, size=PICTURES)
    coffee = photo_shot(tmp_path / "coffee.mp4", photo="coffee.png", duration_s=6.0, size=PICTURES)
    cat = photo_shot(tmp_path / "cat.mp4", photo="chelsea.png", pan=Pan(x=(0.8, 0.2)), duration_s=6.0, size=PICTURES)
    api = token_client(make_user("ana", "analyst"))
    original = analysed(api, with_soundtrack(astronaut, track, tmp_path / "original.mp4"))

    # when
    dubbed = analysed(api, with_soundtrack(coffee, track, tmp_path / "dubbed.mp4", "-c:a", "aac", "-b:a", "32k",
                                           "-ac", "1"))  # fmt: skip
    unrelated = analysed(api, with_soundtrack(cat, other_track, tmp_path / "unrelated.mp4"))
    silent = analysed(api, with_soundtrack(cat, None, tmp_path / "silent.mp4"))

    # then: the dubbed copy and the original list each other as the same audio, pictures unmatched
    answer = api.get(f"/api/v1/media/{dubbed['id']}/matches/")
    assert answer.status_code == 200
    assert [m["media_item"] for m in answer.json()] == [original["id"]]
    match = answer.json()[0]
    assert [t["code"] for t in match["transformations"]] == ["same_audio"]
    assert match["matched_frame_count"] == 0 and match["frame_pairs"] == []
    assert match["audio_similarity"] > 0.8 and abs(match["audio_time_offset_s"]) < 0.3
    back = api.get(f"/api/v1/media/{original['id']}/matches/").json()
    assert [(m["media_item"], [t["code"] for t in m["transformations"]]) for m in back] == [
        (dubbed["id"], ["same_audio"])
    ]
    # the unrelated soundtrack and the silent clip (the same pictures as each other) are not the
    # same audio as anything; silence has no fingerprint
    for item in (unrelated, silent):
        listed = api.get(f"/api/v1/media/{item['id']}/matches/").json()
        assert not {original["id"], dubbed["id"]} & {m["media_item"] for m in listed}
        assert all(m["audio_similarity"] is None for m in listed)
        assert all("same_audio" not in [t["code"] for t in m["transformations"]] for m in listed)
    assert set(AudioFingerprint.objects.values_list("media_item_id", flat=True)) == {
        original["id"], dubbed["id"], unrelated["id"]
    }  # fmt: skip
    stored = np.frombuffer(bytes(AudioFingerprint.objects.get(media_item_id=dubbed["id"]).fingerprint), "<u4")
    assert len(stored) == AudioFingerprint.objects.get(media_item_id=dubbed["id"]).item_count > 20


@pytest.mark.worker
def test_same_audio_is_added_to_a_picture_match(worker, tmp_path):
    # given: a clip with a soundtrack, and its re-encoded copy with the soundtrack at low bitrate
    track = soundtrack(tmp_path / "track.wav", seed=6, duration_s=6.0)
    pictures = photo_shot(tmp_path / "pictures.mp4", photo="astronaut.png", duration_s=6.0, size=PICTURES)
    original = with_soundtrack(pictures, track, tmp_path / "original.mp4")
    reposted = tmp_path / "reposted.mp4"
    _ffmpeg("-i", str(original), "-vf", "scale=-2:360", "-c:v", "libx264", "-b:v", "400k", "-c:a", "aac",
            "-b:a", "32k", str(reposted))  # fmt: skip
    api = token_client(make_user("ana", "analyst"))
    first = analysed(api, original)

    # when
    second = analysed(api, reposted)

    # then: one match, the pictures' pairs kept, and the soundtrack named beside them
    row = MediaMatch.objects.get(media_item_id=second["id"], other_id=first["id"])
    assert row.matched_frame_count > 0 and row.frame_pairs
    assert "same_audio" in row.transformations and row.audio_similarity is not None
    assert MediaMatch.objects.filter(media_item_id=second["id"]).count() == 1


@pytest.mark.worker
def test_same_audio_an_audio_file_matches_the_video_it_was_taken_from(worker, tmp_path):
    # given: a clip with a soundtrack, and the soundtrack alone posted as an MP3 from 1.5 s in
    # (chromaprint needs about 2.6 s to start: 7.5 s of sound give about 40 sub-fingerprints)
    track = soundtrack(tmp_path / "track.wav", seed=2, duration_s=9.0)
    pictures = photo_shot(tmp_path / "pictures.mp4", photo="coffee.png", duration_s=9.0, size=PICTURES)
    video = with_soundtrack(pictures, track, tmp_path / "video.mp4")
    ripped = tmp_path / "ripped.mp3"
    _ffmpeg("-ss", "1.5", "-i", str(video), "-vn", "-c:a", "libmp3lame", "-b:a", "64k", str(ripped))
    api = token_client(make_user("ana", "analyst"))
    first = analysed(api, video)

    # when
    second = analysed(api, ripped)

    # then: the audio file lists the video as the same audio, 1.5 s into it
    listed = api.get(f"/api/v1/media/{second['id']}/matches/").json()
    assert [(m["media_item"], [t["code"] for t in m["transformations"]]) for m in listed] == [
        (first["id"], ["same_audio"])
    ]
    assert abs(listed[0]["audio_time_offset_s"] + 1.5) < 0.3, listed[0]["audio_time_offset_s"]


# --- the stored rows -------------------------------------------------------------------------


def test_audio_matches_update_converges_and_takes_back_its_evidence(db, tmp_path):
    # given: three items; a and b share a soundtrack, and b and c already match by their pictures
    owner = make_user("ana", "analyst")
    a, b, c = (media_rows(open_case(owner, title=name), owner, sha=name, times=(0.0,)) for name in "abc")
    track = soundtrack(tmp_path / "track.wav", seed=3, duration_s=8.0)
    same = fingerprint(track, tmp_path)
    copied = fingerprint(copy(track, tmp_path / "copy.m4a", "aac_32k_mono"), tmp_path)
    assert same is not None and copied is not None
    match_rows(b, c, [[0.0, 0.0]], transformations=["rotated"])

    def rows() -> set[tuple[int, int, tuple[str, ...], bool]]:
        return {
            (m.media_item_id, m.other_id, tuple(m.transformations), m.audio_similarity is not None)
            for m in MediaMatch.objects.all()
        }

    # when: a, then b, then c with a copy of the soundtrack; then c again
    audio.audio_matches_update(media_item=a, audio=same)
    audio.audio_matches_update(media_item=b, audio=None)
    found = audio.audio_matches_update(media_item=c, audio=copied)
    once = rows()
    audio.audio_matches_update(media_item=c, audio=copied)

    # then: c has a's soundtrack, in a row of its own (b has none yet); a re-run gives the same rows
    assert [m.other_id for m in found] == [a.pk]
    assert (
        once
        == rows()
        == {
            (c.pk, a.pk, ("same_audio",), True),
            (a.pk, c.pk, ("same_audio",), True),
            (b.pk, c.pk, ("rotated",), False),
            (c.pk, b.pk, ("rotated",), False),
        }
    )
    # and when b turns out to carry the soundtrack too, same_audio joins its picture match with c
    audio.audio_matches_update(media_item=b, audio=same)
    assert (b.pk, c.pk, ("rotated", "same_audio"), True) in rows()
    assert (c.pk, b.pk, ("rotated", "same_audio"), True) in rows()
    # and when c loses its soundtrack (analysed again, silent), its audio evidence goes, pictures stay
    audio.audio_matches_update(media_item=c, audio=None)
    assert rows() == {
        (a.pk, b.pk, ("same_audio",), True),
        (b.pk, a.pk, ("same_audio",), True),
        (b.pk, c.pk, ("rotated",), False),
        (c.pk, b.pk, ("rotated",), False),
    }


@pytest.mark.worker
def test_same_audio_fast_mode_takes_no_fingerprint(worker, tmp_path):
    track = soundtrack(tmp_path / "track.wav", seed=5, duration_s=6.0)
    pictures = photo_shot(tmp_path / "pictures.mp4", photo="chelsea.png", duration_s=6.0, size=PICTURES)
    video = with_soundtrack(pictures, track, tmp_path / "video.mp4")
    api = token_client(make_user("ana", "analyst"))

    fast = analysed(api, video, mode="fast")
    full = analysed(api, video)

    assert not AudioFingerprint.objects.filter(media_item_id=fast["id"]).exists()
    assert AudioFingerprint.objects.filter(media_item_id=full["id"]).exists()
