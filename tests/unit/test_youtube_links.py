"""The YouTube link parser: a table of accepted forms and a table of refused ones."""

from __future__ import annotations

import pytest

from refract.youtube.links import (
    CHANNEL_PAGE,
    MALFORMED_ID,
    NOT_A_VIDEO_LINK,
    PLAYLIST_PAGE,
    TOO_LONG,
    InvalidVideoLink,
    VideoRef,
    parse_video_url,
)

ID = "dQw4w9WgXcQ"
ID2 = "9bZkp7q19f0"
ID3 = "a-b_C1d2E3f"

VALID: list[tuple[str, str]] = [
    # watch?v= in its many dresses
    (f"https://www.youtube.com/watch?v={ID}", ID),
    (f"http://www.youtube.com/watch?v={ID}", ID),
    (f"https://youtube.com/watch?v={ID}", ID),
    (f"https://m.youtube.com/watch?v={ID}", ID),
    (f"https://music.youtube.com/watch?v={ID}", ID),
    (f"www.youtube.com/watch?v={ID}", ID),
    (f"youtube.com/watch?v={ID}", ID),
    (f"m.youtube.com/watch?v={ID}&feature=share", ID),
    (f"https://www.youtube.com/watch?v={ID2}&t=90", ID2),
    (f"https://www.youtube.com/watch?t=1m30s&v={ID2}", ID2),
    (f"https://www.youtube.com/watch?v={ID}&list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&index=3", ID),
    (f"https://www.youtube.com/watch?list=PL123&v={ID}", ID),
    (f"https://www.youtube.com/watch?v={ID}&si=AbCdEfGhIjK", ID),
    (f"https://www.youtube.com/watch?feature=youtu.be&v={ID}", ID),
    (f"https://www.youtube.com/watch?v={ID}&pp=ygUEcmljaw%3D%3D", ID),
    (f"https://www.youtube.com/watch?v={ID}&ab_channel=RickAstley", ID),
    (f"https://www.youtube.com/watch?v={ID}&v={ID}", ID),
    (f"https://www.youtube.com/watch/?v={ID}", ID),
    (f"https://www.youtube.com/watch?v={ID}#t=30", ID),
    (f"https://WWW.YOUTUBE.COM/watch?v={ID}", ID),
    (f"HTTPS://www.YouTube.com/watch?v={ID}", ID),
    (f"  https://www.youtube.com/watch?v={ID}  ", ID),
    (f"\thttps://www.youtube.com/watch?v={ID}\n", ID),
    (f"https://www.youtube.com:443/watch?v={ID}", ID),
    (f"http://www.youtube.com:80/watch?v={ID}", ID),
    (f"https://www.youtube.com/watch?v={ID3}", ID3),
    # youtu.be
    (f"https://youtu.be/{ID}", ID),
    (f"http://youtu.be/{ID}", ID),
    (f"youtu.be/{ID}", ID),
    (f"https://youtu.be/{ID}?si=Xy12_zzAbCdE", ID),
    (f"https://youtu.be/{ID}?t=42", ID),
    (f"https://youtu.be/{ID}/", ID),
    (f"https://YOUTU.BE/{ID2}", ID2),
    # path forms
    (f"https://www.youtube.com/shorts/{ID}", ID),
    (f"https://youtube.com/shorts/{ID}?feature=share", ID),
    (f"https://www.youtube.com/shorts/{ID}/", ID),
    (f"https://m.youtube.com/shorts/{ID}", ID),
    (f"https://www.youtube.com/embed/{ID}", ID),
    (f"https://www.youtube.com/embed/{ID}?start=30&autoplay=1", ID),
    (f"https://www.youtube.com/live/{ID}", ID),
    (f"https://www.youtube.com/live/{ID}?si=abc", ID),
    (f"https://www.youtube.com/v/{ID}", ID),
    (f"https://www.youtube.com/e/{ID}", ID),
    (f"https://www.youtube-nocookie.com/embed/{ID}", ID),
    (f"https://youtube-nocookie.com/embed/{ID}?rel=0", ID),
]

LONG_TAIL = "&x=" + "a" * 2100

INVALID: list[tuple[str, str]] = [
    # empty and junk
    ("", NOT_A_VIDEO_LINK),
    ("   ", NOT_A_VIDEO_LINK),
    ("hello", NOT_A_VIDEO_LINK),
    (ID, NOT_A_VIDEO_LINK),
    # other hosts and look-alikes
    (f"https://vimeo.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://youtube.com.evil.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://evil-youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://notyoutube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://youtu.be.evil.com/{ID}", NOT_A_VIDEO_LINK),
    (f"https://youtube.co/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com./watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://gaming.youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtu.be/{ID}", NOT_A_VIDEO_LINK),
    (f"https://youtube.com@evil.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://user:pass@www.youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://evil.com\\@www.youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com\\.evil.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://youtu.be/{ID}\\", NOT_A_VIDEO_LINK),
    (f"https://xn--yutube-wqf.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://y\u043eutube.com/watch?v={ID}", NOT_A_VIDEO_LINK),  # Cyrillic o
    (f"https://%79outube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://127.0.0.1/watch?v={ID}", NOT_A_VIDEO_LINK),
    # other schemes
    (f"javascript:alert(1)//youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"data:text/html,youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"ftp://www.youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"file:///www.youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"//www.youtube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    # ports
    (f"https://www.youtube.com:8080/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"http://www.youtube.com:443/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com:/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"www.youtube.com:443/watch?v={ID}", NOT_A_VIDEO_LINK),
    # channels, playlists, pages without a video
    ("https://www.youtube.com/@GoogleCloudTech", CHANNEL_PAGE),
    ("https://www.youtube.com/@GoogleCloudTech/videos", CHANNEL_PAGE),
    ("https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw", CHANNEL_PAGE),
    ("https://www.youtube.com/c/GoogleDevelopers", CHANNEL_PAGE),
    ("https://www.youtube.com/user/GoogleDevelopers", CHANNEL_PAGE),
    ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", PLAYLIST_PAGE),
    ("https://www.youtube.com/watch?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", PLAYLIST_PAGE),
    ("https://www.youtube.com/embed/videoseries?list=PL123", PLAYLIST_PAGE),
    ("https://www.youtube-nocookie.com/embed/videoseries?list=PL123", PLAYLIST_PAGE),
    ("https://www.youtube.com/watch", NOT_A_VIDEO_LINK),
    ("https://www.youtube.com/", NOT_A_VIDEO_LINK),
    ("https://youtu.be/", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/results?search_query={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube-nocookie.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/watch?v={ID}&v={ID2}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/shorts/{ID}/extra", NOT_A_VIDEO_LINK),
    (f"https://youtu.be/{ID}/extra", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/WATCH?v={ID}", NOT_A_VIDEO_LINK),
    # malformed ids
    ("https://www.youtube.com/watch?v=dQw4w9WgXc", MALFORMED_ID),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQQ", MALFORMED_ID),
    ("https://www.youtube.com/watch?v=dQw4w9WgXc!", MALFORMED_ID),
    ("https://www.youtube.com/watch?v=dQw4w9WgX%0A", MALFORMED_ID),
    ("https://www.youtube.com/watch?v=dQw4w9Wg%2FQ", MALFORMED_ID),
    ("https://www.youtube.com/watch?v=", MALFORMED_ID),
    ("https://youtu.be/dQw4w9WgXc", MALFORMED_ID),
    ("https://youtu.be/videoseries", MALFORMED_ID),
    ("https://youtu.be/dQw4w9WgXcQ.", MALFORMED_ID),
    ("https://www.youtube.com/shorts/dQw4w9WgXcQQ", MALFORMED_ID),
    ("https://www.youtube.com/embed/dQw4w9Wg+cQ", MALFORMED_ID),
    ("https://www.youtube.com/embed/dQw4w9Wg%58cQ", MALFORMED_ID),
    # whitespace and control characters inside, length
    (f"https://www.youtube.com/watch?v= {ID}", NOT_A_VIDEO_LINK),
    (f"https://www.you\ttube.com/watch?v={ID}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/watch?v={ID[:5]}\n{ID[5:]}", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/watch?v={ID}\x00", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/watch?v={ID}\u200b", NOT_A_VIDEO_LINK),
    (f"https://www.youtube.com/watch?v={ID}{LONG_TAIL}", TOO_LONG),
]


@pytest.mark.parametrize(("raw", "video_id"), VALID)
def test_accepts_common_video_link_forms(raw: str, video_id: str) -> None:
    ref = parse_video_url(raw)
    assert ref.video_id == video_id
    assert ref.canonical_url == f"https://www.youtube.com/watch?v={video_id}"


@pytest.mark.parametrize(("raw", "message"), INVALID)
def test_refuses_anything_else(raw: str, message: str) -> None:
    with pytest.raises(InvalidVideoLink) as caught:
        parse_video_url(raw)
    assert str(caught.value) == message


def test_tables_are_large_enough() -> None:
    assert len(VALID) >= 40
    assert len(INVALID) >= 40


def test_invalid_video_link_is_a_value_error() -> None:
    assert issubclass(InvalidVideoLink, ValueError)


def test_non_string_input_is_refused() -> None:
    with pytest.raises(InvalidVideoLink):
        parse_video_url(None)  # type: ignore[arg-type]


def test_length_limit_is_inclusive() -> None:
    base = f"https://www.youtube.com/watch?v={ID}&x="
    at_limit = base + "a" * (2048 - len(base))
    assert parse_video_url(at_limit).video_id == ID
    with pytest.raises(InvalidVideoLink, match="too long"):
        parse_video_url(at_limit + "a")


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        (f"https://youtu.be/{ID}?t=90", 90),
        (f"https://youtu.be/{ID}?t=90s", 90),
        (f"https://www.youtube.com/watch?v={ID}&t=1m30s", 90),
        (f"https://www.youtube.com/watch?v={ID}&t=1h2m3s", 3723),
        (f"https://www.youtube.com/watch?v={ID}&t=2m", 120),
        (f"https://www.youtube.com/embed/{ID}?start=45", 45),
        (f"https://www.youtube.com/watch?v={ID}#t=15", 15),
        (f"https://www.youtube.com/watch?v={ID}", None),
        (f"https://www.youtube.com/watch?v={ID}&t=", None),
        (f"https://www.youtube.com/watch?v={ID}&t=soon", None),
        (f"https://www.youtube.com/watch?v={ID}&t=" + "9" * 40, None),
    ],
)
def test_start_time_is_parsed_when_well_formed(raw: str, start: int | None) -> None:
    assert parse_video_url(raw).start_s == start


def test_refs_to_the_same_video_are_equal_whatever_the_start() -> None:
    assert parse_video_url(f"https://youtu.be/{ID}?t=10") == VideoRef(ID)
    assert hash(parse_video_url(f"https://youtu.be/{ID}?t=10")) == hash(VideoRef(ID))


@pytest.mark.parametrize("bad", ["short", "dQw4w9WgXcQQ", "dQw4w9WgX/Q", "videoseries"])
def test_video_ref_refuses_a_malformed_id(bad: str) -> None:
    with pytest.raises(InvalidVideoLink, match="malformed"):
        VideoRef(bad)
