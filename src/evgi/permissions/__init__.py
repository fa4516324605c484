"""Permissioning subsystem: DBCs, Access Session Setup (unlock), Allow Lists with ACs, RCs, Block
Lists, Groups with GPCs and roles. Certificates are signed documents anchored on the ledger, and
access is decided from the ledger's state, so every host sees a revocation at once.
"""

from evgi.ledger.permissions import Role
from evgi.permissions.authorization import OWNER, Grant, authorize, decide
from evgi.permissions.certificates import (
    AC_TYPE,
    DBC_TYPE,
    GPC_TYPE,
    RC_TYPE,
    CertificateInfo,
    check_certificate,
    host_uri,
    issue_access_certificate,
    issue_bootstrap_certificate,
    issue_group_change,
    issue_revocation_certificate,
)
from evgi.permissions.refusal import STATUS, Reason, Refusal, problems
from evgi.permissions.session import SessionClaims, SessionKeys
from evgi.permissions.signed_request import (
    SKEW,
    WINDOW,
    DidText,
    RequestGate,
    SignedRequest,
    sign_request,
)
from evgi.permissions.unlock import (
    RefusalReason,
    Session,
    SessionScope,
    UnlockRequest,
    UnlockResponse,
    sign_unlock_request,
)

__all__ = [
    "AC_TYPE",
    "DBC_TYPE",
    "GPC_TYPE",
    "OWNER",
    "RC_TYPE",
    "SKEW",
    "STATUS",
    "WINDOW",
    "CertificateInfo",
    "DidText",
    "Grant",
    "Reason",
    "Refusal",
    "RefusalReason",
    "RequestGate",
    "Role",
    "Session",
    "SessionClaims",
    "SessionKeys",
    "SessionScope",
    "SignedRequest",
    "UnlockRequest",
    "UnlockResponse",
    "authorize",
    "check_certificate",
    "decide",
    "host_uri",
    "issue_access_certificate",
    "issue_bootstrap_certificate",
    "issue_group_change",
    "issue_revocation_certificate",
    "problems",
    "sign_request",
    "sign_unlock_request",
]
