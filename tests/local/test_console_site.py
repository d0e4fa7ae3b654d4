"""The runner serves the dispatcher's console (console/ at /console/, with CloudFront's security headers) and a
dev sign-in whose token the ops routes take as that person, the way ConsoleApi's Cognito authorizer would."""

from __future__ import annotations

import http.client
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from localdev.console_site import CONTENT_SECURITY_POLICY
from localdev.template import TEMPLATE
from tests.local.conftest import OPS_TOKEN

if TYPE_CHECKING:
    from tests.local.conftest import LocalRunner, Reply

CONSOLE = TEMPLATE.parent / "console"
LOCAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def assert_secured(reply: Reply) -> None:
    assert reply.headers["Content-Security-Policy"] == LOCAL_CSP
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["Strict-Transport-Security"].startswith("max-age=")


def raw_get(local: LocalRunner, path: str) -> http.client.HTTPResponse:
    """A GET that does not follow redirects."""
    address = urlsplit(local.base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def booking(local: LocalRunner) -> str:
    start = local.now() + timedelta(days=1)
    reply = local.post(
        "/appointments",
        {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
            "timezone": "America/New_York",
            "type": "remote_call_in",
            "customer": {"name": "Dana Reyes", "email": "dana@example.com"},
        },
        headers={"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"},
    )
    assert reply.status == 201, reply.body
    appointment_id: str = reply.json()["id"]
    return appointment_id


def sign_in(local: LocalRunner, email: str) -> dict[str, Any]:
    reply = local.post("/_local/console/sign-in", {"email": email})
    assert reply.status == 200, reply.body
    answer: dict[str, Any] = reply.json()
    return answer


def test_the_csp_is_cloudfronts_with_the_api_on_the_same_origin() -> None:
    template = TEMPLATE.read_text()
    assert CONTENT_SECURITY_POLICY == LOCAL_CSP
    aws = (
        "connect-src 'self' https://*.execute-api.${AWS::Region}.amazonaws.com "
        "https://${AuthDomain}.auth.${AWS::Region}.amazoncognito.com"
    )
    assert LOCAL_CSP.replace("connect-src 'self'", aws) in template


def test_the_console_index_is_served_at_console_with_the_security_headers(product: LocalRunner) -> None:
    # When a browser opens /console/
    reply = product.get("/console/")

    # Then it gets index.html as HTML, with the CSP CloudFront sets in AWS (the API on the same origin)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.body == (CONSOLE / "index.html").read_bytes()
    assert_secured(reply)


def test_every_asset_is_served_with_its_content_type_and_the_headers(product: LocalRunner) -> None:
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    files = [path for path in CONSOLE.rglob("*") if path.is_file() and path.suffix in types]
    assert files, "console/ holds the console's files"
    for path in files:
        reply = product.get("/console/" + path.relative_to(CONSOLE).as_posix())
        assert reply.status == 200, path
        assert reply.headers["Content-Type"].split(";")[0] == types[path.suffix], path
        assert reply.body == path.read_bytes()
        assert_secured(reply)


def test_console_without_its_slash_is_redirected_and_unknown_files_are_404(product: LocalRunner) -> None:
    redirected = raw_get(product, "/console")
    assert (redirected.status, redirected.getheader("Location")) == (301, "/console/")
    assert product.get("/console/nothing-here.js").status == 404
    assert raw_get(product, "/console/%2e%2e/template.yaml").status == 404
    assert product.post("/console/index.html", {}).status == 405


def test_config_json_points_the_console_at_the_same_origin_and_the_dev_sign_in(product: LocalRunner) -> None:
    reply = product.get("/console/config.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json() == {"api": "", "signIn": "local"}
    assert_secured(reply)


def test_a_signed_in_dispatcher_is_the_actor_in_history(product: LocalRunner) -> None:
    # Given an appointment, and a dispatcher signed in to the console
    appointment_id = booking(product)
    signed_in = sign_in(product, "  dana.dispatch@msp.example ")
    assert signed_in["email"] == "dana.dispatch@msp.example"
    console = {"Authorization": f"Bearer {signed_in['token']}", "Content-Type": "application/json"}

    # When they add a note through the ops routes with their token
    noted = product.post(f"/appointments/{appointment_id}/notes", {"text": "Called from the console."}, headers=console)

    # Then the history names them, not the dev IAM user
    assert noted.status == 200, noted.body
    detail = product.get(f"/appointments/{appointment_id}", headers=console).json()
    assert detail["history"][-1]["actor"] == {"kind": "ops", "id": "dana.dispatch@msp.example"}
    # And the bare token works too (API Gateway's Cognito authorizer takes the ID token as it is)
    assert product.get("/attention", headers={"Authorization": signed_in["token"]}).status == 200


def test_a_wrong_token_is_401_and_the_ops_token_is_still_the_dev_iam_user(product: LocalRunner) -> None:
    appointment_id = booking(product)
    sign_in(product, "dana.dispatch@msp.example")
    wrong = product.get("/attention", headers={"Authorization": "Bearer console-not-a-token"})
    assert wrong.status == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert product.get("/attention").status == 401
    noted = product.post(
        f"/appointments/{appointment_id}/notes",
        {"text": "x"},
        headers={"Authorization": f"Bearer {OPS_TOKEN}", "Content-Type": "application/json"},
    )
    assert noted.status == 200
    detail = product.get(f"/appointments/{appointment_id}", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json()
    assert detail["history"][-1]["actor"]["id"].startswith("arn:aws:iam::")


def test_a_sign_in_needs_an_email(product: LocalRunner) -> None:
    assert product.post("/_local/console/sign-in", {"email": "not an email"}).status == 422
    assert product.post("/_local/console/sign-in", body=b"{").status == 400
    assert product.get("/_local/console/sign-in").status == 405


def test_a_reset_keeps_the_sign_ins(product: LocalRunner) -> None:
    token = sign_in(product, "dana.dispatch@msp.example")["token"]
    assert product.post("/_local/reset").status == 200
    assert product.get("/attention", headers={"Authorization": f"Bearer {token}"}).status == 200
