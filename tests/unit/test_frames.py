import cv2
import numpy as np
import pytest

from charaid.frames import Sampling, dhash, extract_frames, hamming, iter_video, read_index
from tests.helpers import moving_square_frames, write_video


def test_dhash_ignores_small_noise_and_sees_changes():
    a, b = moving_square_frames(2, (320, 240))
    noisy = np.clip(a.astype(int) + np.random.default_rng(0).integers(-3, 4, a.shape), 0, 255)
    assert hamming(dhash(a), dhash(noisy.astype(np.uint8))) <= 3
    assert hamming(dhash(a), dhash(b)) > 3


def bare_read(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


def test_reused_frame_buffers_never_overwrite_a_frame_the_caller_holds(tmp_path):
    video = write_video(tmp_path / "a.mp4", moving_square_frames(12))
    expected = bare_read(video)
    every = Sampling(every_n_frames=1, dedup_distance=-1)
    # a streaming caller sees each frame as decoded, and the buffers really are reused
    streamed, ids = [], set()
    for _, _, frame in iter_video(video, every):
        streamed.append(frame.copy())
        ids.add(id(frame))
    assert len(ids) < len(expected)
    # a caller that keeps every frame (or a view of it) keeps them intact
    kept = [frame for _, _, frame in iter_video(video, every)]
    views = [frame[10:50] for _, _, frame in iter_video(video, every)]
    for want, a, b, view in zip(expected, streamed, kept, views, strict=True):
        assert np.array_equal(a, want) and np.array_equal(b, want)
        assert np.array_equal(view, want[10:50])


def test_every_n_frames_and_index(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "ep1.mp4", moving_square_frames(20))
    summary = extract_frames(
        src, tmp_path / "frames", Sampling(every_n_frames=5, dedup_distance=-1)
    )
    rows = read_index(tmp_path / "frames" / "index.csv")
    assert summary["frames"] == 4
    assert [int(r["frame"]) for r in rows] == [0, 5, 10, 15]
    assert all((tmp_path / "frames" / r["path"]).is_file() for r in rows)


def test_near_duplicates_are_skipped(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    moving = moving_square_frames(6)
    frames = [moving[0]] * 5 + moving[1:]  # a held shot, then motion
    write_video(src / "held.mp4", frames)
    summary = extract_frames(src, tmp_path / "out", Sampling(every_n_frames=1, dedup_distance=3))
    assert summary["frames"] == 6  # the 4 repeats of the held frame are dropped


def test_fps_sampling_and_max_frames(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "a.mp4", moving_square_frames(30), fps=10)
    extract_frames(src, tmp_path / "o", Sampling(fps=2, dedup_distance=-1, max_frames=3))
    assert [int(r["frame"]) for r in read_index(tmp_path / "o" / "index.csv")] == [0, 5, 10]


def test_corrupt_and_fake_videos_are_reported_and_skipped(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "good.mp4", moving_square_frames(4))
    (src / "notes.mp4").write_text("this is not a video")
    (src / "empty.mkv").write_bytes(b"")
    (src / ".hidden.mp4").write_text("ignored")
    summary = extract_frames(src, tmp_path / "out", Sampling(every_n_frames=1, dedup_distance=-1))
    err = capsys.readouterr().err
    assert sorted(summary["skipped"]) == ["empty.mkv", "notes.mp4"]
    assert "notes.mp4: no decodable frames" in err and ".hidden" not in err
    assert summary["frames"] == 4


def test_nothing_decodable_is_an_error_and_leaves_no_output(tmp_path):
    from charaid.errors import CharaidError

    src = tmp_path / "in"
    src.mkdir()
    (src / "bad.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(CharaidError, match="none of the inputs could be decoded"):
        extract_frames(src, tmp_path / "out", Sampling())
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    with pytest.raises(CharaidError, match="no such folder"):
        extract_frames(tmp_path / "missing", tmp_path / "out", Sampling())


def test_pictures_pass_through(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), moving_square_frames(1)[0])
    gray16 = np.arange(100 * 80, dtype=np.uint16).reshape(80, 100) * 8
    cv2.imwrite(str(src / "b16.png"), gray16)
    (src / "c.jpg").write_bytes(b"not a jpeg")
    summary = extract_frames(src, tmp_path / "out", Sampling())
    assert summary["frames"] == 2 and summary["skipped"] == ["c.jpg"]
