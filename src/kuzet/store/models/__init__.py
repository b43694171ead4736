"""ORM models. Each capability keeps its tables in its own module; all share one ``Base``."""

from kuzet.store.models import bodycams as _bodycams  # noqa: F401,E402
from kuzet.store.models import cloud as _cloud  # noqa: F401,E402
from kuzet.store.models import cluster as _cluster  # noqa: F401,E402
from kuzet.store.models import crime as _crime  # noqa: F401,E402
from kuzet.store.models import onboarding as _onboarding  # noqa: F401,E402
from kuzet.store.models import operations as _operations  # noqa: F401,E402

# Capability modules register their tables on import.
from kuzet.store.models import recording as _recording  # noqa: F401,E402
from kuzet.store.models import safeyard as _safeyard  # noqa: F401,E402
from kuzet.store.models import watching as _watching  # noqa: F401,E402
from kuzet.store.models.base import Base
from kuzet.store.models.core import (
    ApiToken,
    AuditRecord,
    Camera,
    Grant,
    LoginAttempt,
    Organisation,
    Place,
    User,
)

__all__ = [
    "ApiToken", "AuditRecord", "Base", "Camera", "Grant", "LoginAttempt", "Organisation", "Place", "User",
]
