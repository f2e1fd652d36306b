"""Blind verification stays blind: a re-key that differs is told which fields, never the entered
figures; those fields are asked again; a second difference goes to a manager, who sees both entries
side by side and keeps one. Every step is audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.db import reading
from portal.models import AuditEvent, PrecinctReturn, ReturnRekey, ReturnVote
from tests.test_returns import figures, revisions, url

MAYOR_ENTERED = (60, 35, 3, 2)  # (ann, bob, over, under) of 100 ballots


@pytest.fixture
def entered(create_election, client_as):
    """Mayor and Council entered at the first precinct by one clerk; a second clerk verifies."""
    made = create_election(
        status="open",
        precincts=2,
        contests=[("Mayor", 1, ["Ann Able", "Bob Baker"]), ("Council", 2, ["Cy Cole", "Di Dunn", "Ed Eng"])],
    )
    clerk, other = client_as("clerk"), client_as("clerk")
    assert (
        clerk.post(url(made, made.precincts[0]), data=figures(made, mayor=MAYOR_ENTERED)).status_code == 303
    )
    return made, clerk, other


def rekey(made, mayor=MAYOR_ENTERED, **extra):
    return {
        **figures(made, mayor=mayor),
        "mode": "rekey",
        **{f"revision_{c.id}": "1" for c in made.contests},
        **extra,
    }


def only(data: dict, contest, *keys) -> dict:
    """The form as the second re-key sends it: only the fields asked again (plus the hidden ones,
    which say it was rendered after one differing re-key)."""
    asked = {f"c{contest.id}_{k}" for k in keys}
    return {k: v for k, v in data.items() if not k.startswith("c") or k in asked} | {
        f"rekeys_{contest.id}": "1"
    }


def card(page: str, contest) -> str:
    return re.search(
        rf'<fieldset class="card[^"]*" id="verify-{contest.id}">.*?</fieldset>', page, re.S
    ).group(0)


def shows_no_entered_figure(page: str, contest) -> None:
    """No input of the contest holds a value, and the card shows no count."""
    block = card(page, contest)
    assert re.findall(r'value="([^"]*)"', re.sub(r'name="revision_\d+" value="\d+"', "", block)) == [
        ""
    ] * len(re.findall(r"<input", block))
    assert not re.search(r">\s*[\d,]+\s*<", block)  # no figure as cell text


def events(run, action):
    async def go():
        async with reading() as db:
            return list(
                await db.scalars(
                    select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
                )
            )

    return run(go())


def rekeys(run):
    async def go():
        async with reading() as db:
            return list((await db.scalars(select(ReturnRekey).order_by(ReturnRekey.id))).all())

    return run(go())


def test_a_differing_rekey_names_the_fields_and_never_shows_the_entry(entered, run):
    made, clerk, other = entered
    mayor, council = made.contests
    ann, bob = made.candidates[:2]
    response = other.post(url(made, made.precincts[0], "/verify"), data=rekey(made, mayor=(59, 36, 3, 2)))
    assert response.status_code == 422 and "Not verified: the figures differ." in response.text
    page = response.text
    assert "Council: verified." in page  # the contest that matched is verified
    assert {(c, s) for c, _, s in revisions(run, made)} == {(mayor.id, "entered"), (council.id, "verified")}
    # Which fields differ is said; what was entered (60, 35) is not, nor what was keyed.
    assert 'class="rekey-asked"' in page and page.count("Differed: key it again.") == 2
    assert page.count("✓ matched") == 3  # overvotes, undervotes, ballots cast
    shows_no_entered_figure(page, mayor)
    assert "mismatch" not in page and ">60<" not in page and ">35<" not in page
    assert f'id="c{mayor.id}_{ann.id}"' in page and f'id="c{mayor.id}_ballots_cast"' not in page
    # Reloading shows the same question; the tab that shows the figures is gone, and refused.
    again = other.get(url(made, made.precincts[0], "/verify"))
    assert "Confirm the figures" not in again.text
    shows_no_entered_figure(again.text, mayor)
    refused = other.post(
        url(made, made.precincts[0], "/verify"), data={"mode": "confirm", f"revision_{mayor.id}": "1"}
    )
    assert refused.status_code == 409 and "no longer shown for confirming" in refused.text
    assert 'value="60"' not in other.get(url(made, made.precincts[0], "/verify?mode=confirm")).text
    # The entry page does not show them to the verifier either (it does to the one who entered).
    entry = other.get(url(made, made.precincts[0])).text
    assert (
        f'id="c{mayor.id}_{ann.id}"' in entry
        and 'value="60"' not in entry
        and "waits for a second person" in entry
    )
    assert 'value="60"' in clerk.get(url(made, made.precincts[0])).text
    (kept,) = rekeys(run)
    assert kept.attempt == 1 and kept.fields == [str(ann.id), str(bob.id)]
    (event,) = events(run, "rekey_differs")
    assert event.after["fields"] == ["Ann Able", "Bob Baker"] and event.after["attempt"] == 1


def test_the_fields_asked_again_verify_when_they_match(entered, run):
    made, _, other = entered
    mayor = made.contests[0]
    ann, bob = made.candidates[:2]
    other.post(url(made, made.precincts[0], "/verify"), data=rekey(made, mayor=(59, 36, 3, 2)))
    blank = only(rekey(made), mayor, ann.id)  # Bob left empty
    response = other.post(url(made, made.precincts[0], "/verify"), data=blank)
    assert response.status_code == 422 and "Enter a number" in response.text
    answer = only(rekey(made), mayor, ann.id, bob.id)
    assert other.post(url(made, made.precincts[0], "/verify"), data=answer).status_code == 303
    assert {s for *_, s in revisions(run, made)} == {"verified"}
    verified = [e for e in events(run, "verify_return") if e.after.get("rekeys_differed")]
    assert len(verified) == 1 and verified[0].after["rekeys_differed"] == 1


def test_a_second_difference_goes_to_a_manager_who_sees_both(entered, run, client_as):
    made, _, other = entered
    mayor = made.contests[0]
    ann, bob = made.candidates[:2]
    other.post(url(made, made.precincts[0], "/verify"), data=rekey(made, mayor=(59, 36, 3, 2)))
    second = only(rekey(made, mayor=(59, 36, 3, 2)), mayor, ann.id, bob.id)
    response = other.post(url(made, made.precincts[0], "/verify"), data=second)
    assert response.status_code == 422
    assert "Mayor: differed again. A manager decides" in response.text
    assert (
        "two blind re-keys differed" in response.text
        and "It differed in Ann Able, Bob Baker" in response.text
    )
    assert ">60<" not in response.text and ">59<" not in response.text
    refused = other.post(url(made, made.precincts[0], "/verify"), data=second | {f"rekeys_{mayor.id}": "2"})
    assert refused.status_code == 409 and "a manager decides" in refused.text
    assert (
        other.post(url(made, made.precincts[0], f"/resolve/{mayor.id}"), data={"keep": "entry"}).status_code
        == 403
    )
    assert [r.attempt for r in rekeys(run)] == [1, 2]
    assert len(events(run, "rekey_differs")) == 2

    listed = other.get(f"/elections/{made.election.id}/returns").text
    assert listed.count("1 for a manager") == 1
    manager = client_as("manager")
    page = manager.get(url(made, made.precincts[0], "/verify")).text
    table = re.search(
        r'<table class="table table-sm align-middle mb-2 dispute-table">.*?</table>', page, re.S
    ).group(0)
    rows = re.findall(
        r"<tr( class=\"table-warning\")?>\s*<th scope=\"row\"[^>]*>([^<]+)</th>(.*?)</tr>", table, re.S
    )
    marked = {name: re.findall(r">([\d,″]+)<", cells) for warn, name, cells in rows if warn}
    assert marked == {"Ann Able": ["60", "59", "59"], "Bob Baker": ["35", "36", "36"]}
    assert "Keep the entry (revision 1)" in page and "Keep the re-key (as revision 2)" in page


def test_the_manager_keeps_the_entry_or_the_rekey(entered, run, client_as, create_election):
    made, _, other = entered
    mayor = made.contests[0]
    ann, bob = made.candidates[:2]
    other.post(url(made, made.precincts[0], "/verify"), data=rekey(made, mayor=(59, 36, 3, 2)))
    other.post(
        url(made, made.precincts[0], "/verify"),
        data=only(rekey(made, mayor=(59, 36, 3, 2)), mayor, ann.id, bob.id),
    )
    manager = client_as("manager")
    bad = manager.post(
        url(made, made.precincts[0], f"/resolve/{mayor.id}"),
        data={"keep": "both", f"revision_{mayor.id}": "1"},
    )
    assert bad.status_code == 409 and "Choose which figures to keep" in bad.text
    kept = manager.post(
        url(made, made.precincts[0], f"/resolve/{mayor.id}"),
        data={"keep": "rekey", f"revision_{mayor.id}": "1"},
    )
    assert kept.status_code == 303
    assert (mayor.id, 2, "verified") in revisions(run, made)

    async def latest():
        async with reading() as db:
            stored = await db.scalar(
                select(PrecinctReturn).where(
                    PrecinctReturn.contest_id == mayor.id, PrecinctReturn.revision == 2
                )
            )
            votes = dict(
                (
                    await db.execute(
                        select(ReturnVote.candidate_id, ReturnVote.votes).where(
                            ReturnVote.return_id == stored.id
                        )
                    )
                )
                .tuples()
                .all()
            )
            return stored, votes

    stored, votes = run(latest())
    assert votes == {ann.id: 59, bob.id: 36}
    assert stored.entered_by_id == other.user.id and stored.verified_by_id == manager.user.id
    (event,) = events(run, "resolve_return")
    assert event.after["kept"] == "rekey" and event.before["votes"] == {str(ann.id): 60, str(bob.id): 35}
    again = manager.post(
        url(made, made.precincts[0], f"/resolve/{mayor.id}"),
        data={"keep": "rekey", f"revision_{mayor.id}": "1"},
    )
    assert again.status_code == 409  # decided: a resend changes nothing
    assert len(events(run, "resolve_return")) == 1


def test_keeping_the_entry_and_who_may_not_decide(entered, run, client_as):
    made, _, _ = entered
    mayor = made.contests[0]
    ann, bob = made.candidates[:2]
    keyer = client_as("manager")  # a manager who re-keys cannot then decide
    keyer.post(url(made, made.precincts[0], "/verify"), data=rekey(made, mayor=(59, 36, 3, 2)))
    # The second re-key does not add up with the first's other fields: it can only be compared.
    keyer.post(
        url(made, made.precincts[0], "/verify"),
        data=only(rekey(made, mayor=(70, 36, 3, 2)), mayor, ann.id, bob.id),
    )
    page = keyer.get(url(made, made.precincts[0], "/verify")).text
    assert "You re-keyed these figures: another manager decides." in page and "dispute-table" not in page
    refused = keyer.post(
        url(made, made.precincts[0], f"/resolve/{mayor.id}"),
        data={"keep": "entry", f"revision_{mayor.id}": "1"},
    )
    assert refused.status_code == 409 and "you re-keyed these figures" in refused.text
    manager = client_as("manager")
    sums = manager.post(
        url(made, made.precincts[0], f"/resolve/{mayor.id}"),
        data={"keep": "rekey", f"revision_{mayor.id}": "1"},
    )
    assert sums.status_code == 409 and "do not add up" in sums.text
    kept = manager.post(
        url(made, made.precincts[0], f"/resolve/{mayor.id}"),
        data={"keep": "entry", f"revision_{mayor.id}": "1"},
    )
    assert kept.status_code == 303
    assert (mayor.id, 1, "verified") in revisions(run, made)
    (event,) = events(run, "resolve_return")
    assert event.after == {"status": "verified", "kept": "entry", "revision": 1, "method": "election_day"}
    assert event.user_id == manager.user.id


def test_a_form_sent_again_or_outrun_is_refused_not_counted(entered, run):
    """The form says after how many differing re-keys it was rendered: the same differing re-key sent
    again (F5 after the answer) is not a second attempt, and a full blind re-key rendered before
    someone else's differing one is not judged on their fields only."""
    made, _, other = entered
    mayor = made.contests[0]
    first = rekey(made, mayor=(59, 36, 3, 2))
    assert other.post(url(made, made.precincts[0], "/verify"), data=first).status_code == 422
    again = other.post(url(made, made.precincts[0], "/verify"), data={**first, f"rekeys_{mayor.id}": "0"})
    assert again.status_code == 409 and "already recorded" in again.text
    assert [r.attempt for r in rekeys(run)] == [1] and len(events(run, "rekey_differs")) == 1
    # A third person's page, rendered before that re-key, keys Ann and Bob right but overvotes wrong.
    late = rekey(made, mayor=(60, 35, 3, 2)) | {f"c{mayor.id}_overvotes": "4", f"c{mayor.id}_undervotes": "1"}
    third = other  # (any verifier: the form is what matters)
    refused = third.post(url(made, made.precincts[0], "/verify"), data=late)
    assert refused.status_code == 409 and "Reload" in refused.text
    assert (mayor.id, 1, "entered") in revisions(run, made)


def test_the_entry_page_cannot_outrun_a_blind_rekey(entered, run, client_as):
    """A verifier's figures are never compared with the hidden entry on the entry page (the answer
    "nothing changed" would tell them they matched), and once a re-key differed only the one who
    entered or a manager saves a correction."""
    made, clerk, other = entered
    mayor = made.contests[0]
    from tests.test_returns import figures

    same = other.post(url(made, made.precincts[0]), data=figures(made, mayor=MAYOR_ENTERED))
    assert same.status_code == 303  # stored as their own revision: nothing is given away
    assert {(c, r) for c, r, _ in revisions(run, made)} >= {(mayor.id, 2)}
    # Revision 2 is other's; clerk (who did not enter it) re-keys it and differs.
    differs = {**rekey(made, mayor=(59, 36, 3, 2)), **{f"revision_{c.id}": "2" for c in made.contests}}
    assert clerk.post(url(made, made.precincts[0], "/verify"), data=differs).status_code == 422
    third = client_as("clerk")
    refused = third.post(url(made, made.precincts[0]), data=figures(made, mayor=(59, 36, 3, 2)))
    assert refused.status_code == 409 and "the one who entered it or a manager corrects it" in refused.text
    assert (
        other.post(url(made, made.precincts[0]), data=figures(made, mayor=(59, 36, 3, 2))).status_code == 303
    )
    assert (mayor.id, 3, "entered") in revisions(run, made)


def test_a_rekey_across_a_database_restart(entered, run, app_factory, create_user, database_url):
    """CSRF on, the page loaded before a restart: the differing re-key answers 503 "Nothing was
    saved" and keeps nothing (no re-key, no event); once the database is back the same form is
    recorded once."""
    from tests.test_account import Browser
    from tests.test_resilience import _wait_until_gone, connections_refused, terminate_all_but_admin

    made, _, _ = entered
    verifier = Browser(app_factory(WTF_CSRF_ENABLED=True))
    assert verifier.sign_in(create_user("clerk").username).status_code == 302
    page = url(made, made.precincts[0], "/verify")
    form = {**rekey(made, mayor=(59, 36, 3, 2)), "csrf_token": verifier.token(page)}
    with connections_refused(database_url):
        _wait_until_gone(database_url, terminate_all_but_admin(database_url))
        response = verifier.client.post(page, data=form)
        assert response.status_code == 503 and "Nothing was saved" in response.get_data(as_text=True)
    assert rekeys(run) == [] and events(run, "rekey_differs") == []
    again = verifier.client.post(page, data=form)
    assert again.status_code == 422 and "Not verified: the figures differ." in again.get_data(as_text=True)
    assert [r.attempt for r in rekeys(run)] == [1] and len(events(run, "rekey_differs")) == 1


def test_verifying_where_nothing_was_entered_says_so(entered):
    made, _, other = entered
    response = other.post(url(made, made.precincts[1], "/verify"), data={"mode": "rekey"})
    assert response.status_code == 409 and "has been entered to verify" in response.text
    assert "differed twice" not in response.text
