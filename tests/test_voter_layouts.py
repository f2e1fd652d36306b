"""The states' published voter-file layouts load without hand work; saved presets; code lists.

Every file here is generated to the published layout (tests/voter_files.py), never real data.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy import select

from portal.db import reading
from portal.models import ImportPreset, Party, Precinct, Voter
from portal.voters.importing.sniff import recognise
from portal.voters.layouts import LAYOUTS
from tests.test_imports import check, csv_bytes, job_id_from, upload, voter_line, wait
from tests.voter_files import florida_row, nc_row, ohio_row, state_file, washington_row


def voters(run) -> dict[str, tuple]:
    async def go():
        async with reading() as db:
            rows = await db.execute(
                select(Voter, Precinct.code, Party.abbreviation)
                .join(Precinct, Precinct.id == Voter.precinct_id)
                .outerjoin(Party, Party.id == Voter.party_id)
            )
            return {v.state_voter_id: (v, code, party) for v, code, party in rows}

    return run(go())


def test_north_carolina_file_maps_itself_and_codes_are_read(client_as, run, create_precinct, create_party):
    """The ncvoter layout (tab, quoted, CRLF, birth year only, MM/DD/YYYY): recognised by its
    header, every field mapped; A/S/R status codes and UNA (no party) read through its code
    lists; a precinct missing from the portal read as an existing one, a new party created."""
    create_precinct(code="01-07")
    create_party(abbreviation="DEM")
    importer = client_as("manager")
    rows = [
        nc_row(1),
        nc_row(2, party_cd="DEM", status_cd="S"),
        nc_row(3, status_cd="R", first_name="RUTH"),
        nc_row(4, party_cd="GRE", first_name="OMAR", birth_year="1981"),
        nc_row(5, precinct_abbrv="01-09", first_name="LENA", birth_year="1990"),
    ]
    job_id = job_id_from(upload(importer, state_file("nc-ncvoter", rows)))  # (the form says ISO dates)
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Recognised as <strong>North Carolina statewide voter file (ncvoter)</strong>" in page
    job = check(importer, run, job_id)
    assert job.status == "invalid" and job.counts["errors"] == 2, job.message
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "GRE" in page and "01-09" in page and 'name="precinct_0"' in page and 'name="party_0"' in page
    for bad, message in (
        ({"precinct_0": "NOPE-1"}, "There is no precinct NOPE-1 to read 01-09 as."),
        ({"precinct_0": "01-07", "party_0": "XYZ"}, "There is no party XYZ to read GRE as."),
    ):
        refused = importer.post(f"/voters/imports/{job_id}/reference", data=bad)
        assert refused.status_code == 422 and message in refused.text
    assert wait(run, job_id).codes == job.codes  # nothing kept from a refused choice
    response = importer.post(
        f"/voters/imports/{job_id}/reference", data={"precinct_0": "01-07", "party_0": "create"}
    )
    assert response.status_code == 303
    job = wait(run, job_id)
    assert job.status == "validated", job.message
    # Two voters named ALEX MOORE born 1974 with no full date: a weaker match, not a strong one.
    assert job.counts["duplicates"] == 0 and job.counts["weak_duplicates"] == 1
    assert job.codes["precinct"] == {"01-09": "01-07"}
    importer.post(f"/voters/imports/{job_id}/load")
    assert wait(run, job_id).status == "loaded"
    roll = voters(run)
    first, precinct, party = roll["BN000001"]
    assert (first.date_of_birth, first.birth_year, party, first.status) == (None, 1974, None, "active")
    assert first.registration_date == date(2022, 2, 4) and first.address == "1 HILLSBOROUGH ST"
    assert first.city == "RALEIGH" and first.middle_name == "J" and precinct == "01-07"
    assert roll["BN000002"][0].status == "active" and roll["BN000002"][2] == "DEM"
    assert roll["BN000003"][0].status == "removed"
    assert roll["BN000004"][2] == "GRE" and roll["BN000005"][1] == "01-07"


def test_north_carolina_layouts_of_other_years_are_recognised_by_column_name():
    """The 71-column layout before 02/2022 and the 70-column one of 02/2026 carry the same names
    in other places: the mapping follows the names."""
    current = list(LAYOUTS["nc-ncvoter"].columns)
    previous = [c for c in current if c not in ("ncid", "birth_year", "age_at_year_end")]
    previous = [
        *previous[:3],
        "absent_ind",
        "name_prefx_cd",
        *previous[3:],
        "birth_year",
        "ncid",
        "birth_age",
    ]
    layout, mapping = recognise(previous)
    assert layout.key == "nc-ncvoter" and previous[mapping["state_voter_id"]] == "ncid"
    assert previous[mapping["birth_year"]] == "birth_year"
    later = [*current[:34], "ssn", "no_dl_ssn_chkbx", "hava_id_req", *current[34:]]
    layout, mapping = recognise(later)
    assert later[mapping["precinct"]] == "precinct_abbrv" and mapping["precinct"] == 37
    assert recognise(["voter_id", "last_name", "first_name", "dob", "address", "precinct"]) is None


def test_ohio_file_through_the_cli(app, run, tmp_path, create_party):
    """Ohio's SWVF: 46 fixed columns and one per election after them; the unit joins the street
    address; CONFIRMATION reads as inactive; one-letter party codes; blank party is none."""
    create_party(abbreviation="DEM")
    path = tmp_path / "SWVF_1_22.txt"
    rows = [
        ohio_row(1),
        ohio_row(2, VOTER_STATUS="CONFIRMATION", PARTY_AFFILIATION="", FIRST_NAME="MIA"),
        ohio_row(3, PARTY_AFFILIATION="R", FIRST_NAME="IAN", RESIDENTIAL_SECONDARY_ADDR=""),
    ]
    path.write_bytes(state_file("oh-swvf", rows))
    result = app.test_cli_runner().invoke(
        args=["import-voters", "--create-missing", "precincts,parties", str(path)]
    )
    assert result.exit_code == 0, result.output
    assert "layout: oh-swvf (Ohio statewide voter file (SWVF))" in result.output
    roll = voters(run)
    one, precinct, party = roll["OH0000000001"]
    assert one.address == "1 HIGH ST APT 2" and one.date_of_birth == date(1961, 7, 14) and party == "DEM"
    assert precinct == "25AAB" and one.registration_date == date(1990, 10, 1)
    assert roll["OH0000000002"][0].status == "inactive" and roll["OH0000000002"][2] is None
    assert roll["OH0000000003"][2] == "REP" and roll["OH0000000003"][0].address == "3 HIGH ST"


def test_florida_file_without_a_header(app, run, tmp_path, create_precinct):
    """Florida's extract has no header: recognised by its 38 columns and the shape of its first
    row, which is a voter (line 1) and loads. A voter with the public-records exemption comes
    with blank names: rejected with its reason, the rest loaded with --partial."""
    create_precinct(code="22")
    path = tmp_path / "ALA_20261101.txt"
    rows = [
        florida_row(1),
        florida_row(2, **{"Name Last": "", "Name First": "", "Requested public records exemption": "Y"}),
        florida_row(3, **{"Voter Status": "INA", "Party Affiliation": "DEM", "Name First": "Ana"}),
    ]
    path.write_bytes(state_file("fl-extract", rows))
    errors = tmp_path / "errors.csv"
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["import-voters", "--errors", str(errors), str(path)])
    assert refused.exit_code == 1 and "layout: fl-extract" in refused.output, refused.output
    reasons = list(csv.reader(io.StringIO(errors.read_text())))
    assert ["2", "Name Last", "", "is empty"] in reasons  # (line 1 is a voter: there is no header)
    assert ["3", "Party Affiliation", "DEM", "is not a party abbreviation"] in reasons and len(reasons) == 4
    loaded = runner.invoke(args=["import-voters", "--partial", "--create-missing", "parties", str(path)])
    assert loaded.exit_code == 0, loaded.output
    roll = voters(run)
    assert set(roll) == {"100000001", "100000003"}
    one = roll["100000001"][0]
    assert one.date_of_birth == date(1988, 3, 9) and one.registration_date == date(2006, 10, 11)
    assert roll["100000001"][2] is None and roll["100000003"][0].status == "inactive"
    assert one.address == "1 NW 13th St" and one.city == "Gainesville"


def test_washington_file_joins_the_address_parts(client_as, run, create_precinct):
    create_precinct(code="2710")
    importer = client_as("manager")
    rows = [washington_row(1), washington_row(2, StatusCode="Inactive", FName="KIM", RegUnitType="")]
    job_id = job_id_from(upload(importer, state_file("wa-vrdb", rows)))
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Recognised as <strong>Washington VRDB extract</strong>" in page
    assert "RegStNum + RegStFrac + RegStPreDirection + RegStName" in page  # the joined columns
    job = check(importer, run, job_id)
    assert job.status == "validated", job.message
    importer.post(f"/voters/imports/{job_id}/load")
    assert wait(run, job_id).status == "loaded"
    roll = voters(run)
    one = roll["WA000000001"][0]
    assert one.address == "24901 103RD AVE SE APT D-201" and one.birth_year == 1990 and one.status == "active"
    assert roll["WA000000002"][0].status == "inactive" and roll["WA000000002"][0].address.endswith("SE D-201")


GEMEENTE = "Kiezer;Achternaam;Voornaam;Geboortejaar;Adres;Stembureau;Toestand;Ingeschreven"


def gemeente_file(*lines: str) -> bytes:
    return (GEMEENTE + "\n" + "\n".join(lines) + "\n").encode()


def test_a_mapping_saved_as_a_preset_maps_the_next_file(client_as, run, app, tmp_path, create_precinct):
    """An office's own layout, mapped by hand once, with a status code read through the code list:
    saved under a name, the next file with those columns maps itself, on the web and in the CLI."""
    create_precinct(code="111-C")
    importer = client_as("manager")
    first = gemeente_file("NL0001;Visser;Anna;1970;Dorpsstraat 1;111-C;ACT;2001-05-01")
    job_id = job_id_from(upload(importer, first))
    assert "Recognised as" not in importer.get(f"/voters/imports/{job_id}").text
    by_hand = {f"map_{k}": str(i) for i, k in enumerate(
        ["state_voter_id", "last_name", "first_name", "birth_year", "address", "precinct", "status",
         "registration_date"])}  # fmt: skip
    job = check(importer, run, job_id, mapping=by_hand, date_format="iso")
    assert job.status == "invalid"
    page = importer.get(f"/voters/imports/{job_id}").text
    assert "Status code in the file" in page and ">ACT</td>" in page
    importer.post(f"/voters/imports/{job_id}/reference", data={"status_0": "active"})
    assert wait(run, job_id).status == "validated"
    for bad, message in (
        ("", "Name the preset"),
        ("nc-ncvoter", "published layout"),
        ("<b>", "Name the preset"),
    ):
        response = importer.post(f"/voters/imports/{job_id}/preset", data={"name": bad})
        assert response.status_code == 422 and message in response.text
    assert (
        importer.post(f"/voters/imports/{job_id}/preset", data={"name": "Gemeente export"}).status_code == 303
    )

    async def saved():
        async with reading() as db:
            return await db.scalar(select(ImportPreset).where(ImportPreset.name == "Gemeente export"))

    preset = run(saved())
    assert preset.fields["state_voter_id"] == "Kiezer" and preset.codes == {"status": {"ACT": "active"}}
    second = gemeente_file("NL0002;Bakker;Jan;1981;Kerkweg 2;111-C;ACT;2010-01-01")
    job_id = job_id_from(upload(importer, second))
    assert (
        "Recognised as <strong>your saved preset “Gemeente export”</strong>"
        in importer.get(f"/voters/imports/{job_id}").text
    )
    job = check(importer, run, job_id)
    assert job.status == "validated", job.message
    path = tmp_path / "gemeente.csv"
    path.write_bytes(gemeente_file("NL0003;Smit;Els;1990;Laan 3;111-C;ACT;2012-02-02"))
    result = app.test_cli_runner().invoke(args=["import-voters", "--preset", "Gemeente export", str(path)])
    assert result.exit_code == 0 and "saved preset “Gemeente export”" in result.output, result.output
    assert voters(run)["NL0003"][0].birth_year == 1990


def test_cli_preset_that_does_not_fit_is_refused(app, tmp_path):
    path = tmp_path / "nc.txt"
    path.write_bytes(state_file("nc-ncvoter", [nc_row(1)]))
    runner = app.test_cli_runner()
    wrong = runner.invoke(args=["import-voters", "--preset", "fl-extract", str(path)])
    assert wrong.exit_code == 2 and "the Florida voter extract (voter detail file) has 38" in wrong.output
    unknown = runner.invoke(args=["import-voters", "--preset", "texas", str(path)])
    assert unknown.exit_code == 2 and "There is no preset “texas”" in unknown.output


def test_birth_year_only_rows_in_a_plain_csv(client_as, run, create_precinct):
    """A birth-year column with no date: checked as a year (not a date), registration before 16 is
    refused on the year, and an update with the year only keeps a full date on the roll."""
    create_precinct(code="111-C")
    importer = client_as("manager")
    header = "Voter ID,Last Name,First Name,Birth Year,Street Address,Precinct,Reg Date\n"
    lines = [
        "NC000001,Doe,Jane,1974,1 Elm St,111-C,2000-01-01",
        "NC000002,Roe,Rick,74,2 Elm St,111-C,2000-01-01",
        "NC000003,Poe,Pia,1995,3 Elm St,111-C,2010-06-01",
        "NC000004,Loe,Lou,,4 Elm St,111-C,2010-06-01",
    ]
    job = check(importer, run, job_id_from(upload(importer, (header + "\n".join(lines) + "\n").encode())))
    assert job.status == "invalid" and job.counts["errors"] == 3
    page = importer.get(f"/voters/imports/{job.id}").text
    assert "is not a year (YYYY)" in page and "is before the voter turned 16" in page
    assert "a voter needs a date of birth or a birth year" in page
    # A full date already on the roll survives an update that gives the year only.
    full = csv_bytes([voter_line(1, dob="1974-05-06")])
    job = check(importer, run, job_id_from(upload(importer, full)))
    importer.post(f"/voters/imports/{job.id}/load")
    assert wait(run, job.id).status == "loaded"
    only_year = (header + "NC000001,Doe,Jane,1974,9 New Rd,111-C,\n").encode()
    job = check(importer, run, job_id_from(upload(importer, only_year)))
    importer.post(f"/voters/imports/{job.id}/load")
    assert wait(run, job.id).status == "loaded"
    voter = voters(run)["NC000001"][0]
    assert voter.date_of_birth == date(1974, 5, 6) and voter.address == "9 New Rd"
    assert voter.registration_date == date(2000, 1, 1)


def test_a_tampered_joined_mapping_is_refused(client_as, run, create_precinct):
    """The mapping form sends a joined field as "7,9,12": a column twice, a column past the last
    one or a value that is not a number is refused with the reason, and the job stays as it was."""
    create_precinct(code="2710")
    importer = client_as("manager")
    job_id = job_id_from(upload(importer, state_file("wa-vrdb", [washington_row(1)])))
    page = importer.get(f"/voters/imports/{job_id}").text
    assert 'value="7,8,12,9,10,13,11,14" selected' in page
    for tampered, message in (
        ("7,7", "A file column can feed only one field."),
        ("7,99", "Map the required columns: Address."),
        ("7,<b>", "Map the required columns: Address."),
    ):
        response = importer.post(
            f"/voters/imports/{job_id}/check",
            data={"map_state_voter_id": "0", "map_last_name": "3", "map_first_name": "1",
                  "map_birth_year": "5", "map_precinct": "19", "map_address": tampered,
                  "date_format": "iso"},
        )  # fmt: skip
        assert response.status_code == 422 and message in response.text, tampered
    assert wait(run, job_id).status == "uploaded"


def test_an_import_goes_on_across_a_database_restart(client_as, run, database_url, create_precinct):
    """Every connection is cut between the steps (what a restart does to the pool): the next step
    is served. While connections are refused, saving a preset answers 503 with what happened, and
    nothing is half-saved; once the database is back it saves."""
    from tests.test_resilience import _wait_until_gone, connections_refused, terminate_all_but_admin

    def restart():
        _wait_until_gone(database_url, terminate_all_but_admin(database_url))

    create_precinct(code="2710")
    importer = client_as("manager")
    job_id = job_id_from(upload(importer, state_file("wa-vrdb", [washington_row(1)])))
    restart()
    job = check(importer, run, job_id)
    assert job.status == "validated", job.message
    restart()
    with connections_refused(database_url):
        refused = importer.post(f"/voters/imports/{job_id}/preset", data={"name": "WA weekly"})
    assert refused.status_code == 503 and "Nothing was saved" in refused.text
    assert importer.post(f"/voters/imports/{job_id}/preset", data={"name": "WA weekly"}).status_code == 303
    importer.post(f"/voters/imports/{job_id}/load")
    assert wait(run, job_id).status == "loaded" and "WA000000001" in voters(run)
