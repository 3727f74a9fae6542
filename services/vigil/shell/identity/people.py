"""The people side of identity, assembled from the settings: accounts, sessions, enrolment codes,
stream tickets and the login throttles. One per process that serves HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vigil.settings import VigilSettings
from vigil.shell.identity.accounts import Accounts, Lane
from vigil.shell.identity.enrolment import EnrolmentCodes
from vigil.shell.identity.sessions import Sessions, StreamTickets
from vigil.shell.identity.throttle import Throttle


@dataclass
class People:
    settings: VigilSettings
    accounts: Accounts
    sessions: Sessions
    codes: EnrolmentCodes
    tickets: StreamTickets
    by_username: Throttle  # failed logins per username
    by_address: Throttle  # failed logins and enrolment codes per client address

    def __post_init__(self) -> None:
        self.accounts.on_sessions_ended = self.sessions.forget  # disable / new password: at once here too

    @classmethod
    def from_settings(cls, settings: VigilSettings, engine: Engine, lane: Lane | None = None) -> "People":
        return cls(
            settings,
            Accounts(engine, lane),
            Sessions(engine, lane, max_age_s=settings.session_max_age_s, idle_s=settings.session_idle_s),
            EnrolmentCodes(engine, lane, ttl_s=settings.enrolment_code_ttl_s),
            StreamTickets(ttl_s=settings.stream_ticket_ttl_s),
            Throttle(settings.login_max_failures, settings.login_window_s),
            Throttle(settings.login_max_failures_per_address, settings.login_window_s),
        )
