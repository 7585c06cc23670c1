"""ODRL profiles as plug-ins: one module per profile, registered in ``registry``.

Built in: ``xborder`` (cross-border transfer, https://w3id.org/pactum/xborder/v1#) and ``catenax``
(Catena-X usage policies, https://w3id.org/catenax/policy/).
"""

from policies.profiles import registry
from policies.profiles.registry import Profile, UnknownTermError

__all__ = ["Profile", "UnknownTermError", "registry"]
