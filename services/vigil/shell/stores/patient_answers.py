"""The patient's side of the patient page: their answers to alerts ("I'm OK", "I need help") and
which messages they read, from the patient app's tables (`patient_replies`, `message_reads`).

Those tables belong to the patient app (shell/stores/patient_tables.py); every store Vigil makes
has them. This module reads them by name, only where the store has them, so a store an older
version made and not yet upgraded answers empty (and says why) rather than fail.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

NOT_YET = "this store has no patient app tables yet (made by an older Vigil): start Vigil once to upgrade it"
FROM_APP = "the patient app: answers to alerts and messages opened"


def has_patient_app(engine: Engine) -> bool:
    found = set(inspect(engine).get_table_names())
    return {"patient_replies", "message_reads"} <= found


def patient_answers(engine: Engine, patient_id: str, since: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """(replies, read receipts, where they come from), newest first."""
    if not has_patient_app(engine):
        return [], [], NOT_YET
    with engine.connect() as conn:
        replies = conn.execute(text("SELECT incident_id, alert_id, answer, t FROM patient_replies "
                                    "WHERE patient_id = :p AND t >= :since ORDER BY t DESC LIMIT 200"),
                               {"p": patient_id, "since": since}).mappings().all()
        reads = conn.execute(text("SELECT r.message_key, r.read_t, o.subject, o.body FROM message_reads r "
                                  "LEFT JOIN outbox o ON o.key = r.message_key "
                                  "WHERE r.patient_id = :p AND r.read_t >= :since ORDER BY r.read_t DESC LIMIT 200"),
                             {"p": patient_id, "since": since}).mappings().all()
    return [dict(r) for r in replies], [dict(r) for r in reads], FROM_APP
