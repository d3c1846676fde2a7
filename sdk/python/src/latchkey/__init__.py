"""Latchkey: the Python SDK of the Latchkey secrets daemon.

    from latchkey import Latchkey
    lk = Latchkey()                      # LATCHKEY_ADDR / LATCHKEY_TOKEN
    secret = lk.get_secret("/production/openai/api-key", reason="nightly eval")
    secret.value                         # repr(secret) and str(secret) are masked
"""

from ._async import AsyncLatchkey
from ._core import ENDPOINTS, Endpoint
from ._errors import (
    ApiError,
    ConnectionFailed,
    LatchkeyError,
    LeaseDenied,
    LeaseError,
    LeaseExpired,
    LeaseRevoked,
    WaitTimeout,
)
from ._models import (
    Approval,
    ApprovalSummary,
    Entries,
    Lease,
    NewAgent,
    ProxyResponse,
    ScopedToken,
    Secret,
    SecretInfo,
    SecretPage,
    SecretVersion,
    Service,
    Vote,
    VoteResult,
)
from ._sync import Latchkey

__version__ = "0.1.0"

__all__ = [
    "Latchkey",
    "AsyncLatchkey",
    "ENDPOINTS",
    "Endpoint",
    "LatchkeyError",
    "ConnectionFailed",
    "ApiError",
    "LeaseError",
    "LeaseDenied",
    "LeaseExpired",
    "LeaseRevoked",
    "WaitTimeout",
    "Approval",
    "ApprovalSummary",
    "Entries",
    "Lease",
    "NewAgent",
    "ProxyResponse",
    "ScopedToken",
    "Secret",
    "SecretInfo",
    "SecretPage",
    "SecretVersion",
    "Service",
    "Vote",
    "VoteResult",
]
