"""The YouTube client through real HTTP against the fake YouTube: answers and failures."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from refract.core.errors import FeatureError
from refract.core.material import Comment, TranscriptLine
from refract.core.settings import Settings
from refract.youtube.cache import YouTubeMaterial
from refract.youtube.client import YouTubeClient, fetch_transcript, parse_iso_duration
from tests.support.fakes.youtube import DEFAULT_KEY, FakeComment, FakeYouTube, make_comments
from tests.support.services import free_port
from tests.support.youtube import OTHER, VIDEO, TranscriptCalls


def failure(call: Callable[[], object]) -> FeatureError:
    with pytest.raises(FeatureError) as info:
        call()
    return info.value


# --- metadata ----------------------------------------------------------------------------


def test_metadata_from_the_data_api(fake: FakeYouTube, client: YouTubeClient) -> None:
    fake.add_video(
        VIDEO,
        title="Never Gonna",
        channel="Rick",
        duration="PT4M13S",
        view_count=1_500_000_000,
        like_count=17_000_000,
        language="en-GB",
        comments=make_comments(7),
        description="The classic.",
    )
    meta = client.fetch_metadata(VIDEO)
    assert (meta.title, meta.channel, meta.description) == ("Never Gonna", "Rick", "The classic.")
    assert meta.duration_s == 253.0
    assert (meta.view_count, meta.like_count, meta.comment_count) == (1_500_000_000, 17_000_000, 7)
    assert meta.published_at == "2024-11-05T09:00:00Z"
    assert meta.language == "en-GB"
    assert (meta.source, meta.quota_units) == ("data_api", 1)
    [request] = fake.requests
    assert request.path == "/youtube/v3/videos"
    assert request.query == {
        "part": "snippet,contentDetails,statistics",
        "id": VIDEO,
        "key": DEFAULT_KEY,
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT4M13S", 253.0),
        ("P1DT2H", 93600.0),
        ("PT1H", 3600.0),
        ("PT59.5S", 59.5),
        ("P1W", 604800.0),
        ("P0D", None),  # live or upcoming: length unknown
        ("PT0S", None),
        ("4:13", None),
        ("P", None),
        ("", None),
        (None, None),
    ],
)
def test_iso_durations(text: str | None, seconds: float | None) -> None:
    assert parse_iso_duration(text) == seconds


def test_comment_count_absent_when_comments_are_off(
    fake: FakeYouTube, client: YouTubeClient
) -> None:
    fake.add_video(VIDEO, comments_disabled=True, duration="P0D")
    meta = client.fetch_metadata(VIDEO)
    assert meta.comment_count is None
    assert meta.duration_s is None


@pytest.mark.parametrize("private", [False, True])
def test_data_api_unknown_and_private_videos_are_unavailable(
    fake: FakeYouTube, client: YouTubeClient, private: bool
) -> None:
    if private:
        fake.add_video(VIDEO, private=True)
    # The Data API answers both with an empty list, so they cannot be told apart.
    error = failure(lambda: client.fetch_metadata(VIDEO))
    assert error.code == "video_unavailable"
    assert error.details["quota_units"] == 1


def test_metadata_from_oembed_without_a_key(
    fake: FakeYouTube, make_client: Callable[..., YouTubeClient]
) -> None:
    fake.add_video(VIDEO, title="Title from oEmbed", channel="The Channel")
    youtube = make_client(youtube_api_key=None)
    meta = youtube.fetch_metadata(VIDEO)
    assert (meta.title, meta.channel, meta.source) == ("Title from oEmbed", "The Channel", "oembed")
    assert meta.duration_s is None and meta.view_count is None and meta.quota_units == 0
    [request] = fake.requests
    assert request.path == "/oembed"
    assert request.query == {"url": f"https://www.youtube.com/watch?v={VIDEO}", "format": "json"}


@pytest.mark.parametrize(
    ("private", "code"), [(True, "video_private"), (False, "video_unavailable")]
)
def test_oembed_failures(
    fake: FakeYouTube, make_client: Callable[..., YouTubeClient], private: bool, code: str
) -> None:
    if private:
        fake.add_video(VIDEO, private=True)
    youtube = make_client(youtube_api_key=None)
    assert failure(lambda: youtube.fetch_metadata(VIDEO)).code == code


def test_a_malformed_id_is_refused_before_any_request(
    fake: FakeYouTube, client: YouTubeClient
) -> None:
    with pytest.raises(ValueError):
        client.fetch_metadata("../../etc/x")
    assert fake.requests == []


# --- comments ----------------------------------------------------------------------------


def test_comments_are_paged_up_to_the_limit(fake: FakeYouTube, client: YouTubeClient) -> None:
    fake.add_video(VIDEO, comments=make_comments(250))
    result = client.fetch_comments(VIDEO, 230)
    assert (result.pages, result.quota_units, result.complete) == (3, 3, True)
    assert [c.text for c in result.comments] == [f"comment {i}" for i in range(230)]
    requests = fake.requests_to("/commentThreads")
    assert [r.query["maxResults"] for r in requests] == ["100", "100", "30"]
    assert "pageToken" not in requests[0].query
    assert all(r.query["pageToken"] for r in requests[1:])
    for request in requests:
        assert request.query["order"] == "relevance"
        assert request.query["textFormat"] == "plainText"
        assert request.query["part"] == "snippet"
        assert (request.query["videoId"], request.query["key"]) == (VIDEO, DEFAULT_KEY)


def test_comments_stop_when_no_page_is_left(fake: FakeYouTube, client: YouTubeClient) -> None:
    fake.add_video(VIDEO, comments=make_comments(120))
    result = client.fetch_comments(VIDEO, 300)
    assert (len(result.comments), result.pages, result.quota_units) == (120, 2, 2)


def test_comment_fields_and_plain_text(fake: FakeYouTube, client: YouTubeClient) -> None:
    text = 'Is this <b>bold</b> & "quoted"?\nSecond line'
    fake.add_video(
        VIDEO,
        comments=[
            FakeComment(
                text, author="@ana", likes=42, replies=5, published_at="2024-11-06T01:02:03Z"
            ),
            "  ",  # an empty comment is skipped, not invented into something
        ],
    )
    result = client.fetch_comments(VIDEO, 10)
    assert result.comments == [
        Comment(
            text=text.strip(),
            author="@ana",
            likes=42,
            published_at="2024-11-06T01:02:03Z",
            replies=5,
        )
    ]


def test_the_limit_is_capped_by_settings(
    fake: FakeYouTube, make_client: Callable[..., YouTubeClient]
) -> None:
    fake.add_video(VIDEO, comments=make_comments(50))
    youtube = make_client(youtube_max_comments=15)
    result = youtube.fetch_comments(VIDEO, 1000)
    assert len(result.comments) == 15
    assert fake.requests[0].query["maxResults"] == "15"


def test_a_later_page_failing_keeps_the_earlier_pages(
    fake: FakeYouTube, make_settings: Callable[..., Settings]
) -> None:
    fake.add_video(VIDEO, comments=make_comments(250))

    def quota_runs_out(response: httpx.Response) -> None:
        fake.quota_exceeded = True  # after the first page has been answered

    with httpx.Client(timeout=2.0, event_hooks={"response": [quota_runs_out]}) as http:
        result = YouTubeClient(make_settings(), http).fetch_comments(VIDEO, 250)
    assert (len(result.comments), result.pages, result.complete) == (100, 1, False)
    assert result.quota_units == 1  # the refused second request was a quota refusal: free
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda f: f.add_video(VIDEO, comments_disabled=True), "comments_disabled"),
        (lambda f: f.add_video(VIDEO, private=True, comments=["x"]), "video_private"),
        (lambda f: None, "video_unavailable"),
        (lambda f: f.add_video(VIDEO, comments=[]), "no_comments"),
        (lambda f: setattr(f, "quota_exceeded", True), "youtube_quota_exceeded"),
        (lambda f: setattr(f, "valid_keys", {"another-key"}), "youtube_key_invalid"),
        (lambda f: setattr(f, "server_error", 503), "youtube_unreachable"),
        (lambda f: setattr(f, "server_error", 500), "youtube_unreachable"),
    ],
)
def test_comment_failures_have_stable_codes(
    fake: FakeYouTube,
    client: YouTubeClient,
    setup: Callable[[FakeYouTube], object],
    code: str,
) -> None:
    setup(fake)
    error = failure(lambda: client.fetch_comments(VIDEO, 100))
    assert error.code == code
    assert error.status == "failed"
    assert DEFAULT_KEY not in str(error) and DEFAULT_KEY not in repr(error.details)
    assert len(fake.requests) == 1


def test_invalid_key_error_carries_the_reason(fake: FakeYouTube, client: YouTubeClient) -> None:
    fake.valid_keys = {"another-key"}
    error = failure(lambda: client.fetch_metadata(VIDEO))
    assert error.code == "youtube_key_invalid"
    assert error.details == {"http_status": 400, "reason": "keyInvalid", "quota_units": 1}


def test_comments_need_a_key(fake: FakeYouTube, make_client: Callable[..., YouTubeClient]) -> None:
    fake.add_video(VIDEO, comments=["hello"])
    youtube = make_client(youtube_api_key=None)
    error = failure(lambda: youtube.fetch_comments(VIDEO, 10))
    assert error.code == "youtube_key_missing"
    assert "YOUTUBE_API_KEY" in error.message
    assert fake.requests == []


def test_nothing_listening_is_unreachable(make_client: Callable[..., YouTubeClient]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    youtube = make_client(
        youtube_api_url=dead + "/youtube/v3",
        youtube_thumbnail_url=dead + "/vi",
    )
    assert failure(lambda: youtube.fetch_comments(VIDEO, 10)).code == "youtube_unreachable"
    assert failure(lambda: youtube.fetch_metadata(VIDEO)).code == "youtube_unreachable"
    assert failure(lambda: youtube.fetch_thumbnail(VIDEO)).code == "youtube_unreachable"


def test_a_slow_youtube_times_out(
    fake: FakeYouTube, make_client: Callable[..., YouTubeClient]
) -> None:
    fake.add_video(VIDEO)
    fake.delay_s = 0.6
    youtube = make_client(youtube_timeout_s=0.2)
    error = failure(lambda: youtube.fetch_metadata(VIDEO))
    assert error.code == "youtube_unreachable"
    assert "timed out" in error.message


# --- thumbnails --------------------------------------------------------------------------


def test_thumbnail_falls_back_to_the_largest_existing_size(
    fake: FakeYouTube, client: YouTubeClient
) -> None:
    fake.add_video(VIDEO)  # hqdefault, mqdefault, default: the usual case
    thumb = client.fetch_thumbnail(VIDEO)
    assert (thumb.size_name, thumb.width, thumb.height) == ("hqdefault", 480, 360)
    assert thumb.image.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(thumb.image.data)) as image:
        assert (image.format, image.size) == ("JPEG", (480, 360))
    assert [r.path for r in fake.requests] == [
        f"/vi/{VIDEO}/maxresdefault.jpg",
        f"/vi/{VIDEO}/sddefault.jpg",
        f"/vi/{VIDEO}/hqdefault.jpg",
    ]


def test_thumbnail_takes_maxres_when_it_exists_kept_at_the_models_size(
    fake: FakeYouTube, client: YouTubeClient
) -> None:
    fake.add_video(VIDEO, thumbnails=("maxresdefault", "hqdefault"))
    thumb = client.fetch_thumbnail(VIDEO)
    # 1280x720 scaled to fit THUMBNAIL_MAX_SIDE: what the model is sent and what is kept.
    assert (thumb.size_name, thumb.width, thumb.height) == ("maxresdefault", 640, 360)
    with Image.open(io.BytesIO(thumb.image.data)) as image:
        assert image.size == (640, 360)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("known", [True, False])
def test_no_thumbnail_at_all(fake: FakeYouTube, client: YouTubeClient, known: bool) -> None:
    if known:
        fake.add_video(VIDEO, thumbnails=())
    assert failure(lambda: client.fetch_thumbnail(VIDEO)).code == "thumbnail_unavailable"
    assert len(fake.requests) == 5


# --- redirects are never followed --------------------------------------------------------


def test_redirects_are_not_followed(fake: FakeYouTube, client: YouTubeClient) -> None:
    with FakeYouTube() as elsewhere:
        elsewhere.add_video(VIDEO, comments=["from elsewhere"], thumbnails=("hqdefault",))
        fake.redirect_to = elsewhere.url
        assert failure(lambda: client.fetch_metadata(VIDEO)).code == "youtube_unreachable"
        assert failure(lambda: client.fetch_comments(VIDEO, 10)).code == "youtube_unreachable"
        assert failure(lambda: client.fetch_thumbnail(VIDEO)).code == "thumbnail_unavailable"
        assert elsewhere.requests == []
    assert len(fake.requests) == 7


# --- transcripts -------------------------------------------------------------------------


def test_transcript_is_best_effort(transcripts: TranscriptCalls) -> None:
    assert fetch_transcript(VIDEO, ["en"], enabled=False, timeout_s=1) is None
    assert transcripts.calls == []
    # The library failing (blocked, no captions, anything) is "no transcript", not a crash.
    assert fetch_transcript(VIDEO, ["en"], enabled=True, timeout_s=1) is None
    transcripts.lines = []
    assert fetch_transcript(VIDEO, ["en"], enabled=True, timeout_s=1) is None
    transcripts.lines = [TranscriptLine(0.0, "hello"), TranscriptLine(2.5, "world")]
    assert fetch_transcript(VIDEO, ["ko", "en"], enabled=True, timeout_s=1) == transcripts.lines
    assert transcripts.calls[-1] == (VIDEO, ("ko", "en"))


# --- the facade, without a cache --------------------------------------------------------


def test_video_material_without_redis(
    fake: FakeYouTube, make_settings: Callable[..., Settings], transcripts: TranscriptCalls
) -> None:
    fake.add_video(
        OTHER,
        title="Me at the zoo",
        description="elephants",
        duration="PT19S",
        comments=make_comments(3),
    )
    transcripts.lines = [TranscriptLine(1.0, "All right, so here we are")]
    with YouTubeMaterial(make_settings(), None) as youtube:
        video = youtube.video_material(OTHER, with_comments=True, with_transcript=True)
        assert youtube.quota_units_spent == 2  # videos.list + one commentThreads page
    assert video.url == f"https://www.youtube.com/watch?v={OTHER}"
    assert (video.video_id, video.title, video.description) == (OTHER, "Me at the zoo", "elephants")
    assert video.duration_s == 19.0
    assert [c.text for c in video.comments] == ["comment 0", "comment 1", "comment 2"]
    assert video.transcript == (TranscriptLine(1.0, "All right, so here we are"),)


def test_video_material_skips_what_is_not_asked(
    fake: FakeYouTube, make_settings: Callable[..., Settings], transcripts: TranscriptCalls
) -> None:
    fake.add_video(OTHER, comments_disabled=True)
    with YouTubeMaterial(make_settings(), None, transcripts=False) as youtube:
        video = youtube.video_material(OTHER, with_comments=False, with_transcript=True)
        assert (
            failure(
                lambda: youtube.video_material(OTHER, with_comments=True, with_transcript=False)
            ).code
            == "comments_disabled"
        )
    assert video.comments == () and video.transcript == ()
    assert transcripts.calls == []
