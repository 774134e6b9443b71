"""The source policy (files in media dirs, schemes, hosts) and URL redaction."""

from __future__ import annotations

import os

import pytest

from aisp.errors import SourceNotAllowedError, ValidationError
from aisp.netpolicy import SourcePolicy, is_loopback_host, redact_url

DNS = {
    "cam.lan": ["192.168.1.20"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "meta.evil": ["169.254.169.254"],
    "mixed.evil": ["10.0.0.5", "127.0.0.1"],
    "v6.lan": ["fd00::5"],
}


def policy(tmp_path, hosts=(), schemes=("rtsp", "rtsps", "http", "https", "rtmp")):
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    return SourcePolicy(media_dirs=[media], schemes=schemes, hosts=hosts, resolver=lambda h: DNS.get(h, []))


def test_relative_paths_land_in_the_first_media_dir(tmp_path):
    p = policy(tmp_path)
    assert p.check_source("clip.mp4") == os.path.realpath(tmp_path / "media" / "clip.mp4")


@pytest.mark.parametrize("source", ["/etc/passwd", "../secret.mp4", "media/../../x"])
def test_files_outside_media_dirs_are_refused_without_saying_whether_they_exist(tmp_path, source):
    with pytest.raises(SourceNotAllowedError) as info:
        policy(tmp_path).check_source(source)
    assert info.value.setting == "AISP_MEDIA_DIRS"
    assert "exist" not in info.value.message and "not found" not in info.value.message.lower()


def test_a_symlink_out_of_the_media_dir_is_refused(tmp_path):
    p = policy(tmp_path)
    (tmp_path / "outside.mp4").write_bytes(b"x")
    (tmp_path / "media" / "link.mp4").symlink_to(tmp_path / "outside.mp4")
    with pytest.raises(SourceNotAllowedError):
        p.check_source("link.mp4")


@pytest.mark.parametrize(
    "url",
    ["tcp://127.0.0.1:9000", "udp://0.0.0.0:5000", "file:///etc/passwd", "pipe:0", "concat:a.mp4|b.mp4",
     "data:video/mp4;base64,AAAA", "ftp://cam.lan/x"],
)
def test_schemes_outside_the_list_are_refused(tmp_path, url):
    with pytest.raises(SourceNotAllowedError) as info:
        policy(tmp_path).check_source(url)
    assert info.value.setting == "AISP_SOURCE_SCHEMES"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/x", "http://localhost/x", "rtsp://[::1]/s", "http://169.254.169.254/latest",
     "http://127.0.0.1.nip.io/x", "http://meta.evil/", "http://mixed.evil/", "http://0.0.0.0/",
     "http://[::ffff:127.0.0.1]/"],
)
def test_loopback_link_local_and_metadata_hosts_are_refused_by_default(tmp_path, url):
    with pytest.raises(SourceNotAllowedError) as info:
        policy(tmp_path).check_source(url)
    assert info.value.setting == "AISP_SOURCE_HOSTS"


@pytest.mark.parametrize("url", ["rtsp://cam.lan:554/stream", "http://192.168.1.9/video.mjpg", "rtsp://v6.lan/s"])
def test_lan_cameras_are_allowed_by_default(tmp_path, url):
    assert policy(tmp_path).check_source(url) == url


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("rtsp://cam.lan/s?listen=1", ["listen"]),
        ("http://cam.lan/v?a=1&Timeout=5;listen=1", ["listen", "timeout"]),
        ("tcp://cam.lan:9?listen=1", ["listen"]),  # an allowed scheme list would not change it
    ],
)
def test_demuxer_options_in_the_query_are_refused_by_name_and_no_setting_allows_them(tmp_path, url, options):
    p = policy(tmp_path, schemes=("rtsp", "http", "tcp"), hosts=["cam.lan"])
    with pytest.raises(SourceNotAllowedError) as info:
        p.check_source(url)
    err = info.value
    assert err.status_code == 403 and err.name == "SOURCE_NOT_ALLOWED"
    assert err.setting is None and "setting" not in err.details and err.details["options"] == options
    for name in options:
        assert repr(name) in err.message
    assert "never accepted" in err.message
    assert "AISP_" not in err.message  # no setting to change would help
    assert p.check_source(url.split("?")[0]) == url.split("?")[0]  # the same URL without them passes


def test_an_explicit_host_list_allows_only_those(tmp_path):
    p = policy(tmp_path, hosts=["127.0.0.0/8", "cam.lan"])
    assert p.check_source("http://127.0.0.1:9/x")
    assert p.check_source("rtsp://cam.lan/s")
    with pytest.raises(SourceNotAllowedError):
        p.check_source("rtsp://192.168.1.30/s")


def test_control_characters_and_cameras_are_refused(tmp_path):
    with pytest.raises(ValidationError, match="control"):
        policy(tmp_path).check_source("a.mp4\nFAKE LOG LINE")
    with pytest.raises(SourceNotAllowedError):
        policy(tmp_path).check_source("0")


def test_is_loopback_parses_addresses_and_resolves_names():
    resolver = lambda h: DNS.get(h, [])  # noqa: E731
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1") and is_loopback_host("localhost")
    assert is_loopback_host("127.0.0.1.nip.io", resolver=resolver)  # resolves to loopback only
    assert not is_loopback_host("mixed.evil", resolver=resolver)
    assert not is_loopback_host("127.0.0.1.example", resolver=resolver)  # no answer: not loopback
    assert not is_loopback_host("0.0.0.0")


@pytest.mark.parametrize(
    ("url", "shown"),
    [("rtsp://admin:hunter2@cam.lan:554/s", "rtsp://admin:***@cam.lan:554/s"),
     ("rtsp://admin@cam.lan/s", "rtsp://admin:***@cam.lan/s"),
     ("rtsp://cam.lan/s", "rtsp://cam.lan/s"), ("clip.mp4", "clip.mp4")],
)
def test_redact_url_hides_the_password(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", [
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://[2002:7f00:1::1]/",  # 6to4 wrapping 127.0.0.1
    "http://[::ffff:169.254.169.254]/",
    "http://2130706433/",  # 127.0.0.1 as one number: resolved, then refused
])
def test_metadata_and_wrapped_loopback_addresses_are_refused_by_default(tmp_path, url):
    dns = {"2130706433": ["127.0.0.1"]}
    p = SourcePolicy(media_dirs=[tmp_path], schemes=("http",), resolver=lambda h: dns.get(h, []))
    with pytest.raises(SourceNotAllowedError) as info:
        p.check_source(url)
    assert info.value.setting == "AISP_SOURCE_HOSTS"


@pytest.mark.parametrize("url", ["http://cam.lan\\@127.0.0.1/", "http://cam.lan /x", "rtsp://cam.lan/a\tb"])
def test_urls_with_spaces_or_backslashes_are_refused(tmp_path, url):
    with pytest.raises(ValidationError):
        policy(tmp_path).check_source(url)
