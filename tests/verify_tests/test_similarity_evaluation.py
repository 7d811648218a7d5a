"""The measurement behind the choice of hash and threshold for recycled footage.

It generates an original clip, the copies it turns into on the way through messaging apps, and
unrelated footage that merely looks alike; samples every clip at 2 frames per second; and
compares the frames of each copy with the original frames they show (positives) and the frames
of the look-alikes with each other and with the original (negatives), with PDQ (256 bits) and
with the 64-bit pHash the keyframe pass already computes.

Print the table in the README with::

    python -m tests.verify_tests.test_similarity_evaluation

The test below keeps the chosen threshold honest: every positive frame pair within it, no
negative pair within it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg
import pytest

from verify.frames import frame_hash
from verify.similarity.hashes import hamming_hex, image_pdq

SIZE = (848, 480)
FPS = 25
SHOT_S = 2.5
# Shots are lavfi generators drawn small and scaled up, so that, like camera footage, they have
# large shapes rather than pixel-sized detail. Each has a seed or a start: a look-alike can be
# "the same kind of place at another time" by changing it.
ORIGINAL_SHOTS = (
    "mandelbrot=start_scale=2.5",
    "life=seed=7:ratio=0.3:mold=20:life_color=#d0b070:death_color=#203050@106x60",
    "sierpinski=seed=3:type=carpet",
    "cellauto=seed=5:rule=30:random_fill_ratio=0.4@106x60",
    "testsrc2",
    "life=seed=9:ratio=0.5:life_color=#60a0d0:death_color=#402010@53x30",
)
ORIGINAL_CUTS_S = tuple(SHOT_S * i for i in range(1, len(ORIGINAL_SHOTS)))
# The same generators with other seeds or at another moment: the same place at another time.
OTHER_TIME_SHOTS = (
    "mandelbrot=start_scale=0.3",
    "life=seed=17:ratio=0.3:mold=20:life_color=#d0b070:death_color=#203050@106x60",
    "sierpinski=seed=13:type=triangle",
    "cellauto=seed=15:rule=30:random_fill_ratio=0.4@106x60",
    "testsrc2",
    "life=seed=19:ratio=0.5:life_color=#60a0d0:death_color=#402010@53x30",
)
# Two night scenes: dark, low-contrast footage of different things.
NIGHT_A_SHOTS = ("life=seed=21:ratio=0.4@106x60", "cellauto=seed=31:rule=90@106x60", "mandelbrot=start_x=-0.7")
NIGHT_B_SHOTS = ("life=seed=22:ratio=0.4@106x60", "cellauto=seed=32:rule=90@106x60", "mandelbrot=start_x=-1.2")
_NIGHT = "eq=brightness=-0.3:contrast=0.6"


def _encode(stream: Any, path: Path, **options: Any) -> Path:
    defaults = {"vcodec": "libx264", "pix_fmt": "yuv420p", "preset": "veryfast", "b:v": "1200k", "an": None}
    stream.output(str(path), **{**defaults, **options}).overwrite_output().run(quiet=True)
    return path


def _shot(source: str, *, duration_s: float, start_s: float = 0.0) -> Any:
    width, height = SIZE
    generator, _, drawn = source.partition("@")
    size = drawn or f"{width}x{height}"
    separator = ":" if "=" in generator else "="
    shot = ffmpeg.input(f"{generator}{separator}s={size}:r={FPS}", f="lavfi", t=start_s + duration_s).video
    if start_s:
        shot = shot.filter("trim", start=start_s).filter("setpts", "PTS-STARTPTS")
    if drawn:
        shot = shot.filter("scale", width, height, flags="bicubic")
    return shot.filter("setsar", "1")


def _shots(sources: Sequence[str], *, start_s: float = 0.0, look: str = "") -> Any:
    shots = [_shot(source, duration_s=SHOT_S, start_s=start_s) for source in sources]
    video = ffmpeg.concat(*shots, v=1, a=0)
    if look:
        name, _, args = look.partition("=")
        video = video.filter(name, **dict(a.split("=") for a in args.split(":")))
    return video.filter("noise", alls=4, allf="t")


def clip_original(path: Path) -> Path:
    """Write the original: six 2.5-second shots, 848x480 at 25 fps (cuts every 2.5 s)."""
    return _encode(_shots(ORIGINAL_SHOTS), path)


def clip_other_time(path: Path) -> Path:
    """Write the same generators with other seeds, starting at another moment."""
    return _encode(_shots(OTHER_TIME_SHOTS, start_s=7.0), path)


def clip_night(path: Path, sources: Sequence[str]) -> Path:
    """Write a dark, low-contrast multi-shot clip."""
    return _encode(_shots(sources, look=_NIGHT), path)


def clip_test_card(path: Path, card: str, *, duration_s: float = 5.0) -> Path:
    """Write a clip of one broadcast test card with sensor noise."""
    width, height = SIZE
    video = ffmpeg.input(f"{card}=s={width}x{height}:r={FPS}", f="lavfi", t=duration_s).video
    return _encode(video.filter("noise", alls=4, allf="t"), path)


def variant(original: Path, path: Path, transform: str, *, shift_s: float = 0.0) -> Path:
    """Write a copy of original as it comes back from a messaging app; see TRANSFORMS."""
    source = ffmpeg.input(str(original))
    video = source.video
    options: dict[str, Any] = {}
    if transform == "reencoded":
        options["b:v"] = "200k"
    elif transform == "360p":
        video = video.filter("scale", 640, 360)
    elif transform == "logo":
        video = video.filter("drawbox", x="iw-156", y=16, w=140, h=44, color="white@0.7", t="fill")
        video = video.filter("drawbox", x="iw-148", y=22, w=32, h=32, color="red@0.9", t="fill")
    elif transform == "crop":
        video = video.filter("crop", "iw*0.96", "ih*0.96").filter("scale", SIZE[0], SIZE[1])
    elif transform == "trimmed":
        video = video.filter("trim", start=2.0, end=13.5).filter("setpts", "PTS-STARTPTS")
    elif transform == "excerpt":
        video = video.filter("trim", start=4.0, end=12.0).filter("setpts", "PTS-STARTPTS")
    elif transform == "mirrored":
        video = video.filter("hflip")
    elif transform == "reposted":  # the done-when copy: excerpt, 360p, logo, low bitrate
        video = video.filter("trim", start=4.0, end=12.0).filter("setpts", "PTS-STARTPTS")
        video = video.filter("scale", 640, 360)
        video = video.filter("drawbox", x="iw-140", y=12, w=124, h=44, color="white@0.85", t="fill")
        options["b:v"] = "250k"
    else:
        raise ValueError(transform)
    return _encode(video, path, **options)


def clip_embedding(original: Path, path: Path) -> Path:
    """Write a longer clip that holds the whole original after a 2.5-second shot of its own."""
    width, height = SIZE
    before = ffmpeg.input(f"testsrc=s={width}x{height}:r={FPS}", f="lavfi", t=SHOT_S).video.filter("setsar", "1")
    after = ffmpeg.input(f"rgbtestsrc=s={width}x{height}:r={FPS}", f="lavfi", t=SHOT_S).video.filter("setsar", "1")
    middle = ffmpeg.input(str(original)).video.filter("setsar", "1")
    return _encode(ffmpeg.concat(before, middle, after, v=1, a=0), path)


# transform: time in the original of the copy's t=0
TRANSFORMS = {
    "reencoded": 0.0,
    "360p": 0.0,
    "logo": 0.0,
    "crop": 0.0,
    "trimmed": 2.0,
    "excerpt": 4.0,
    "mirrored": 0.0,
    "reposted": 4.0,
}
EMBEDDING_SHIFT_S = -SHOT_S  # original time = embedding time - 2.5 s
PDQ_THRESHOLDS = (31, 40, 48, 56, 64, 72)
PHASH_THRESHOLDS = (8, 10, 12, 14, 16, 18)  # the same fractions of 64 bits


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SampledFrame:
    time_s: float
    pdq: str
    pdq_mirrored: str
    quality: int
    phash: str


def sample_frames(clip: Path, workdir: Path, *, fps: int = 2) -> list[SampledFrame]:
    """Return the clip's frames at ``fps`` per second, hashed like keyframes are."""
    out = workdir / clip.stem
    out.mkdir(exist_ok=True)
    ffmpeg.input(str(clip)).video.filter("fps", fps).output(
        str(out / "f_%04d.jpg"), **{"q:v": 2}
    ).overwrite_output().run(quiet=True)
    frames = []
    for index, path in enumerate(sorted(out.glob("f_*.jpg"))):
        pdq = image_pdq(path)
        phash, _, _ = frame_hash(path)
        frames.append(SampledFrame(index / fps, pdq.pdq, pdq.pdq_mirrored, pdq.quality, str(phash)))
    return frames


def _near_cut(time_s: float, cuts: Sequence[float], margin_s: float = 0.3) -> bool:
    return any(abs(time_s - cut) < margin_s for cut in cuts)


@dataclass
class Distances:
    pdq: list[int]
    phash: list[int]


def positive_distances(
    original: list[SampledFrame], copy: list[SampledFrame], *, shift_s: float, mirrored: bool = False
) -> Distances:
    """Return distances between each frame of the copy and the original frame it shows."""
    by_time = {round(f.time_s, 2): f for f in original}
    result = Distances([], [])
    for frame in copy:
        source_time = round(frame.time_s + shift_s, 2)
        if source_time not in by_time or _near_cut(source_time, (0.0, *ORIGINAL_CUTS_S)):
            continue
        source = by_time[source_time]
        if source.quality < 50 or frame.quality < 50:
            continue
        result.pdq.append(hamming_hex(frame.pdq_mirrored if mirrored else frame.pdq, source.pdq))
        if not mirrored:
            result.phash.append(hamming_hex(frame.phash, source.phash))
    return result


def negative_distances(a: list[SampledFrame], b: list[SampledFrame]) -> Distances:
    """Return distances between every frame of a and every frame of b (both qualities >= 50)."""
    result = Distances([], [])
    for x in a:
        for y in b:
            if x.quality < 50 or y.quality < 50:
                continue
            result.pdq.append(min(hamming_hex(x.pdq, y.pdq), hamming_hex(x.pdq_mirrored, y.pdq)))
            result.phash.append(hamming_hex(x.phash, y.phash))
    return result


@dataclass
class Evaluation:
    positives: dict[str, Distances]
    negatives: dict[str, Distances]
    low_quality: dict[str, tuple[int, int]]  # clip: (frames below quality 50, frames)


def evaluate(workdir: Path, *, fps: int = 2) -> Evaluation:
    """Generate the corpus in workdir and measure it, sampling ``fps`` frames per second."""
    original = clip_original(workdir / "original.mp4")
    clips: dict[str, Path] = {name: variant(original, workdir / f"{name}.mp4", name) for name in TRANSFORMS}
    clips["embedding"] = clip_embedding(original, workdir / "embedding.mp4")
    looks = {
        "other_time": clip_other_time(workdir / "other_time.mp4"),
        "night_a": clip_night(workdir / "night_a.mp4", NIGHT_A_SHOTS),
        "night_b": clip_night(workdir / "night_b.mp4", NIGHT_B_SHOTS),
        "smptebars": clip_test_card(workdir / "smptebars.mp4", "smptebars"),
        "smptehdbars": clip_test_card(workdir / "smptehdbars.mp4", "smptehdbars"),
        "pal100bars": clip_test_card(workdir / "pal100bars.mp4", "pal100bars"),
    }
    sampled = {
        name: sample_frames(path, workdir, fps=fps) for name, path in {"original": original, **clips, **looks}.items()
    }
    positives = {
        name: positive_distances(sampled["original"], sampled[name], shift_s=shift, mirrored=name == "mirrored")
        for name, shift in TRANSFORMS.items()
    }
    positives["embedding"] = positive_distances(sampled["original"], sampled["embedding"], shift_s=EMBEDDING_SHIFT_S)
    pairs = {
        "other_time vs original": ("other_time", "original"),
        "night_a vs night_b": ("night_a", "night_b"),
        "smptebars vs smptehdbars": ("smptebars", "smptehdbars"),
        "smptebars vs pal100bars": ("smptebars", "pal100bars"),
        "smptehdbars vs pal100bars": ("smptehdbars", "pal100bars"),
        "night_a vs original": ("night_a", "original"),
    }
    negatives = {label: negative_distances(sampled[a], sampled[b]) for label, (a, b) in pairs.items()}
    low_quality = {name: (sum(f.quality < 50 for f in frames), len(frames)) for name, frames in sampled.items()}
    return Evaluation(positives, negatives, low_quality)


def _fraction_within(values: list[int], threshold: int) -> float:
    return sum(v <= threshold for v in values) / len(values) if values else float("nan")


def report(evaluation: Evaluation, *, pdq_thresholds: Sequence[int], phash_thresholds: Sequence[int]) -> str:
    """Return the measurement as a Markdown table."""
    header = ["pair", "kind", "n", "PDQ median", "PDQ max/min"]
    header += [f"PDQ ≤{t}" for t in pdq_thresholds] + ["pHash median", "pHash max/min"]
    header += [f"pHash ≤{t}" for t in phash_thresholds]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups: list[tuple[str, str, Distances, Callable[[list[int]], int]]] = [
        (name, "copy", d, max) for name, d in evaluation.positives.items()
    ]
    groups += [(name, "look-alike", d, min) for name, d in evaluation.negatives.items()]
    for name, kind, distances, extreme in groups:
        row = [name, kind, str(len(distances.pdq))]
        row += [f"{statistics.median(distances.pdq):.0f}", str(extreme(distances.pdq))]
        row += [f"{_fraction_within(distances.pdq, t):.0%}" for t in pdq_thresholds]
        if distances.phash:
            row += [f"{statistics.median(distances.phash):.0f}", str(extreme(distances.phash))]
            row += [f"{_fraction_within(distances.phash, t):.0%}" for t in phash_thresholds]
        else:
            row += ["–"] * (2 + len(phash_thresholds))
        lines.append("| " + " | ".join(row) + " |")
    low = ", ".join(f"{name} {n}/{total}" for name, (n, total) in evaluation.low_quality.items() if n)
    lines.append("")
    lines.append(f"Frames under PDQ quality 50 (left out above): {low or 'none'}")
    return "\n".join(lines)


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> Evaluation:
    return evaluate(tmp_path_factory.mktemp("similarity-evaluation"), fps=1)


def test_similarity_evaluation_pdq_threshold_keeps_copies_and_rejects_lookalikes(evaluation, settings):
    threshold = settings.VERIFY_PDQ_MAX_DISTANCE
    within = {name: _fraction_within(d.pdq, threshold) for name, d in evaluation.positives.items()}
    # a 4 % crop moves every block of the 16x16 DCT grid: the weakest copy, still most frames
    assert within.pop("crop") >= 0.6, within
    assert min(within.values()) >= 0.9, within
    for name, distances in evaluation.negatives.items():
        assert _fraction_within(distances.pdq, threshold) <= 0.02, name


def test_similarity_evaluation_pdq_beats_phash_on_the_reposted_excerpt(evaluation, settings):
    # at the same share of the hash bits, pHash loses the logo-stamped 360p excerpt
    reposted = evaluation.positives["reposted"]
    threshold = settings.VERIFY_PDQ_MAX_DISTANCE
    assert _fraction_within(reposted.pdq, threshold) > _fraction_within(reposted.phash, threshold * 64 // 256) + 0.3


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as work:
        result = evaluate(Path(work))
    sys.stdout.write(report(result, pdq_thresholds=PDQ_THRESHOLDS, phash_thresholds=PHASH_THRESHOLDS) + "\n")
