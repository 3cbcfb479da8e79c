"""The consent API for the administrator and for subscribers on their own device."""

from __future__ import annotations

import httpx

from .conftest import App, Operator

IV = "dpv:IdentityVerification"


async def test_admin_grants_lists_revokes_and_audits(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    admin = ("admin", operator.config.admin_secret)
    number = operator.number("approves")
    response = await http.post("/consents", auth=admin, json={
        "clientId": app.client_id, "purpose": IV, "scopes": ["number-verification:verify"],
        "phoneNumber": number})
    assert response.status_code == 201, response.text
    consent = response.json()
    assert consent["status"] == "active" and consent["phoneNumber"] == number
    listing = await http.get("/consents", params={"phoneNumber": number},
                             headers={"Authorization": f"Bearer {operator.config.admin_secret}"})
    assert [c["id"] for c in listing.json()] == [consent["id"]]
    revoked = await http.delete(f"/consents/{consent['id']}", auth=admin)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    audit = await http.get(f"/consents/{consent['id']}/audit", auth=admin)
    assert [(e["action"], e["actor"]) for e in audit.json()] == [
        ("granted", "admin"), ("revoked", "admin")]
    everything = await http.get("/consents/audit", auth=admin)
    assert len(everything.json()) == 2


async def test_subscriber_manages_their_own_consents_from_their_device(
    app: App, operator: Operator
) -> None:
    mine, theirs = operator.number("approves"), operator.number("slow-consent")
    own = operator.server.consents.grant(mine, app.client_id, IV, (), actor="admin")
    other = operator.server.consents.grant(theirs, app.client_id, IV, (), actor="admin")
    async with operator.http(operator.ip_of("approves")) as device:
        listing = await device.get("/consents")
        assert [c["id"] for c in listing.json()] == [own.id]
        assert (await device.delete(f"/consents/{other.id}")).status_code == 404
        assert (await device.get(f"/consents/{other.id}/audit")).status_code == 404
        response = await device.delete(f"/consents/{own.id}")
        assert response.status_code == 200 and response.json()["status"] == "revoked"
        granted = await device.post("/consents", json={
            "clientId": app.client_id, "purpose": IV, "scopes": ["number-verification:verify"]})
        assert granted.status_code == 201 and granted.json()["phoneNumber"] == mine
        for_someone_else = await device.post("/consents", json={
            "clientId": app.client_id, "purpose": IV, "phoneNumber": theirs})
        assert for_someone_else.status_code == 400
        audit = (await device.get("/consents/audit")).json()
        assert {e["phoneNumber"] for e in audit} == {mine}
        assert [e["actor"] for e in audit][-1] == f"subscriber:{mine}"
    assert operator.server.consents.get(other.id).active(operator.clock())  # type: ignore[union-attr]


async def test_unauthenticated_and_bad_requests(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    assert (await http.get("/consents")).status_code == 401  # not a device, not the admin
    assert (await http.get("/consents", auth=("admin", "wrong-secret"))).status_code == 401
    admin = ("admin", operator.config.admin_secret)
    bodies: list[object] = [
                 {"clientId": app.client_id, "purpose": IV},  # no phoneNumber
                 {"clientId": "ghost", "purpose": IV, "phoneNumber": operator.number("approves")},
                 {"clientId": app.client_id, "purpose": "dpv:Nope",
                  "phoneNumber": operator.number("approves")},
                 {"unexpected": 1}, []]
    for body in bodies:
        response = await http.post("/consents", auth=admin, json=body)
        assert response.status_code == 400, body
    response = await http.post("/consents", auth=admin, content=b"{not json",
                               headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert (await http.delete("/consents/cns-nope", auth=admin)).status_code == 404


async def test_revoking_through_the_api_denies_the_pending_requests_it_covered(
    http: httpx.AsyncClient, app: App, operator: Operator
) -> None:
    """``DELETE /consents/{id}`` withdraws as the portal does: a CIBA request for that
    purpose, approved but not collected, is denied rather than granting the consent anew."""
    admin = ("admin", operator.config.admin_secret)
    number = operator.number("approves")
    consent = operator.server.consents.grant(number, app.client_id, IV, (), actor="admin")
    started = await http.post("/bc-authorize", data={
        **app.auth("/bc-authorize"), "login_hint": f"tel:{number}",
        "scope": f"openid number-verification:verify {IV}"})
    assert started.status_code == 200, started.text
    assert (await http.delete(f"/consents/{consent.id}", auth=admin)).status_code == 200
    polled = await http.post("/token", data={
        **app.auth(), "grant_type": "urn:openid:params:grant-type:ciba",
        "auth_req_id": started.json()["auth_req_id"]})
    assert polled.status_code == 400 and polled.json()["error"] == "access_denied"
    assert [c.revoked_at is not None for c in operator.server.consents.for_subscriber(number)] \
        == [True]
