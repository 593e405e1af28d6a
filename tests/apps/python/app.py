"""A Spin app from the Python SDK: greets and says which route matched; /greeting reads a
variable, /count counts in the default key-value store; /outbound/self asks the app itself
through a relative URL, /outbound/denied a host the manifest does not allow, and
/outbound/upstream?URL the URL given."""
from urllib.parse import unquote

from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, bytes(body, "utf-8"))


def outbound(target: str) -> str:
    try:
        answer = http.send(Request("POST", target, {}, b"a body the guest writes"))
        return f"{answer.status}: {str(answer.body, 'utf-8')}"
    except Exception as error:
        return f"error: {error!r}\n"


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        route = request.headers.get("spin-matched-route", "?")
        path, _, query = request.uri.partition("?")
        if path == "/greeting":
            return text(200, f"{variables.get('greeting')}\n")
        if path == "/count":
            with key_value.open_default() as store:
                seen = store.get("count")
                count = int(seen or b"0") + 1
                store.set("count", bytes(str(count), "utf-8"))
            return text(200, f"count: {count}\n")
        if path == "/outbound/upstream":
            return text(200, outbound(unquote(query)))
        if path.startswith("/outbound/"):
            target = {
                "/outbound/self": "/hello/self",
                "/outbound/denied": "https://denied.example.com/",
            }.get(path, "/")
            return text(200, outbound(target))
        return text(200, f"Hello from Python! {request.method} {request.uri} via {route}\n")
