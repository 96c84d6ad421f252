from garvideo.outputs.subtitles import Cue, to_srt, to_vtt


def test_srt_numbers_and_orders_cues():
    cues = [Cue(10.0, 20.5, "dog: runs"), Cue(0.0, 10.0, "dog: sits\n\nstill"), Cue(5.0, 5.0, "empty span")]
    assert to_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:10,000\ndog: sits\nstill\n\n2\n00:00:10,000 --> 00:00:20,500\ndog: runs\n"
    )


def test_vtt_header_and_arrow_escaping():
    text = to_vtt([Cue(61.25, 62.0, "a --> b")])
    assert text == "WEBVTT\n\n00:01:01.250 --> 00:01:02.000\na -> b\n"


def test_blank_cues_are_dropped():
    assert to_srt([Cue(0, 1, "  \n ")]) == ""
