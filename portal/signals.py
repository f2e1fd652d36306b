"""Domain signals (blinker, as Flask uses). Receivers are async and run inside the sender's
transaction, so what they write (the audit event) commits or rolls back with the change.

    await election_status_changed.send_async(session, election=..., before="draft", actor=user)
"""

from blinker import Namespace

domain = Namespace()

#: An election moved along draft -> open -> closed -> certified.
election_status_changed = domain.signal("election-status-changed")

#: A voter was issued a ballot (feeds live turnout).
check_in_recorded = domain.signal("check-in-recorded")
