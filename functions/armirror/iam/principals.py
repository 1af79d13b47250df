"""Consumers as IAM members: the principal strings policies use, checked and normalised."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Member prefixes as written in any case -> as policies write them.
PRINCIPAL_PREFIXES = {
    "serviceaccount": "serviceAccount",
    "user": "user",
    "group": "group",
    "domain": "domain",
    "principal": "principal",
    "principalset": "principalSet",
}
#: Members that stand for everyone: bindings may name them, consumers may not be them.
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})+$")
_SERVICE_ACCOUNT_DOMAIN = "gserviceaccount.com"


class InvalidPrincipal(ValueError):
    """A consumer that is not an IAM principal armirror can check."""


def normalise_principal(text: str) -> str:
    """An IAM member string for a consumer, in the form policies use.

    ``serviceAccount:``, ``user:``, ``group:`` and ``domain:`` members are accepted with any
    case of the prefix; emails and domains are lower-cased.  A plain email of a service
    account (``…gserviceaccount.com``) becomes ``serviceAccount:EMAIL``; a plain email of
    anything else is refused, since it could be a user or a group.  ``principal://`` and
    ``principalSet://`` identifiers are kept as given.  ``allUsers`` and
    ``allAuthenticatedUsers`` are not consumers and are refused.
    """
    raw = text.strip()
    if not raw:
        raise InvalidPrincipal("empty principal")
    if raw in PUBLIC_MEMBERS or raw.lower() in {p.lower() for p in PUBLIC_MEMBERS}:
        raise InvalidPrincipal(f"{raw}: not a consumer; name the identity that pulls")
    kind, sep, value = raw.partition(":")
    if not sep:
        email = raw.lower()
        if _EMAIL.match(email) and email.endswith("." + _SERVICE_ACCOUNT_DOMAIN):
            return f"serviceAccount:{email}"
        if _EMAIL.match(email):
            raise InvalidPrincipal(
                f"{raw}: say whether this is user:{email} or group:{email}"
                " (only service account emails are accepted bare)"
            )
        raise InvalidPrincipal(
            f"{raw}: not a principal; use serviceAccount:, user:, group: or domain:"
        )
    prefix = PRINCIPAL_PREFIXES.get(kind.lower())
    if prefix is None:
        raise InvalidPrincipal(
            f"{raw}: unknown principal type {kind!r};"
            " use serviceAccount:, user:, group:, domain:, principal: or principalSet:"
        )
    if prefix in {"principal", "principalSet"}:
        if not value.startswith("//"):
            raise InvalidPrincipal(f"{raw}: expected {prefix}://…")
        return f"{prefix}:{value}"
    value = value.strip().lower()
    if prefix == "domain":
        if not _DOMAIN.match(value):
            raise InvalidPrincipal(f"{raw}: not a domain name")
        return f"domain:{value}"
    if not _EMAIL.match(value):
        raise InvalidPrincipal(f"{raw}: not an email address")
    if prefix == "serviceAccount" and not value.endswith(_SERVICE_ACCOUNT_DOMAIN):
        raise InvalidPrincipal(f"{raw}: service account emails end in {_SERVICE_ACCOUNT_DOMAIN}")
    return f"{prefix}:{value}"


def discover_consumers(
    project_numbers: Iterable[str | int] = (),
    gke_node_service_accounts: Iterable[str] = (),
) -> list[str]:
    """Consumers that pull on behalf of projects: Cloud Run service agents and GKE nodes.

    Each project number gives the Cloud Run service agent
    ``serviceAccount:service-NUMBER@serverless-robot-prod.iam.gserviceaccount.com`` (a
    number, because the agent is named by it; a project ID is refused).  Node service
    accounts are normalised with :func:`normalise_principal`.  Duplicates are dropped,
    order is kept.
    """
    found: list[str] = []
    for number in project_numbers:
        text = str(number).strip()
        if not text.isdigit():
            raise InvalidPrincipal(
                f"{number!r}: the Cloud Run service agent is named by the project *number*"
                " (gcloud projects describe PROJECT --format='value(projectNumber)')"
            )
        found.append(
            f"serviceAccount:service-{int(text)}@serverless-robot-prod.iam.gserviceaccount.com"
        )
    found.extend(normalise_principal(sa) for sa in gke_node_service_accounts)
    return list(dict.fromkeys(found))
