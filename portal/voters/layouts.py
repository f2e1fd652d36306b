"""The voter-file layouts states publish, recognised so that a state's export loads without hand work.

A layout names, for each field of the roll, the column (or the columns, joined with spaces) that
holds it, the date format, and the code lists that turn the state's status and party codes into
the portal's. A file with a header is recognised by its column names (columns added or removed
over the years do not matter as long as the fields' columns are there); a file without one, by
its column count and the shape of its first row (portal/voters/importing/sniff.py recognises them).
A user can also save a mapping as a named preset (`ImportPreset`): by column name, so it applies
to next month's file.

Sources (each layout's `source`): the states' own layout documents; where a state publishes none
for the current file, the public loaders that track it. Tests use small generated files only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Columns = str | tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    key: str
    title: str
    source: str
    columns: tuple[str, ...]  # as published, in order (a file without a header takes them as its header)
    fields: dict[str, Columns]  # field -> column name, or names joined with spaces; absent columns skipped
    date_format: str
    delimiter: str
    has_header: bool = True
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    # A file without a header: (column number from 0, pattern its value matches in the first row)
    shape: tuple[tuple[int, str], ...] = ()
    notes: str = ""


NC_COLUMNS = [
    "county_id",
    "county_desc",
    "voter_reg_num",
    "ncid",
    "last_name",
    "first_name",
    "middle_name",
    "name_suffix_lbl",
    "status_cd",
    "voter_status_desc",
    "reason_cd",
    "voter_status_reason_desc",
    "res_street_address",
    "res_city_desc",
    "state_cd",
    "zip_code",
    "mail_addr1",
    "mail_addr2",
    "mail_addr3",
    "mail_addr4",
    "mail_city",
    "mail_state",
    "mail_zipcode",
    "full_phone_number",
    "confidential_ind",
    "registr_dt",
    "race_code",
    "ethnic_code",
    "party_cd",
    "gender_code",
    "birth_year",
    "age_at_year_end",
    "birth_state",
    "drivers_lic",
    "precinct_abbrv",
    "precinct_desc",
    "municipality_abbrv",
    "municipality_desc",
    "ward_abbrv",
    "ward_desc",
    "cong_dist_abbrv",
    "super_court_abbrv",
    "judic_dist_abbrv",
    "nc_senate_abbrv",
    "nc_house_abbrv",
    "county_commiss_abbrv",
    "county_commiss_desc",
    "township_abbrv",
    "township_desc",
    "school_dist_abbrv",
    "school_dist_desc",
    "fire_dist_abbrv",
    "fire_dist_desc",
    "water_dist_abbrv",
    "water_dist_desc",
    "sewer_dist_abbrv",
    "sewer_dist_desc",
    "sanit_dist_abbrv",
    "sanit_dist_desc",
    "rescue_dist_abbrv",
    "rescue_dist_desc",
    "munic_dist_abbrv",
    "munic_dist_desc",
    "dist_1_abbrv",
    "dist_1_desc",
    "vtd_abbrv",
    "vtd_desc",
]

OHIO_COLUMNS = [
    "SOS_VOTERID",
    "COUNTY_NUMBER",
    "COUNTY_ID",
    "LAST_NAME",
    "FIRST_NAME",
    "MIDDLE_NAME",
    "SUFFIX",
    "DATE_OF_BIRTH",
    "REGISTRATION_DATE",
    "VOTER_STATUS",
    "PARTY_AFFILIATION",
    "RESIDENTIAL_ADDRESS1",
    "RESIDENTIAL_SECONDARY_ADDR",
    "RESIDENTIAL_CITY",
    "RESIDENTIAL_STATE",
    "RESIDENTIAL_ZIP",
    "RESIDENTIAL_ZIP_PLUS4",
    "RESIDENTIAL_COUNTRY",
    "RESIDENTIAL_POSTALCODE",
    "MAILING_ADDRESS1",
    "MAILING_SECONDARY_ADDRESS",
    "MAILING_CITY",
    "MAILING_STATE",
    "MAILING_ZIP",
    "MAILING_ZIP_PLUS4",
    "MAILING_COUNTRY",
    "MAILING_POSTAL_CODE",
    "CAREER_CENTER",
    "CITY",
    "CITY_SCHOOL_DISTRICT",
    "COUNTY_COURT_DISTRICT",
    "CONGRESSIONAL_DISTRICT",
    "COURT_OF_APPEALS",
    "EDU_SERVICE_CENTER_DISTRICT",
    "EXEMPTED_VILL_SCHOOL_DISTRICT",
    "LIBRARY",
    "LOCAL_SCHOOL_DISTRICT",
    "MUNICIPAL_COURT_DISTRICT",
    "PRECINCT_NAME",
    "PRECINCT_CODE",
    "STATE_BOARD_OF_EDUCATION",
    "STATE_REPRESENTATIVE_DISTRICT",
    "STATE_SENATE_DISTRICT",
    "TOWNSHIP",
    "VILLAGE",
    "WARD",
]

FLORIDA_COLUMNS = (
    "County Code",
    "Voter ID",
    "Name Last",
    "Name Suffix",
    "Name First",
    "Name Middle",
    "Requested public records exemption",
    "Residence Address Line 1",
    "Residence Address Line 2",
    "Residence City (USPS)",
    "Residence State",
    "Residence Zipcode",
    "Mailing Address Line 1",
    "Mailing Address Line 2",
    "Mailing Address Line 3",
    "Mailing City",
    "Mailing State",
    "Mailing Zipcode",
    "Mailing Country",
    "Gender",
    "Race",
    "Birth Date",
    "Registration Date",
    "Party Affiliation",
    "Precinct",
    "Precinct Group",
    "Precinct Split",
    "Precinct Suffix",
    "Voter Status",
    "Congressional District",
    "House District",
    "Senate District",
    "County Commission District",
    "School Board District",
    "Daytime Area Code",
    "Daytime Phone Number",
    "Daytime Phone Extension",
    "Email address",
)

WASHINGTON_COLUMNS = [
    "StateVoterID",
    "FName",
    "MName",
    "LName",
    "NameSuffix",
    "Birthyear",
    "Gender",
    "RegStNum",
    "RegStFrac",
    "RegStName",
    "RegStType",
    "RegUnitType",
    "RegStPreDirection",
    "RegStPostDirection",
    "RegStUnitNum",
    "RegCity",
    "RegState",
    "RegZipCode",
    "CountyCode",
    "PrecinctCode",
    "PrecinctPart",
    "LegislativeDistrict",
    "CongressionalDistrict",
    "Mail1",
    "Mail2",
    "Mail3",
    "MailCity",
    "MailZip",
    "MailState",
    "MailCountry",
    "Registrationdate",
    "LastVoted",
    "StatusCode",
]

LAYOUTS: dict[str, Layout] = {
    layout.key: layout
    for layout in (
        Layout(
            key="nc-ncvoter",
            title="North Carolina statewide voter file (ncvoter)",
            source="NC State Board of Elections, layout_ncvoter.txt (updated 02/11/2022): "
            "https://s3.amazonaws.com/dl.ncsbe.gov/data/layout_ncvoter.txt",
            columns=tuple(NC_COLUMNS),
            fields={
                "state_voter_id": "ncid",
                "last_name": "last_name",
                "first_name": "first_name",
                "middle_name": "middle_name",
                "birth_year": "birth_year",
                "address": "res_street_address",
                "city": "res_city_desc",
                "postal_code": "zip_code",
                "precinct": "precinct_abbrv",
                "precinct_name": "precinct_desc",
                "party": "party_cd",
                "status": "status_cd",
                "registration_date": "registr_dt",
            },
            date_format="us",
            delimiter="\t",
            codes={
                # A active, I inactive, S temporary (military and overseas: may vote), R removed,
                # D denied (never registered: kept as removed, so the row is not lost).
                "status": {"A": "active", "I": "inactive", "S": "active", "R": "removed", "D": "removed"},
                "party": {"UNA": ""},  # unaffiliated: no party
            },
            notes="Tab-delimited, every value quoted, birth year only. Matched by column name, so the "
            "67-column layout of 2022, the 71-column one before it and the 70-column one of 2026 all load.",
        ),
        Layout(
            key="oh-swvf",
            title="Ohio statewide voter file (SWVF)",
            source="Ohio Secretary of State, voter file record layout "
            "(https://www6.ohiosos.gov/ords/f?p=111:2::FILE_LAYOUT:NO:RP,2::)",
            columns=tuple(OHIO_COLUMNS),
            fields={
                "state_voter_id": "SOS_VOTERID",
                "last_name": "LAST_NAME",
                "first_name": "FIRST_NAME",
                "middle_name": "MIDDLE_NAME",
                "date_of_birth": "DATE_OF_BIRTH",
                "address": ("RESIDENTIAL_ADDRESS1", "RESIDENTIAL_SECONDARY_ADDR"),
                "city": "RESIDENTIAL_CITY",
                "postal_code": "RESIDENTIAL_ZIP",
                "precinct": "PRECINCT_CODE",
                "precinct_name": "PRECINCT_NAME",
                "party": "PARTY_AFFILIATION",
                "status": "VOTER_STATUS",
                "registration_date": "REGISTRATION_DATE",
            },
            date_format="iso",
            delimiter=",",
            codes={
                # CONFIRMATION: a confirmation notice went out and the voter has not answered.
                "status": {"ACTIVE": "active", "CONFIRMATION": "inactive"},
                # The party of the voter's last primary ballot; blank is no party.
                "party": {
                    "C": "CST",
                    "D": "DEM",
                    "E": "REF",
                    "G": "GRE",
                    "L": "LIB",
                    "N": "NLP",
                    "R": "REP",
                    "S": "SOC",
                },
            },
            notes="Comma-delimited with a header; 46 fixed columns, then one column per election "
            "(PRIMARY-03/07/2000 …), which the import ignores.",
        ),
        Layout(
            key="fl-extract",
            title="Florida voter extract (voter detail file)",
            source="Florida Division of Elections, Voter Extract Disk File Layout (10-2018): "
            "https://dos.myflorida.com/media/696057/voter-extract-file-layout.pdf",
            columns=FLORIDA_COLUMNS,
            fields={
                "state_voter_id": "Voter ID",
                "last_name": "Name Last",
                "first_name": "Name First",
                "middle_name": "Name Middle",
                "date_of_birth": "Birth Date",
                "address": ("Residence Address Line 1", "Residence Address Line 2"),
                "city": "Residence City (USPS)",
                "postal_code": "Residence Zipcode",
                "precinct": "Precinct",
                "party": "Party Affiliation",
                "status": "Voter Status",
                "registration_date": "Registration Date",
            },
            date_format="us",
            delimiter="\t",
            has_header=False,
            codes={"status": {"ACT": "active", "INA": "inactive"}, "party": {"NPA": ""}},
            shape=((0, r"^[A-Z]{3}$"), (1, r"^\d{6,12}$"), (22, r"^(\d{2}/\d{2}/\d{4})?$")),
            notes="Tab-delimited, no header, 38 columns, one file per county. No precinct names: "
            "precincts created from it are named after their code. Rows of voters who asked for the "
            "public-records exemption come with blank names and are rejected (load the rest partly).",
        ),
        Layout(
            key="wa-vrdb",
            title="Washington VRDB extract",
            source="Washington Secretary of State, VRDB extract read-me and layout "
            "(https://www.sos.wa.gov/elections/data-research/reports-data-and-statistics/"
            "washington-state-voter-registration-database-vrdb); 33-column header of the 2024-2025 extracts",
            columns=tuple(WASHINGTON_COLUMNS),
            fields={
                "state_voter_id": "StateVoterID",
                "last_name": "LName",
                "first_name": "FName",
                "middle_name": "MName",
                "birth_year": "Birthyear",
                "date_of_birth": "Birthdate",  # (extracts before August 2023)
                "address": (
                    "RegStNum",
                    "RegStFrac",
                    "RegStPreDirection",
                    "RegStName",
                    "RegStType",
                    "RegStPostDirection",
                    "RegUnitType",
                    "RegStUnitNum",
                ),
                "city": "RegCity",
                "postal_code": "RegZipCode",
                "precinct": "PrecinctCode",
                "status": "StatusCode",
                "registration_date": "Registrationdate",
            },
            date_format="iso",
            delimiter="|",
            codes={"status": {"ACTIVE": "active", "A": "active", "INACTIVE": "inactive", "I": "inactive"}},
            notes="Bar-delimited with a header. Washington registers no party. The street address is "
            "joined from its parts (number, fraction, direction, name, type, direction, unit).",
        ),
    )
}
