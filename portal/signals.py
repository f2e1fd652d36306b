"""Domain signals (blinker, as Flask uses). The data layer sends them; it never knows who listens.

The sender is the session of the write, so an (async) receiver works inside the sender's
transaction: what it writes or sends (an audit event, a live panel's NOTIFY) commits or rolls back
with the change.

    await election_status_changed.send_async(session, election=..., before="draft", actor=user)

The receivers are connected once, by create_app(): `portal/audit/receivers.py` (the audit trail)
and `portal/live/receivers.py` (the live panels).
"""

from blinker import Namespace

domain = Namespace()

#: An election moved along draft -> open -> closed -> certified. (election, before, actor)
election_status_changed = domain.signal("election-status-changed")

#: The voting methods an election counts changed: every result is split anew. (election_id)
election_methods_changed = domain.signal("election-methods-changed")

#: A voter was issued a ballot. (election_id, precinct_id)
check_in_recorded = domain.signal("check-in-recorded")

#: A check-in was voided: the voter may be checked in again. (election_id, precinct_id)
check_in_voided = domain.signal("check-in-voided")

#: Provisional ballots were accepted or rejected; sent only when at least one was. (election_id)
provisionals_decided = domain.signal("provisionals-decided")

#: Figures of a precinct return were stored as a new revision, entered. (election_id, precinct_id,
#: contest_id)
return_saved = domain.signal("return-saved")

#: A precinct return was verified: by a second person, or by a manager's decision between differing
#: re-keys. (election_id, precinct_id, contest_id)
return_verified = domain.signal("return-verified")

#: An incident was reported or resolved. (election_id)
incident_changed = domain.signal("incident-changed")
