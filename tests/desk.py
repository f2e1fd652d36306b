"""A signed-in test client that posts forms the way a browser does: CSRF token from the page,
`HX-Request: true` where the page uses htmx."""

from __future__ import annotations

from sqlalchemy import select, text

from portal.db import reading, transaction
from tests.conftest import HX, TEST_PASSWORD, csrf_token_from


class Desk:
    def __init__(self, app, user):
        self.user = user
        self.client = app.test_client()
        token = csrf_token_from(self.client.get("/login").text)
        answer = self.client.post(
            "/login", data={"username": user.username, "password": TEST_PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 302, answer.text
        self.token = csrf_token_from(self.client.get("/").text)

    def get(self, url, htmx=False):
        return self.client.get(url, headers=HX if htmx else {})

    def post(self, url, data, htmx=True, token=True):
        headers = dict(HX) if htmx else {}
        if token:
            data = {**data, "csrf_token": self.token}
        return self.client.post(url, data=data, headers=headers)

    def check_in(self, election_id, voter_id, method="in_person"):
        return self.post(f"/check-in/{election_id}/voters/{voter_id}", {"method": method, "q": "x"})

    def void(self, election_id, voter_id, reason="Wrong voter chosen", htmx=True):
        url = f"/check-in/{election_id}/voters/{voter_id}/void"
        page = self.get(url, htmx=htmx)
        data = {"reason": reason}
        if page.status_code == 200:  # the form's own token, as a browser would send it
            data["csrf_token"] = csrf_token_from(page.text)
            return self.client.post(url, data=data, headers=HX if htmx else {})
        return self.post(url, data, htmx=htmx)


def check_ins(run, election_id):
    from portal.models import CheckIn

    async def go():
        async with reading() as db:
            rows = await db.scalars(
                select(CheckIn).where(CheckIn.election_id == election_id).order_by(CheckIn.id)
            )
            return list(rows)

    return run(go())


def events(run, *actions):
    from portal.audit.queries import search_events

    async def go():
        async with reading() as db:
            found = []
            for action in actions:
                found += await search_events(db, action=action)
            return found

    return run(go())


def sql(run, statement, **params):
    async def go():
        async with transaction() as db:
            result = await db.execute(text(statement), params)
            return result.all() if result.returns_rows else None

    return run(go())
