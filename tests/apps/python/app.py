"""A Spin app from the Python SDK: greets, and says which route matched; /outbound/self asks the
app itself through a relative URL, /outbound/denied asks a host the manifest does not allow."""
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        route = request.headers.get("spin-matched-route", "?")
        if request.uri.startswith("/outbound/"):
            target = {
                "/outbound/self": "/hello/self",
                "/outbound/denied": "https://denied.example.com/",
            }.get(request.uri, "/")
            try:
                answer = http.send(Request("POST", target, {}, b"a body the guest writes"))
                body = f"{answer.status}: {str(answer.body, 'utf-8')}"
            except Exception as error:
                body = f"error: {error!r}\n"
            return Response(200, {"content-type": "text/plain"}, bytes(body, "utf-8"))
        body = f"Hello from Python! {request.method} {request.uri} via {route}\n"
        return Response(200, {"content-type": "text/plain"}, bytes(body, "utf-8"))
