"""The authority as a service object: keys and DID, issuance (DCP credential issuance protocol), status
lists, revocation, directory and trust list. The FastAPI app and the CLI are thin layers over this class.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from identity.authority.catalog import IssuanceRefused, build_credential, credential_object, validity
from identity.authority.errors import AuthorityError, UnknownCredential
from identity.authority.settings import AuthoritySettings, CredentialDefinition
from identity.authority.storage import AuthorityStore, CredentialRecord, ParticipantRecord, RequestRecord
from identity.credentials.jwt import issue_vc_jwt
from identity.credentials.status_list import StatusList, build_status_list_credential
from identity.dcp.did_keys import resolve_document
from identity.dcp.errors import NotAuthorized, RemoteError
from identity.dcp.jti_store import JtiStore
from identity.dcp.schemas import DCP_CONTEXT, validate_message
from identity.dcp.tokens import create_si_token, verify_si_token
from identity.dids.document import build_did_document, find_service
from identity.dids.resolver import Resolver
from identity.keys import KeyPair
from identity.keystore import Keystore
from identity.tls import client_verify

log = logging.getLogger("pactum.identity.authority")

STATUS_KINDS = {"vc20": "BitstringStatusList", "vc11": "StatusList2021"}
DELIVERY_BACKOFF = (0.2, 1.0, 3.0)


def open_or_create_keystore(settings: AuthoritySettings, *, create: bool = True,
                            scrypt_params: dict[str, int] | None = None) -> Keystore:
    """The authority keystore; created with one key on first start when ``create``."""
    if not settings.passphrase:
        raise AuthorityError("the authority keystore needs a passphrase (set PACTUM_AUTHORITY_PASSPHRASE)",
                             code="passphrase_missing")
    if settings.keystore.exists():
        return Keystore.open(settings.keystore, settings.passphrase)
    if not create:
        raise AuthorityError(f"authority keystore {settings.keystore} does not exist", code="keystore_missing")
    keystore = Keystore.create(settings.keystore, settings.passphrase, scrypt_params=scrypt_params)
    keystore.rotate(settings.key_alg)
    keystore.save()
    return keystore


class Authority:
    """One data space authority; ``http_client`` and ``resolver`` are used for DID resolution and delivery."""

    def __init__(self, settings: AuthoritySettings, *, keystore: Keystore | None = None,
                 store: AuthorityStore | None = None, resolver: Resolver | None = None,
                 http_client: httpx.AsyncClient | None = None, jti_store: JtiStore | None = None) -> None:
        self.settings = settings
        self.keystore = keystore or open_or_create_keystore(settings)
        self.store = store or AuthorityStore(settings.database_url)
        # plain-http did:web only for a loopback authority that itself serves plain http (demos, tests)
        allow = ["127.0.0.1", "localhost", "::1"] if settings.allow_http and not settings.tls.serves_https else None
        self.http_allowed = frozenset(allow or ())
        self.http_client = http_client
        self.verify = client_verify(settings.tls.ca_file)  # every outgoing https call trusts the data space's CA
        self.resolver = resolver or Resolver(allow_http_hosts=allow, http_client=http_client, verify=self.verify)
        self.jti_store = jti_store or JtiStore(self.store.engine)
        self._tasks: set[asyncio.Task[None]] = set()
        for seed in settings.participants:
            self.register(ParticipantRecord(seed.did, seed.name, seed.bpn, seed.jurisdiction.upper(),
                                            tuple(seed.credentials)))

    # ---- identity -------------------------------------------------------------------------------------------
    @property
    def did(self) -> str:
        return self.settings.did

    @property
    def key(self) -> KeyPair:
        return self.keystore.current()[1]

    @property
    def kid(self) -> str:
        return f"{self.did}#{self.keystore.current()[0]}"

    def did_document(self) -> dict[str, Any]:
        """The authority's did:web document, announcing its issuer service."""
        services = [{"id": "#issuer-service", "type": "IssuerService", "serviceEndpoint": self.settings.base_url}]
        return build_did_document(self.did, self.keystore.keys(), services)

    def metadata(self) -> dict[str, Any]:
        """DCP ``IssuerMetadata``: which credentials can be requested."""
        return validate_message({
            "@context": [DCP_CONTEXT], "type": "IssuerMetadata", "issuer": self.did,
            "credentialsSupported": [
                credential_object(d, self.settings.profile, self.settings.base_url) for d in self.settings.credentials
            ],
        }, "IssuerMetadata")

    # ---- directory and trust list ---------------------------------------------------------------------------
    def register(self, participant: ParticipantRecord) -> ParticipantRecord:
        """Add or update a participant in the directory."""
        if not participant.did.startswith("did:"):
            raise AuthorityError(f"{participant.did!r} is not a DID", code="invalid_did")
        for cid in participant.allowed_credentials:
            if self.settings.definition(cid) is None:
                raise AuthorityError(f"unknown credential definition {cid!r}", code="unknown_definition")
        return self.store.upsert_participant(participant)

    def directory(self) -> list[dict[str, Any]]:
        """The public participant directory."""
        return [p.public() for p in self.store.participants()]

    def trust_list(self) -> dict[str, list[str]]:
        """Issuer DIDs per credential type, the shape ``identity.credentials.trust.TrustList`` loads."""
        mapping: dict[str, set[str]] = {}
        for definition in self.settings.credentials:
            mapping.setdefault(definition.credential_type, set()).add(self.did)
        for ctype, issuers in self.settings.trusted_issuers.items():
            mapping.setdefault(ctype, set()).update(issuers)
        return {ctype: sorted(issuers) for ctype, issuers in sorted(mapping.items())}

    # ---- status lists ---------------------------------------------------------------------------------------
    def status_list_id(self, profile: str) -> str:
        return f"{profile}-revocation"

    def status_list_url(self, profile: str) -> str:
        return f"{self.settings.base_url}/status/{self.status_list_id(profile)}"

    def status_list_credential(self, list_id: str) -> str:
        """The signed status list credential (JWT) with every revoked index of ``list_id`` set."""
        profile = next((p for p in STATUS_KINDS if self.status_list_id(p) == list_id), None)
        if profile is None:
            raise AuthorityError(f"no status list {list_id!r}", code="unknown_status_list", status=404)
        bits = StatusList.create(self.settings.status_list_length)
        for index in self.store.revoked_indexes(list_id):
            bits.set(index)
        credential = build_status_list_credential(self.did, self.status_list_url(profile), bits,
                                                  kind=STATUS_KINDS[profile])
        return issue_vc_jwt(credential, self.key, self.kid, profile)

    def revoke(self, credential_id: str) -> CredentialRecord:
        """Set the revocation bit of an issued credential."""
        record = self.store.revoke(credential_id)
        log.info("revoked %s (%s of %s)", credential_id, record.credential_type, record.holder_did)
        return record

    # ---- issuing --------------------------------------------------------------------------------------------
    def _definition(self, definition_id: str) -> CredentialDefinition:
        definition = self.settings.definition(definition_id)
        if definition is None:
            by_type = [d for d in self.settings.credentials if d.credential_type == definition_id]
            if len(by_type) != 1:
                raise UnknownCredential(f"this authority offers no credential {definition_id!r}")
            definition = by_type[0]
        return definition

    def issue(self, holder_did: str, definition_id: str, *, request_pid: str | None = None) -> CredentialRecord:
        """Issue one credential to a registered participant and record it (no delivery)."""
        participant = self.store.participant(holder_did)
        definition = self._definition(definition_id)
        if participant.allowed_credentials and definition.id not in participant.allowed_credentials:
            raise IssuanceRefused(f"{holder_did} may not receive {definition.id}")
        profile = definition.profile or self.settings.profile
        now = datetime.now(UTC).replace(microsecond=0)
        until = validity(definition, self.settings.validity_days, now)
        list_id = self.status_list_id(profile)
        for _ in range(5):
            index = self.store.allocate_slot(list_id, self.settings.status_list_length)
            credential_id = f"urn:uuid:{uuid.uuid4()}"
            credential = build_credential(
                credential_id=credential_id, issuer=self.did, definition=definition, participant=participant,
                authority_name=self.settings.name, profile=profile, issued_at=now, valid_until=until,
                status_list_url=self.status_list_url(profile), status_index=index,
            )
            token = issue_vc_jwt(credential, self.key, self.kid, profile)
            record = CredentialRecord(credential_id, holder_did, definition.credential_type, profile, list_id, index,
                                      now, until, False, None, request_pid, token)
            try:
                self.store.add_credential(record)
            except AuthorityError as exc:
                if exc.code == "slot_conflict":
                    continue  # a concurrent issuance took the slot: draw again
                raise
            log.info("issued %s %s to %s", definition.credential_type, credential_id, holder_did)
            return record
        raise AuthorityError("could not allocate a status list slot", code="status_list_busy", status=503)

    # ---- DCP issuance protocol --------------------------------------------------------------------------------
    async def receive_request(self, si_token: str, message: Any) -> RequestRecord:
        """Validate a CredentialRequestMessage from an authenticated holder and record it as RECEIVED."""
        caller = await verify_si_token(si_token, audience=self.did, resolver=self.resolver, jti_store=self.jti_store)
        validate_message(message, "CredentialRequestMessage")
        participant = self.store.participant(caller.did)  # UnknownParticipant (403) for strangers
        ids = [c["id"] for c in message["credentials"]]
        if not ids:
            raise AuthorityError("a CredentialRequestMessage must ask for at least one credential",
                                 code="no_credentials_requested")
        for cid in ids:
            self._definition(cid)
        if not caller.access_token:
            raise NotAuthorized("the SI token carries no access token granting write access to the holder's "
                                "credential service", code="access_token_missing")
        record = self.store.add_request(message["holderPid"], participant.did, ids, caller.access_token)
        log.info("request %s from %s for %s", record.issuer_pid, caller.did, ids)
        return record

    async def request_status(self, si_token: str, issuer_pid: str) -> dict[str, Any]:
        """``CredentialStatus`` of a request, only for the holder who made it."""
        caller = await verify_si_token(si_token, audience=self.did, resolver=self.resolver, jti_store=self.jti_store)
        record = self.store.request(issuer_pid)
        if record.holder_did != caller.did:
            raise NotAuthorized("only the requesting holder may read a request's status", code="forbidden")
        return validate_message({"@context": [DCP_CONTEXT], "type": "CredentialStatus", "issuerPid": record.issuer_pid,
                                 "holderPid": record.holder_pid, "status": record.status}, "CredentialStatus")

    def schedule(self, issuer_pid: str) -> None:
        """Process a request in the background of the running event loop."""
        task = asyncio.get_running_loop().create_task(self.process(issuer_pid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background processing (shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def reject(self, issuer_pid: str, reason: str) -> None:
        """Refuse a pending request (manual approval) and tell the holder's credential service."""
        request = self.store.request(issuer_pid)
        if request.status != "RECEIVED":
            raise AuthorityError(f"request {issuer_pid} is already {request.status}", code="request_closed",
                                 status=409)
        self.store.set_request_status(issuer_pid, "REJECTED", rejection_reason=reason)
        await self._deliver_quietly(request, [], rejection=reason)

    def rotate_key(self) -> str:
        """Sign with a new key from now on; the old one stays in the DID document for issued credentials."""
        key_id = self.keystore.rotate(self.settings.key_alg)
        self.keystore.save()
        log.info("authority key rotated: now signing with %s#%s", self.did, key_id)
        return f"{self.did}#{key_id}"

    async def process(self, issuer_pid: str) -> None:
        """Approve (auto-approve policy) and issue every requested credential, then deliver them."""
        request = self.store.request(issuer_pid)
        if request.status != "RECEIVED":
            return
        records: list[CredentialRecord] = []
        try:
            for cid in request.credential_ids:
                records.append(self.issue(request.holder_did, cid, request_pid=issuer_pid))
        except AuthorityError as exc:
            for record in records:  # all or nothing: a partly issued request is rejected as a whole
                self.store.revoke(record.id)
            self.store.set_request_status(issuer_pid, "REJECTED", rejection_reason=str(exc))
            await self._deliver_quietly(request, [], rejection=str(exc))
            return
        if await self._deliver_quietly(request, records):
            self.store.set_request_status(issuer_pid, "ISSUED")

    async def _deliver_quietly(self, request: RequestRecord, records: list[CredentialRecord],
                               rejection: str | None = None) -> bool:
        last = ""
        for delay in (0.0, *DELIVERY_BACKOFF):
            if delay:
                await asyncio.sleep(delay)
            try:
                await self.deliver(request, records, rejection=rejection)
                return True
            except (RemoteError, AuthorityError) as exc:
                last = str(exc)
                log.warning("delivery of %s to %s failed: %s", request.issuer_pid, request.holder_did, exc)
                if exc.code == "delivery_refused":
                    break  # the holder said no (4xx): retrying will not change its mind
            except Exception as exc:  # identity errors from DID resolution and the like
                last = f"{type(exc).__name__}: {exc}"
                log.warning("delivery of %s to %s failed: %s", request.issuer_pid, request.holder_did, last)
        if rejection is None:
            self.store.set_request_status(request.issuer_pid, "RECEIVED", delivery_error=last)
        return False

    async def deliver(self, request: RequestRecord, records: list[CredentialRecord], *,
                      rejection: str | None = None) -> None:
        """POST a CredentialMessage to the holder's credential service, authenticated with my SI token."""
        document = await resolve_document(self.resolver, request.holder_did)
        service = find_service(document, "CredentialService")
        endpoint = service.get("serviceEndpoint") if service else None
        if not isinstance(endpoint, str):
            raise RemoteError(f"{request.holder_did} publishes no CredentialService", code="no_credential_service")
        parts = urlsplit(endpoint)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in self.http_allowed):
            raise RemoteError(f"refusing to deliver over {parts.scheme}: {endpoint}", code="insecure_endpoint")
        message: dict[str, Any] = {
            "@context": [DCP_CONTEXT], "type": "CredentialMessage", "issuerPid": request.issuer_pid,
            "holderPid": request.holder_pid, "status": "REJECTED" if rejection else "ISSUED",
        }
        if rejection:
            message["rejectionReason"] = rejection
        else:
            message["credentials"] = [{"credentialType": r.credential_type, "payload": r.token, "format": "jwt"}
                                      for r in records]
        validate_message(message, "CredentialMessage")
        token = create_si_token(self.key, did=self.did, kid=self.kid, audience=request.holder_did,
                                token=request.access_token)
        url = endpoint.rstrip("/") + "/credentials"
        client = self.http_client or httpx.AsyncClient(timeout=10, verify=self.verify)
        try:
            response = await client.post(url, json=message, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {url}: {type(exc).__name__}") from None
        finally:
            if self.http_client is None:
                await client.aclose()
        if response.status_code // 100 == 4:
            raise RemoteError(f"{url} refused the credentials: {response.status_code} {response.text[:200]}",
                              code="delivery_refused")
        if response.status_code // 100 != 2:
            raise RemoteError(f"{url} answered {response.status_code}: {response.text[:200]}")

    async def aclose(self) -> None:
        """Finish background work and release resources."""
        await self.drain()
        self.store.close()
