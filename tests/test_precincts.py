"""Precincts: the reference CRUD screen, as a full page and as htmx fragments."""

from __future__ import annotations

import re

from tests.conftest import HX


def test_list_shows_precincts_with_registered_voters(client_as, create_precinct):
    create_precinct(code="111-C", name="Maple North", polling_place="Library")
    page = client_as("observer").get("/precincts")
    assert page.status_code == 200
    assert "111-C" in page.text and "Maple North" in page.text and "Library" in page.text
    assert "<html" in page.text


def test_active_search_returns_the_fragment_for_htmx(client_as, create_precinct):
    create_precinct(code="111-C", name="Maple North")
    create_precinct(code="222-A", name="Oak South")
    client = client_as("clerk")
    fragment = client.get("/precincts?q=oak", headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="precinct-list"' in fragment.text
    assert "222-A" in fragment.text and "111-C" not in fragment.text
    assert "1 precinct matching" in fragment.text
    # The same URL without htmx is the whole page (bookmarkable, works without JavaScript).
    page = client.get("/precincts?q=oak")
    assert "<html" in page.text and "222-A" in page.text and "111-C" not in page.text


def test_search_treats_wildcards_literally(client_as, create_precinct):
    create_precinct(code="1-A", name="Hundred Percent")
    assert "No precinct matches" in client_as("clerk").get("/precincts?q=%25", headers=HX).text


def test_sort_both_ways(client_as, create_precinct):
    for code, name in (("1-A", "Zulu"), ("2-A", "Alpha"), ("3-A", "Mike")):
        create_precinct(code=code, name=name)
    client = client_as("clerk")

    def names(sort):
        html = client.get(f"/precincts?sort={sort}", headers=HX).text
        return [n for n in re.findall(r"<td>(Zulu|Alpha|Mike)</td>", html)]

    assert names("name") == ["Alpha", "Mike", "Zulu"]
    assert names("-name") == ["Zulu", "Mike", "Alpha"]
    assert names("code") == ["Zulu", "Alpha", "Mike"]
    assert names("bogus") == ["Zulu", "Alpha", "Mike"]


def test_pagination(client_as, create_precinct):
    for n in range(55):
        create_precinct(code=f"{n:03d}-A")
    client = client_as("clerk")
    first = client.get("/precincts", headers=HX).text
    assert "000-A" in first and "050-A" not in first and "Page 1 of 2" in first
    second = client.get("/precincts?page=2", headers=HX).text
    assert "050-A" in second and "000-A" not in second
    assert "054-A" in client.get("/precincts?page=99", headers=HX).text  # clamped to the last page


def test_create_opens_as_modal_for_htmx_and_page_without(client_as):
    client = client_as("manager")
    modal = client.get("/precincts/new", headers=HX).text
    assert 'class="modal-header"' in modal and "<html" not in modal
    page = client.get("/precincts/new").text
    assert "<html" in page and "New precinct" in page


def test_create_with_htmx_closes_modal_refreshes_list_and_toasts(client_as):
    client = client_as("manager")
    response = client.post("/precincts/new", data={"code": " 111-c ", "name": " Maple "}, headers=HX)
    assert response.status_code == 200
    assert '"closeModal": true' in response.headers["HX-Trigger"]
    assert '"precinctsChanged": true' in response.headers["HX-Trigger"]
    assert 'hx-swap-oob="beforeend:#toasts"' in response.text and "Precinct 111-C created." in response.text
    assert "111-C" in client.get("/precincts").text


def test_create_without_javascript_redirects_with_flash(client_as):
    client = client_as("manager")
    response = client.post("/precincts/new", data={"code": "9-B", "name": "Nine"})
    assert response.status_code == 303 and response.location == "/precincts"
    assert "Precinct 9-B created." in client.get("/precincts").text


def test_invalid_input_gets_messages_on_the_fields_and_stores_nothing(client_as):
    client = client_as("manager")
    cases = [
        ({"code": "", "name": ""}, ["Enter the precinct code.", "Enter a name."]),
        ({"code": "no spaces!", "name": "x"}, ["Use 1 to 16 letters, digits or hyphens"]),
        ({"code": "A" * 17, "name": "x"}, ["Use 1 to 16 letters"]),
        ({"code": "1-A", "name": "n" * 121}, ["Field cannot be longer than 120 characters."]),
        ({"code": "1-A", "name": "x", "polling_place": "p" * 201}, ["cannot be longer than 200"]),
    ]
    for data, messages in cases:
        response = client.post("/precincts/new", data=data, headers=HX)
        assert response.status_code == 422, data
        assert response.text.lstrip().startswith("<form"), "the form alone replaces itself"
        for message in messages:
            assert message in response.text, (data, message)
    assert "No precinct matches" in client.get("/precincts").text


def test_duplicate_code_is_refused(client_as, create_precinct):
    create_precinct(code="111-C")
    response = client_as("manager").post(
        "/precincts/new", data={"code": "111-c", "name": "Again"}, headers=HX
    )
    assert response.status_code == 422
    assert "Precinct code 111-C is already in use." in response.text


def test_html_in_names_is_shown_as_text(client_as):
    client = client_as("manager")
    client.post("/precincts/new", data={"code": "X-1", "name": '<img src=x onerror="alert(1)">'}, headers=HX)
    html = client.get("/precincts").text
    assert "&lt;img src=x onerror=" in html and "<img src=x" not in html


def test_edit_saves_and_audits(client_as, create_precinct, run):
    from portal.audit.queries import search_events
    from portal.db import reading

    precinct = create_precinct(code="1-A", name="Old")
    client = client_as("manager")
    form = client.get(f"/precincts/{precinct.id}/edit", headers=HX).text
    version = re.search(r'name="version" type="hidden" value="(\d+)"', form).group(1)
    response = client.post(
        f"/precincts/{precinct.id}/edit", data={"code": "1-A", "name": "New", "version": version}, headers=HX
    )
    assert response.status_code == 200
    assert "New" in client.get("/precincts").text

    async def events():
        async with reading() as db:
            return await search_events(db, entity="precinct")

    update = run(events())[0]
    assert update.action == "update" and update.username == client.user.username
    assert update.before["name"] == "Old" and update.after["name"] == "New"


def test_stale_edit_is_refused_with_who_when_and_both_values(app, client_as, create_precinct):
    precinct = create_precinct(code="1-A", name="Original")
    alice, bob = client_as("manager"), client_as("manager")
    # Both open the form at version 1; Alice saves first.
    assert (
        alice.post(
            f"/precincts/{precinct.id}/edit",
            data={"code": "1-A", "name": "Alice's", "version": "1"},
            headers=HX,
        ).status_code
        == 200
    )
    response = bob.post(
        f"/precincts/{precinct.id}/edit", data={"code": "1-A", "name": "Bob's", "version": "1"}, headers=HX
    )
    assert response.status_code == 409
    assert f"changed by {alice.user.display_name} at" in response.text
    # When, on the office's clock (config.toml: America/New_York) with its abbreviation.
    assert re.search(r" at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T after you opened it", response.text)
    assert "Alice&#39;s" in response.text and "Bob&#39;s" in response.text
    assert "Alice&#39;s" in bob.get("/precincts").text  # nothing overwritten
    # The form now carries the newest version: saving again is a deliberate overwrite.
    assert 'name="version" type="hidden" value="2"' in response.text


def test_edit_with_missing_version_is_refused(client_as, create_precinct):
    precinct = create_precinct(code="1-A", name="Original")
    response = client_as("manager").post(
        f"/precincts/{precinct.id}/edit", data={"code": "1-A", "name": "Sneaky"}, headers=HX
    )
    assert response.status_code == 400 and "did not say which version" in response.text


def test_delete_asks_then_deletes(client_as, create_precinct):
    precinct = create_precinct(code="5-E")
    client = client_as("admin")
    confirm = client.get(f"/precincts/{precinct.id}/delete", headers=HX).text
    assert "Delete precinct" in confirm and "5-E" in confirm
    response = client.post(f"/precincts/{precinct.id}/delete", data={"version": "1"}, headers=HX)
    assert response.status_code == 200 and "closeModal" in response.headers["HX-Trigger"]
    assert "5-E" not in client.get("/precincts").text
    assert client.get(f"/precincts/{precinct.id}/edit").status_code == 404


def test_delete_is_refused_while_voters_are_registered(client_as, create_precinct, run):
    from sqlalchemy import text

    from portal.db import transaction

    precinct = create_precinct(code="6-F")

    async def add_voter():
        async with transaction() as db:
            await db.execute(
                text(
                    "INSERT INTO voter (state_voter_id, first_name, last_name, date_of_birth, birth_year,"
                    " address, precinct_id, registration_date)"
                    " VALUES ('V1234', 'A', 'B', '1970-01-01', 1970, 'x', :p, '2000-01-01')"
                ),
                {"p": precinct.id},
            )

    run(add_voter())
    client = client_as("admin")
    response = client.post(f"/precincts/{precinct.id}/delete", data={"version": "1"}, headers=HX)
    assert response.status_code == 409
    assert "1 voters are registered in precinct 6-F; move them first." in response.text
    assert "6-F" in client.get("/precincts").text


def test_observers_and_clerks_see_no_edit_controls(client_as, create_precinct):
    create_precinct(code="1-A")
    for role in ("observer", "clerk"):
        html = client_as(role).get("/precincts").text
        assert "New precinct" not in html and "/edit" not in html
    assert "/edit" in client_as("manager").get("/precincts").text


# Bulk import ---------------------------------------------------------------------------------------


def test_precincts_import_from_a_csv_file_all_or_nothing(client_as, create_precinct, run):
    import io

    create_precinct(code="1-A", name="Existing")
    manager = client_as("manager")
    good = (
        "code,name,polling place\n2-A,Maple North,Lincoln School\n2-B,Oak South,\n3-C,Cedar,Fire Station 3\n"
    )
    bad = "2-A,Maple North\n1-A,Again\n2-A,Twice\nno good!,X\n4-D,\n5-E,Five,Place,Extra\n"
    refused = manager.post("/precincts/import", data={"lines": bad})
    text = refused.text
    assert refused.status_code == 422 and "Nothing was added." in text
    for expected in (
        "Line 2: precinct 1-A already exists",
        "Line 3: code 2-A is also on line 1",
        "Line 4: code “no good!” must be 1 to 16 letters",
        "Line 5: the name is missing",
        "Line 6: more than 3 values",
    ):
        assert expected in text, expected
    assert "2-A" not in manager.get("/precincts?q=2-A").text.split("</thead>", 1)[-1]
    uploaded = manager.post(
        "/precincts/import",
        data={"file": (io.BytesIO(good.encode("utf-8-sig")), "precincts.csv")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code in (200, 303), uploaded.text[:300]
    page = manager.get("/precincts").text
    assert all(code in page for code in ("2-A", "2-B", "3-C")) and "Lincoln School" in page
    latin1 = manager.post(
        "/precincts/import",
        data={"file": (io.BytesIO("9-Z,Peñas\n".encode("latin-1")), "p.csv")},
        content_type="multipart/form-data",
    )
    assert latin1.status_code == 422 and "not UTF-8" in latin1.text


def test_precincts_import_is_for_editors_and_audited_once(client_as, run):
    from tests.test_account import events

    assert client_as("clerk").get("/precincts/import").status_code == 403
    manager = client_as("manager")
    assert manager.post("/precincts/import", data={"lines": "7-A,Seven\n7-B,Seven B\n"}).status_code in (
        200,
        303,
    )
    assert events(run, "bulk_create") == 1
