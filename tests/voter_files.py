"""Small voter files generated to the states' published layouts (never real voter data).

`state_file(layout_key, rows)` writes a file the way that state's system does: NC tab-delimited
with every value quoted and CRLF; Ohio comma-delimited with election-history columns after the
fixed ones; Florida tab-delimited with no header and no quotes; Washington bar-delimited.
Each row is a dict of column name -> value; columns not given are blank.
"""

from __future__ import annotations

from portal.voters.layouts import LAYOUTS

OHIO_HISTORY = ["PRIMARY-03/07/2000", "GENERAL-11/07/2000", "GENERAL-11/05/2024"]


def state_file(layout_key: str, rows: list[dict[str, str]]) -> bytes:
    layout = LAYOUTS[layout_key]
    columns = list(layout.columns) + (OHIO_HISTORY if layout_key == "oh-swvf" else [])
    lines = []
    if layout.has_header:
        lines.append(columns)
    lines += [[row.get(c, "") for c in columns] for row in rows]
    if layout_key == "nc-ncvoter":
        return "".join("\t".join(f'"{v}"' for v in line) + "\r\n" for line in lines).encode()
    return "".join(layout.delimiter.join(line) + "\n" for line in lines).encode()


def nc_row(n: int, **changes: str) -> dict[str, str]:
    row = {
        "county_id": "92",
        "county_desc": "WAKE",
        "voter_reg_num": f"{n:012d}",
        "ncid": f"BN{n:06d}",
        "last_name": "MOORE",
        "first_name": "ALEX",
        "middle_name": "J",
        "status_cd": "A",
        "voter_status_desc": "ACTIVE",
        "res_street_address": f"{n} HILLSBOROUGH ST  ",
        "res_city_desc": "RALEIGH",
        "state_cd": "NC",
        "zip_code": "27601",
        "registr_dt": "02/04/2022",
        "party_cd": "UNA",
        "birth_year": "1974",
        "age_at_year_end": "52",
        "precinct_abbrv": "01-07",
        "precinct_desc": "PRE 01-07",
    }
    return {**row, **changes}


def ohio_row(n: int, **changes: str) -> dict[str, str]:
    row = {
        "SOS_VOTERID": f"OH{n:010d}",
        "COUNTY_NUMBER": "25",
        "COUNTY_ID": str(n),
        "LAST_NAME": "KOVACS",
        "FIRST_NAME": "DANA",
        "MIDDLE_NAME": "R",
        "DATE_OF_BIRTH": "1961-07-14",
        "REGISTRATION_DATE": "1990-10-01",
        "VOTER_STATUS": "ACTIVE",
        "PARTY_AFFILIATION": "D",
        "RESIDENTIAL_ADDRESS1": f"{n} HIGH ST",
        "RESIDENTIAL_SECONDARY_ADDR": "APT 2",
        "RESIDENTIAL_CITY": "COLUMBUS",
        "RESIDENTIAL_STATE": "OH",
        "RESIDENTIAL_ZIP": "43215",
        "PRECINCT_NAME": "COLUMBUS 55-A",
        "PRECINCT_CODE": "25AAB",
        "GENERAL-11/05/2024": "X",
    }
    return {**row, **changes}


def florida_row(n: int, **changes: str) -> dict[str, str]:
    row = {
        "County Code": "ALA",
        "Voter ID": f"{100000000 + n}",
        "Name Last": "Rivera",
        "Name First": "Luz",
        "Name Middle": "M",
        "Requested public records exemption": "N",
        "Residence Address Line 1": f"{n} NW 13th St",
        "Residence City (USPS)": "Gainesville",
        "Residence State": "",
        "Residence Zipcode": "32601",
        "Gender": "F",
        "Race": "4",
        "Birth Date": "03/09/1988",
        "Registration Date": "10/11/2006",
        "Party Affiliation": "NPA",
        "Precinct": "22",
        "Voter Status": "ACT",
    }
    return {**row, **changes}


def washington_row(n: int, **changes: str) -> dict[str, str]:
    row = {
        "StateVoterID": f"WA{n:09d}",
        "FName": "SAM",
        "MName": "",
        "LName": "OKAFOR",
        "Birthyear": "1990",
        "Gender": "U",
        "RegStNum": str(24900 + n),
        "RegStName": "103RD",
        "RegStType": "AVE",
        "RegStPostDirection": "SE",
        "RegUnitType": "APT",
        "RegStUnitNum": "D-201",
        "RegCity": "KENT",
        "RegState": "WA",
        "RegZipCode": "98030",
        "CountyCode": "KI",
        "PrecinctCode": "2710",
        "PrecinctPart": "2710.175",
        "Registrationdate": "2012-05-30",
        "LastVoted": "2024-11-05",
        "StatusCode": "Active",
    }
    return {**row, **changes}
