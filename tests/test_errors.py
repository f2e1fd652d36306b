"""Error pages in the layout, and as toasts for htmx requests."""

from __future__ import annotations

from tests.conftest import HX


def test_404_page_in_the_layout(client_as):
    response = client_as("observer").get("/precincts/999/edit")
    assert response.status_code in (403, 404)
    response = client_as("manager").get("/precincts/999/edit")
    assert response.status_code == 404
    assert (
        "<html" in response.text
        and "No such precinct." in response.text
        and "Back to the dashboard" in response.text
    )


def test_errors_for_htmx_are_toast_fragments(client_as):
    response = client_as("manager").get("/precincts/999/edit", headers=HX)
    assert response.status_code == 404
    assert "<html" not in response.text and 'data-error-code="404"' in response.text
    assert response.headers["HX-Retarget"] == "#toasts" and response.headers["HX-Reswap"] == "beforeend"


def test_403_names_the_role(client_as):
    response = client_as("clerk").get("/users")
    assert response.status_code == 403 and "Your role (clerk) does not allow this." in response.text


def test_database_down_gives_503_and_a_clear_message(app_factory):
    app = app_factory(DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    response = app.test_client().get("/login")
    assert response.status_code == 200  # the sign-in page needs no database
    response = app.test_client().post("/login", data={"username": "someone", "password": "whatever!"})
    assert response.status_code == 503
    assert "The database is not answering. Nothing was saved" in response.text


def test_500_is_logged_and_shown_in_the_layout(app_factory, client_as):
    from flask import Blueprint

    from portal.auth.roles import allow

    app = app_factory(PROPAGATE_EXCEPTIONS=False)
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    @allow("admin")
    async def boom():
        raise RuntimeError("kaboom")

    app.register_blueprint(bp)
    client = app.test_client()
    client.post(
        "/login",
        data={"username": client_as("admin").user.username, "password": "correct horse battery staple"},
    )
    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "kaboom" not in response.text


def test_a_full_disk_is_a_logged_server_error_not_a_lost_database(app_factory, caplog):
    """Only a lost or refused connection is "the database is not answering" (503). A full disk is
    an honest 500, logged: met in a view, or while the driver is at work (a COPY reading its source,
    which used to be taken for a lost connection because asyncpg was on the stack)."""
    import errno
    import logging

    from flask import Blueprint

    from portal.auth.roles import public
    from portal.db import database

    app = app_factory(PROPAGATE_EXCEPTIONS=False)
    bp = Blueprint("disk", __name__)

    def disk_full() -> OSError:
        return OSError(errno.ENOSPC, "No space left on device")

    @bp.get("/disk-full/while-copying")
    @public
    async def while_copying():
        async def source():
            yield b"1\n"
            raise disk_full()

        async with database().engine.connect() as connection:
            await connection.exec_driver_sql("CREATE TEMPORARY TABLE spill (n int)")
            raw = (await connection.get_raw_connection()).driver_connection
            await raw.copy_to_table("spill", source=source())

    @bp.get("/disk-full/in-a-view")
    @public
    async def in_a_view():
        raise disk_full()

    app.register_blueprint(bp)
    client = app.test_client()
    for path in ("/disk-full/while-copying", "/disk-full/in-a-view"):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="portal.errors"):
            response = client.get(path)
        assert response.status_code == 500, path
        assert "Something went wrong" in response.text and "The error was logged." in response.text
        assert "not answering" not in response.text and "No space left" not in response.text
        logged = [r.exc_info[1] for r in caplog.records if r.name == "portal.errors" and r.exc_info]
        assert [getattr(error, "errno", None) for error in logged] == [errno.ENOSPC], path


def test_oversized_request_is_refused(app_factory, client_as):
    app = app_factory(MAX_CONTENT_LENGTH=1024)
    client = app.test_client()
    client.post(
        "/login",
        data={"username": client_as("manager").user.username, "password": "correct horse battery staple"},
    )
    response = client.post("/precincts/new", data={"code": "1-A", "name": "x" * 5000})
    assert response.status_code == 413
    assert "No precinct matches" in client.get("/precincts").text
