"""Verifying returns, blind: a second person re-keys the figures from the tally sheet (or confirms
them by sight until a re-key has differed). A matching re-key verifies the revision; one that
differs is kept and told which fields, never the entered figures; after two that differ, a manager
decides between the entry and the re-key. Never the one who entered them (four eyes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit.queries import record_event
from portal.clock import clock_time
from portal.errors import Conflict
from portal.models import PrecinctReturn, ReturnRekey, User
from portal.returns.forms import Check, Figures, check_figures
from portal.returns.queries import ContestBallot, _add_revision, _figures_of, _plain
from portal.signals import return_verified


def differing(ballot: ContestBallot, figures: Figures) -> list[str]:
    """The fields (keys) where a blind re-keying differs from the stored revision."""
    stored, keyed = ballot.stored(), figures.by_key()
    return [key for key in stored if stored[key] != keyed[key]]


def _pending_latest(ballot: ContestBallot, actor: User, revision: int) -> PrecinctReturn:
    """The revision a verifier checked, if it is still the latest and was entered by someone else."""
    latest = ballot.latest
    if latest is None:
        raise Conflict(f"{ballot.contest.office_title}: nothing has been entered to verify.")
    if latest.revision != revision:
        raise Conflict(
            f"{ballot.contest.office_title}: a newer revision was entered meanwhile; verify that one."
        )
    if latest.entered_by_id == actor.id:
        raise Conflict(
            f"{ballot.contest.office_title}: you entered these figures; a second person must verify them."
        )
    return latest


async def _lock_pending(
    session: AsyncSession, ballot: ContestBallot, latest: PrecinctReturn, rekeys: int | None
) -> str | None:
    """Lock the latest revision's row (`latest`, from _pending_latest) for this transaction and check
    what the page was built on still holds: no newer revision, and the re-keys the form was rendered
    after (`rekeys`; a form sent again, or a re-key by someone else meanwhile, is refused). Returns its
    status (None: the row is gone)."""
    title = ballot.contest.office_title
    status = await session.scalar(
        select(PrecinctReturn.status).where(PrecinctReturn.id == latest.id).with_for_update()
    )
    newest = await session.scalar(
        select(func.max(PrecinctReturn.revision)).where(
            PrecinctReturn.election_id == latest.election_id,
            PrecinctReturn.precinct_id == latest.precinct_id,
            PrecinctReturn.contest_id == latest.contest_id,
            PrecinctReturn.method == latest.method,
        )
    )
    if newest != latest.revision:
        raise Conflict(
            f"{title}: a newer revision was entered meanwhile; verify that one. Nothing was changed."
        )
    done = await session.scalar(select(func.count()).where(ReturnRekey.return_id == latest.id))
    if done != len(ballot.rekeys) or (rekeys is not None and rekeys != done):
        raise Conflict(
            f"{title}: this re-key was already recorded, or someone re-keyed it meanwhile (the form was "
            "sent again?). Reload to key what is asked now. Nothing was changed."
        )
    return status


async def record_rekey(
    session: AsyncSession,
    *,
    actor: User,
    ballot: ContestBallot,
    revision: int,
    figures: Figures,
    fields: list[str],
    rekeys: int | None = None,
) -> ReturnRekey:
    """Keep a blind re-key that differed: which fields, and what was keyed. The verifier is told
    only which fields differ, never the entered figures."""
    latest = _pending_latest(ballot, actor, revision)
    if ballot.disputed:
        raise Conflict(f"{ballot.contest.office_title}: the re-keys differed twice; a manager decides now.")
    if await _lock_pending(session, ballot, latest, rekeys) != "entered":
        raise AlreadyVerified(f"{ballot.contest.office_title}: verified a moment ago. Nothing was changed.")
    rekey = ReturnRekey(
        return_id=latest.id,
        attempt=len(ballot.rekeys) + 1,
        keyed_by_id=actor.id,
        figures=figures.by_key(),
        fields=fields,
    )
    session.add(rekey)
    try:
        await session.flush()
    except IntegrityError as error:  # two verifiers re-keyed the same revision at once
        raise Conflict(
            f"{ballot.contest.office_title}: someone else re-keyed this return a moment ago. Reload."
        ) from error
    await record_event(
        session,
        actor=actor,
        action="rekey_differs",
        entity="precinct_return",
        entity_id=latest.id,
        before=None,
        after={
            "revision": latest.revision,
            "method": latest.method,
            "attempt": rekey.attempt,
            "fields": [ballot.field_label(key) for key in fields],
            "keyed": figures.by_key(),
        },
    )
    return rekey


class AlreadyVerified(Conflict):
    """Someone else verified this revision first (a double click, or two verifiers at once)."""


async def verify_return(
    session: AsyncSession, *, actor: User, ballot: ContestBallot, revision: int, rekeys: int | None = None
) -> PrecinctReturn:
    """Mark the latest revision verified by a second person (never the one who entered it). One
    state change, one audit event: a verification that finds it already done changes nothing,
    writes nothing, and says who did it."""
    latest = _pending_latest(ballot, actor, revision)
    if ballot.disputed:
        raise Conflict(f"{ballot.contest.office_title}: the re-keys differed twice; a manager decides now.")
    await _lock_pending(session, ballot, latest, rekeys)  # (an already verified one is told by whom, below)
    if not await _mark_verified(session, latest, actor):
        who, when = (
            await session.execute(
                select(User.display_name, PrecinctReturn.verified_at)
                .join(User, User.id == PrecinctReturn.verified_by_id)
                .where(PrecinctReturn.id == latest.id)
            )
        ).one()
        raise AlreadyVerified(
            f"{ballot.contest.office_title}: revision {latest.revision} was already verified by {who} "
            f"at {clock_time(when, seconds=True)}. Nothing was changed."
        )
    await _announce_verified(
        session,
        ballot,
        latest,
        actor=actor,
        action="verify_return",
        entity_id=latest.id,
        before={"status": "entered"},
        after={
            "status": "verified",
            "revision": latest.revision,
            "method": latest.method,
            **({"rekeys_differed": len(ballot.rekeys)} if ballot.rekeys else {}),
        },
    )
    return latest


class ResolveRefused(Conflict):
    pass


async def resolve_return(
    session: AsyncSession, *, actor: User, ballot: ContestBallot, revision: int, keep: str
) -> PrecinctReturn:
    """A manager settles a return whose blind re-keys differed twice, having seen both side by
    side: `keep` "entry" verifies the entered revision; "rekey" stores the re-keyed figures as a new
    revision, entered by the one who keyed them last and verified by the manager. The manager is
    neither the one who entered nor one who re-keyed (four eyes on either set of figures)."""
    latest = _pending_latest(ballot, actor, revision)
    title = ballot.contest.office_title
    if not ballot.disputed:
        raise ResolveRefused(f"{title}: the re-keys have not differed twice; it is verified the usual way.")
    if actor.id in {r.keyed_by_id for r in ballot.rekeys}:
        raise ResolveRefused(f"{title}: you re-keyed these figures; another manager must decide.")
    if keep not in ("entry", "rekey"):
        raise ResolveRefused("Choose which figures to keep: the entry or the re-key.")
    if await _lock_pending(session, ballot, latest, None) != "entered":  # (two managers at once: one decides)
        raise AlreadyVerified(
            f"{title}: revision {latest.revision} was decided a moment ago. Nothing was changed."
        )
    before = {**_figures_of(ballot, latest), "status": "entered", "rekeys_differed": len(ballot.rekeys)}
    if keep == "entry":
        if not await _mark_verified(session, latest, actor):
            raise AlreadyVerified(
                f"{title}: revision {latest.revision} was decided a moment ago. Nothing was changed."
            )
        stored = latest
    else:
        figures = Figures.from_keys(ballot.rekeys[-1].figures, ballot)
        check = check_figures(figures, ballot, 0, Check())
        if not check.ok:
            raise ResolveRefused(
                f"{title}: the re-keyed figures do not add up ({next(iter(check.errors.values()))}) and "
                "cannot be stored. Keep the entry, or enter the figures from the tally sheet again."
            )
        stored = await _add_revision(
            session,
            ballot,
            latest.election_id,
            latest.precinct_id,
            latest.revision + 1,
            figures,
            status="verified",
            entered_by_id=ballot.rekeys[-1].keyed_by_id,
            verified_by_id=actor.id,
            verified_at=datetime.now(UTC),
        )
    await _announce_verified(
        session,
        ballot,
        latest,
        actor=actor,
        action="resolve_return",
        entity_id=stored.id,
        before=before,
        after={
            "status": "verified",
            "kept": keep,
            "revision": stored.revision,
            "method": latest.method,
            **({"entered_by_id": stored.entered_by_id} if keep == "rekey" else {}),
            **(_plain(Figures.from_keys(ballot.rekeys[-1].figures, ballot)) if keep == "rekey" else {}),
        },
    )
    return stored


async def _mark_verified(session: AsyncSession, latest: PrecinctReturn, actor: User) -> bool:
    """The entered revision marked verified by `actor`; False when it is not entered any more (another
    verifier or manager decided it a moment ago)."""
    marked = await session.scalar(
        update(PrecinctReturn)
        .where(PrecinctReturn.id == latest.id, PrecinctReturn.status == "entered")
        .values(status="verified", verified_by_id=actor.id, verified_at=datetime.now(UTC))
        .returning(PrecinctReturn.id)
    )
    return marked is not None


async def _announce_verified(
    session: AsyncSession, ballot: ContestBallot, latest: PrecinctReturn, **event: Any
) -> None:
    """A return of the contest verified: the live panels are told, and the audit trail (`event`)."""
    await return_verified.send_async(
        session, election_id=latest.election_id, precinct_id=latest.precinct_id, contest_id=ballot.contest.id
    )
    await record_event(session, entity="precinct_return", **event)


async def verifiers(session: AsyncSession, return_ids: list[int]) -> list[str]:
    """Who verified these returns, with when (for telling a second verifier)."""
    rows = await session.execute(
        select(User.display_name, PrecinctReturn.verified_at)
        .join(User, User.id == PrecinctReturn.verified_by_id)
        .where(PrecinctReturn.id.in_(return_ids))
        .order_by(PrecinctReturn.verified_at)
    )
    return sorted({f"{name} at {clock_time(when, seconds=True)}" for name, when in rows})
