"""The personal-data scanner of the end-to-end test (tests/support/pii_scan.py) finds a planted
value in each spelling and place it can take, and nothing that merely looks alike."""

from __future__ import annotations

from tests.support.pii_scan import PersonalData, scan_logs

EVENTS = [
    {
        "type": "nl.servicepuls.case.opened.v1",
        "data": {
            "case_id": "Z-1",
            "resident": {
                "bsn": "999990019",
                "email": "Inwoner.gm0383.run1.7@example.nl",
                "phone": "06-12345678",
            },
        },
    },
    {"type": "nl.servicepuls.contact.completed.v1", "data": {"topic": "afval"}},
]


def data() -> PersonalData:
    found = PersonalData.of_events(EVENTS)
    assert found.emails == {"inwoner.gm0383.run1.7@example.nl"}
    assert found.bsns == {"999990019"}
    assert found.phones == {"0612345678", "31612345678", "0031612345678"}
    return found


def test_a_planted_value_is_found_in_every_spelling():
    pii = data()
    planted = [
        ('{"to": "inwoner.gm0383.run1.7@example.nl"}', "email"),
        ("mail=INWONER.GM0383.RUN1.7@EXAMPLE.NL", "email"),
        ("GET /x?to=inwoner.gm0383.run1.7%40example.nl", "email"),
        ('{"bsn":"999990019"}', "bsn"),
        ("burgerservicenummer 999990019.", "bsn"),
        ("bel 06-12345678 terug", "phone"),
        ("tel:0612345678", "phone"),
        ('"phone": "+31612345678"', "phone"),
        ("0031 6 1234 5678", "phone"),
        ("12 999990019 34", "bsn"),
    ]
    for text, kind in planted:
        hits = pii.find(text, "planted")
        assert [h.kind for h in hits][:1] == [kind], text
        assert "999990019" not in str(hits[0]) and "12345678" not in str(hits[0])  # masked


def test_look_alikes_are_no_hits():
    pii = data()
    for text in (
        "1764979999990019000",  # the BSN inside a longer number (a timestamp)
        "9999900190",
        "06-12345679",
        "other.gm0383.run1.7@example.nl",
        "inwoner.gm0383.run1.7@example.nl.evil",
        "sealed: bm90IGEgcGxhaW50ZXh0IHZhbHVlOTk5OTkwMDE5",  # ciphertext is no plaintext
        "resident_ref 3f2a999990019e",  # the BSN inside a hex digest
    ):
        assert pii.find(text, "look-alike") == [], text


def test_a_log_is_scanned_from_where_the_run_began(tmp_path):
    log = tmp_path / "intake-8080.log"
    log.write_text('{"event": "before", "bsn": "999990019"}\n')
    since = {log: log.stat().st_size}
    with log.open("a") as out:
        out.write(
            '{"event": "admitted"}\n{"event": "oops", "email": "inwoner.gm0383.run1.7@example.nl"}\n'
        )
    hits = scan_logs(data(), since)
    assert [(h.kind, h.where) for h in hits] == [("email", "intake-8080.log (+line 2)")]
