"""What an import reads from a voter file: the roll's fields with their labels, required ones and
column-name synonyms, the date formats, and ImportFailed (the file cannot be imported as it is)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    label: str
    required: bool
    synonyms: tuple[str, ...]
    max_length: int = 0


FIELDS: dict[str, Field] = {
    "state_voter_id": Field(
        "State voter ID",
        True,
        (
            "state_voter_id",
            "voter_id",
            "voterid",
            "state_id",
            "sos_voterid",
            "id",
            "voter_number",
            "registration_number",
        ),
        20,
    ),
    "last_name": Field("Last name", True, ("last_name", "lastname", "surname", "family_name", "last"), 80),
    "first_name": Field("First name", True, ("first_name", "firstname", "given_name", "first"), 80),
    "middle_name": Field("Middle name", False, ("middle_name", "middlename", "middle", "middle_initial"), 80),
    # One of the two is needed: many states publish the birth year only.
    "date_of_birth": Field(
        "Date of birth", False, ("date_of_birth", "dob", "birth_date", "birthdate", "born"), 10
    ),
    "birth_year": Field(
        "Birth year", False, ("birth_year", "birthyear", "year_of_birth", "yob", "birth_yr"), 4
    ),
    "address": Field(
        "Address",
        True,
        ("address", "street_address", "residence_address", "street", "address_1", "address1"),
        200,
    ),
    "city": Field("City", False, ("city", "town", "residence_city"), 80),
    "postal_code": Field("Postal code", False, ("postal_code", "zip", "zip_code", "zipcode", "postcode"), 10),
    "precinct": Field("Precinct", True, ("precinct", "precinct_code", "precinct_id", "pct"), 16),
    "party": Field("Party", False, ("party", "party_code", "party_affiliation", "affiliation"), 10),
    # Only read to name precincts created from the file (the roll keeps the precinct, not its name).
    "precinct_name": Field(
        "Precinct name (for new precincts)",
        False,
        ("precinct_name", "precinct_desc", "precinct_description"),
        120,
    ),
    "status": Field("Status", False, ("status", "voter_status"), 16),
    "registration_date": Field(
        "Registration date",
        False,
        ("registration_date", "reg_date", "registered", "registration", "date_registered"),
        10,
    ),
}
NAME_FIELDS = ("last_name", "first_name", "middle_name")
DATE_FORMATS = {"iso": "YYYY-MM-DD", "us": "MM/DD/YYYY", "dmy": "DD/MM/YYYY"}


class ImportFailed(Exception):
    """The file cannot be imported as it is (the message says why, with the line when known)."""


BIRTH = ("date_of_birth", "birth_year")


def missing_fields(mapping: dict) -> list[str]:
    """The labels of the required fields a mapping leaves out (a date of birth or a birth year)."""
    missing = [FIELDS[f].label for f, spec in FIELDS.items() if spec.required and f not in mapping]
    if not any(key in mapping for key in BIRTH):
        missing.append("Date of birth or birth year")
    return missing
