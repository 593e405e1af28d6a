"""A Spin app from the Python SDK: greets, and says which route matched."""
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        route = request.headers.get("spin-matched-route", "?")
        body = f"Hello from Python! {request.method} {request.uri} via {route}\n"
        return Response(200, {"content-type": "text/plain"}, bytes(body, "utf-8"))
