"""Pure parts of the Subsonic API and the accounts: name rules, the wire format, ids, the failed-login limiter."""

from __future__ import annotations

import json

import pytest

from musicindex.errors import InvalidArgumentError
from musicindex.users.accounts import check_name, check_password, name_key
from musicindex.web.subsonic import auth, views
from musicindex.web.subsonic.protocol import Content, Format, Params, SubsonicError, Text, render


@pytest.mark.parametrize(
    "bad",
    ["", "a" * 65, "tab\tname", "nul\x00", "line\nbreak", "zero\u200bwidth", "col:on", " lead", "trail ", 7, None],
)
def test_bad_names_are_refused(bad):
    with pytest.raises(InvalidArgumentError):
        check_name(bad)


def test_names_are_one_account_in_any_case_or_width():
    assert check_name("Zoë")[1] == name_key("ZOË") == name_key("zoë")
    assert name_key("Ｂｏｂ") == name_key("bob")  # full-width letters (NFKC)
    assert check_name("a" * 64)[0] == "a" * 64


def test_passwords_are_checked_without_repeating_them():
    for bad in ("", "x\x00y", "x\ny", "p" * 1025):
        with pytest.raises(InvalidArgumentError) as e:
            check_password(bad)
        assert bad not in str(e.value) or bad == ""
    assert check_password("pässwörd with spaces") == "pässwörd with spaces"


def test_xml_and_json_of_one_payload():
    payload = {
        "genres": {"genre": [{"songCount": 2, "albumCount": 1, "value": Content("Rock & <Roll>")}]},
    }
    xml = render(payload, Format("xml"), "1.0").body.decode()
    assert '<genre songCount="2" albumCount="1" value="Rock &amp; &lt;Roll&gt;">Rock &amp; &lt;Roll&gt;</genre>' in xml
    assert 'openSubsonic="true"' in xml and 'type="musicindex"' in xml and 'version="1.16.1"' in xml
    body = json.loads(render(payload, Format("json"), "1.0").body)["subsonic-response"]
    assert body["genres"]["genre"] == [{"songCount": 2, "albumCount": 1, "value": "Rock & <Roll>"}]
    assert body["status"] == "ok" and body["openSubsonic"] is True


def test_xml_elements_lists_text_and_bad_characters():
    payload = {"x": {"moods": ["sad", "happy"], "note": Text("a\x01b"), "skip": None, "flag": False, "n": 3}}
    xml = render(payload, Format("xml"), "1.0").body.decode()
    assert '<x flag="false" n="3"><moods>sad</moods><moods>happy</moods><note>a\ufffdb</note></x>' in xml


def test_jsonp_needs_a_plain_callback_name():
    assert Format("jsonp", "cb.done").callback == "cb.done"
    bad = Format("jsonp", "alert(1)")
    assert bad.kind == "json" and bad.problem
    assert render({}, Format("jsonp", "cb"), "1").body.startswith(b"cb(")


def test_params_bound_and_check_values():
    p = Params([("id", "tr-1"), ("id", "tr-2"), ("size", "20"), ("flag", "true")])
    assert p.all("id") == ["tr-1", "tr-2"] and p.integer("size", low=0) == 20 and p.boolean("flag") is True
    for bad in (Params([("size", "-1")]), Params([("size", "1e3")]), Params([("size", "9" * 30)])):
        with pytest.raises(SubsonicError) as e:
            bad.integer("size", low=0, high=500)
        assert e.value.code == 0
    with pytest.raises(SubsonicError) as e:
        Params([("q", "a\x00")]).get("q")
    assert e.value.code == 0
    with pytest.raises(SubsonicError) as e:
        Params([]).required("id")
    assert e.value.code == 10
    with pytest.raises(SubsonicError):
        Params([("id", "x")] * 2001)


def test_ids_name_their_kind():
    assert views.parse_id("al-12", "album") == ("album", 12)
    assert views.sid("track", 5) == "tr-5" and views.sid("track", None) is None
    for bad in ("12", "al-", "al-1x", "xx-1", "tr-1", "al-" + "1" * 19, None):
        with pytest.raises(SubsonicError) as e:
            views.parse_id(bad, "album")
        assert e.value.code == 70


def test_protocol_versions():
    auth.check_version(Params([("v", "1.16.1")]))
    auth.check_version(Params([]))
    for v, code in (("2.0.0", 30), ("0.9", 20), ("x", 20)):
        with pytest.raises(SubsonicError) as e:
            auth.check_version(Params([("v", v)]))
        assert e.value.code == code
